"""Command line: `python -m live_demo bench --json [--device auto|cpu|cuda] [--quick]`."""

from __future__ import annotations

import argparse
import json
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m live_demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="run quantization, compression and speculative decoding benchmarks")
    bench.add_argument("--json", action="store_true", help="print one JSON object (default: a short summary)")
    bench.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    bench.add_argument("--quick", action="store_true", help="smaller sizes; a few minutes on a 2-core CPU")
    bench.add_argument("--model", default=None, help="model id (default: the embedded SmolLM2-135M; 'tiny' "
                                                     "for a random test model)")
    bench.add_argument("--no-history", action="store_true", help="do not store the run in the history DB")
    return parser


def _progress(fraction: float, message: str) -> None:
    print(f"[live_demo] {message}", file=sys.stderr, flush=True)


def _summary(result: dict) -> str:
    lines = [f"model {result['model']['model_id']} on {result['model']['device_name']} ({result['model']['dtype']})"]
    q = result["quantization"]
    lines.append(f"baseline: ppl {q['baseline']['perplexity']:.2f}, {q['baseline']['decode_tokens_per_s']:.1f} tok/s")
    for name, m in q["methods"].items():
        lines.append(f"  {name}: {m['weight_bytes'] / 1e6:.1f} MB, ppl {m['perplexity']:.2f}, "
                     f"{m['decode_tokens_per_s']:.1f} tok/s")
    for name in ("ours", "random", "llmlingua"):
        row = result["compression"].get(name)
        if row:
            lines.append(f"compression {name}: ratio {row['ratio']:.2f}, quality kept {row['quality_kept']:.2f}")
    for name, d in result["speculative"]["drafters"].items():
        lines.append(f"speculative {name}: acceptance {d['acceptance_rate']:.2f}, {d['tokens_per_s']:.1f} tok/s, "
                     f"identical {d['identical_to_greedy']}")
    lines.append(f"goals: {json.dumps(result['goals'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from live_demo.errors import LiveDemoError

    try:
        from live_demo.bench import run_bench

        result = run_bench(device=args.device, quick=args.quick, model_id=args.model,
                           record=not args.no_history, progress=_progress)
    except (LiveDemoError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, indent=2, default=float) if args.json else _summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
