"""Command line of the live demo: the three techniques on your own inputs, and the benchmark.

  python -m live_demo speculate --prompt TEXT [--drafter NAME] [--draft-len K] [--max-new-tokens N]
                                [--temperature T] [--json]
  python -m live_demo compress --qa-file FILE [--method NAME] [--ratio R] [--limit N] [--json]
  python -m live_demo quantize [--methods A,B] [--max-new-tokens N] [--json]
  python -m live_demo sweep [--methods A,B] [--batches 1,2,4] [--new-tokens N] [--json]
  python -m live_demo bench [--quick] [--sections A,B] [--device auto|cpu|cuda] [--json]

Every verb takes --model (default: the embedded SmolLM2-135M, or $ELLM_DEMO_MODEL; 'tiny' is a random test
model), --device, --threads (CPU threads for torch), --repeats (timed runs: median and min-max reported) and
--no-history. Errors: one line on
stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other error of this CLI
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from live_demo.api import COMPRESSION_PRESETS, DRAFTERS

    parser = _Parser(prog="python -m live_demo", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object (default: a short summary)")
        p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
        p.add_argument("--model", default=None, help="model id (default: the embedded SmolLM2-135M; 'tiny' for a "
                                                     "random test model)")
        p.add_argument("--no-history", action="store_true", help="do not store the run in the history DB")
        p.add_argument("--threads", type=int, default=None,
                       help="CPU threads for torch (1-1024; default: every core). On a shared machine fewer threads "
                            "than cores avoid the oversubscription that makes CPU timings erratic")
        return p

    bench = verb("bench", "run quantization, compression and speculative decoding benchmarks")
    bench.add_argument("--quick", action="store_true", help="smaller sizes; a few minutes on a 2-core CPU")
    bench.add_argument("--sections", default="quantization,compression,speculative,decode_paths,sweep",
                       help="comma-separated, from: quantization, compression, speculative, decode_paths, outliers, "
                            "sweep")
    # %% because argparse formats every help string with %
    sweep = verb("sweep", "decode tokens/s against batch size, with achieved bandwidth and %% of measured peak")
    sweep.add_argument("--methods", default="baseline,int8-weight-only",
                       help="comma-separated; 'baseline' is the loaded model")
    sweep.add_argument("--batches", default="1,2,4,8,16,32,64")
    sweep.add_argument("--new-tokens", type=int, default=32)
    sweep.add_argument("--repeats", type=int, default=3)
    spec = verb("speculate", "speculative decoding of your prompt, checked against plain greedy decoding")
    spec.add_argument("--prompt", required=True, help="the user message (wrapped in the chat template)")
    spec.add_argument("--drafter", default="prompt-lookup", choices=[d for d in DRAFTERS if d != "draft-model"])
    spec.add_argument("--draft-len", type=int, default=3, help="tokens drafted per round (1-16)")
    spec.add_argument("--max-new-tokens", type=int, default=64)
    spec.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    spec.add_argument("--repeats", type=int, default=3)
    comp = verb("compress", "prompt compression over a QA file, with the answer quality it keeps")
    comp.add_argument("--qa-file", required=True, help="JSON in the schema of live_demo/data/qa.json")
    comp.add_argument("--method", default="ours", choices=COMPRESSION_PRESETS)
    comp.add_argument("--ratio", type=float, default=2.0, help="target prompt tokens before / after (1-20)")
    comp.add_argument("--limit", type=int, default=None, help="only the first N items")
    quant = verb("quantize", "quantized copies: bytes, perplexity and decode speed beside the baseline")
    quant.add_argument("--methods", default=None, help="comma-separated (default: every method offered here)")
    quant.add_argument("--max-new-tokens", type=int, default=32)
    quant.add_argument("--repeats", type=int, default=3)
    return parser


def _progress(fraction: float, message: str) -> None:
    print(f"[live_demo] {message}", file=sys.stderr, flush=True)


def _speculate(args, lm) -> dict:
    from live_demo.api import run_speculative

    r = run_speculative(lm, args.prompt, args.drafter, draft_len=args.draft_len, max_new_tokens=args.max_new_tokens,
                        temperature=args.temperature, repeats=args.repeats, source="cli")
    s = r.stats
    return {"drafter": r.drafter, "draft_len": r.draft_len, "temperature": r.temperature,
            "identical_to_greedy": r.identical_to_greedy, "acceptance_rate": s["acceptance_rate"],
            "mean_accepted_len": s["mean_accepted_len"], "target_calls_per_token": s["target_calls_per_token"],
            "new_tokens": s["new_tokens"], "tokens_per_s": s["tokens_per_s"],
            "tokens_per_s_min": r.timings["speculative"]["min"], "tokens_per_s_max": r.timings["speculative"]["max"],
            "plain_tokens_per_s": r.plain_tokens_per_s, "transformers_tokens_per_s": r.transformers_tokens_per_s,
            "runs": r.timings["speculative"]["n"], "text": r.text, "_report": r}


def _compress(args, lm) -> dict:
    from live_demo.api import load_qa_set, run_compression_eval

    qa = load_qa_set(args.qa_file)
    r = run_compression_eval(lm, ratio=args.ratio, limit=args.limit, with_llmlingua=False, methods=(args.method,),
                             qa=qa, source="cli")
    row = r.methods[args.method]
    return {"method": args.method, "target_ratio": args.ratio, **row, "_report": r}


def _quantize(args, lm) -> dict:
    from live_demo.api import quantization_methods, run_quantization

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else \
        quantization_methods(lm.device)
    r = run_quantization(lm, methods, max_new_tokens=args.max_new_tokens, repeats=args.repeats, source="cli")
    keep = ("weight_bytes", "linear_weight_bytes", "perplexity", "perplexity_change", "decode_tokens_per_s",
            "decode_tokens_per_s_min", "decode_tokens_per_s_max", "timing_runs", "speedup_vs_baseline")
    return {"baseline": {k: r.baseline[k] for k in ("method", *keep) if k in r.baseline},
            "methods": {m: {"weight_format": r.weight_formats[m], **{k: row[k] for k in keep if k in row}}
                        for m, row in r.methods.items()}, "_report": r}


def _sweep(args, lm) -> dict:
    from live_demo.api import run_sweep

    try:
        batches = tuple(int(b) for b in args.batches.split(",") if b.strip())
    except ValueError as exc:
        raise ValueError(f"--batches must be comma-separated whole numbers, got {args.batches!r}") from exc
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    r = run_sweep(lm, methods, batches, args.new_tokens, args.repeats, progress=_progress, source="cli")
    return {"peak_gbps": r.peak_gbps, "decode_path": r.decode_path, "decode_note": r.decode_note, "rows": r.rows,
            "_report": r}


def _summary(command: str, result: dict) -> str:
    if command == "speculate":
        return (f"{result['drafter']}: acceptance {result['acceptance_rate']:.2f}, {result['tokens_per_s']:.1f} tok/s "
                f"(plain {result['plain_tokens_per_s']:.1f}), identical to greedy: {result['identical_to_greedy']}"
                f"\n{result['text']}")
    if command == "compress":
        return f"{result['method']}: ratio {result['ratio']:.2f}, quality kept {result['quality_kept']:.3f}"
    if command == "sweep":
        return "\n".join(f"{r['method']} batch {r['batch']}: " + (r["error"] if "error" in r else
                          f"{r['tokens_per_s']:.1f} tok/s, {r['achieved_gbps']:.1f} GB/s "
                          f"({r['pct_of_peak']:.1f}% of {result['peak_gbps']:.0f})") for r in result["rows"])
    if command == "quantize":
        rows = [("baseline " + result["baseline"]["method"], result["baseline"]), *result["methods"].items()]
        return "\n".join(f"{name}: {m['weight_bytes'] / 1e6:.1f} MB, ppl {m['perplexity']:.2f}, "
                         f"{m['decode_tokens_per_s']:.1f} tok/s" for name, m in rows)
    return _bench_summary(result)


def _bench_summary(result: dict) -> str:
    lines = [f"model {result['model']['model_id']} on {result['model']['device_name']} ({result['model']['dtype']})"]
    lines += [f"{section} failed: {error}" for section, error in result.get("errors", {}).items()]
    q = result.get("quantization", {})
    for name, m in q.get("methods", {}).items():
        if "error" not in m:
            lines.append(f"  {name}: {m['weight_bytes'] / 1e6:.1f} MB, ppl {m['perplexity']:.2f}, "
                         f"{m['decode_tokens_per_s']:.1f} tok/s")
    lines.append(f"goals: {json.dumps(result['goals'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from common.history import HistoryError, RunHistory
    from live_demo.api import LiveDemoError

    try:
        if args.threads is not None:
            if not 1 <= args.threads <= 1024:
                raise ValueError(f"--threads must be a whole number from 1 to 1024, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        if args.command == "bench":
            from live_demo import run_bench

            result = run_bench(device=args.device, quick=args.quick, model_id=args.model,
                               record=not args.no_history, progress=_progress,
                               sections=tuple(x.strip() for x in args.sections.split(",") if x.strip()))
        else:
            from live_demo.api import load_model

            lm = load_model(args.model, device=args.device, progress=_progress)
            verbs = {"speculate": _speculate, "compress": _compress, "quantize": _quantize, "sweep": _sweep}
            result = verbs[args.command](args, lm)
            report = result.pop("_report")
            result["model"] = {"model_id": lm.model_id, "device": lm.device, "dtype": lm.dtype}
            if not args.no_history:
                try:
                    result["history_ids"] = report.record(RunHistory())
                except HistoryError as exc:
                    print(f"warning: not saved to the history: {exc}", file=sys.stderr)
    except (LiveDemoError, ValueError, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, indent=2, default=float) if args.json else _summary(args.command, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
