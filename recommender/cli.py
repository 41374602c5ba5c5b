"""Command line: python -m recommender estimate|plan|models|gpus|frameworks|techniques|calibrate.

JSON goes to stdout; an error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import api
from .errors import RecommenderInputError
from .estimate import ENGINES, WORKLOADS, TrainingConfig, workload_method
from .formats import FORMATS, KV_BYTES
from .techniques import techniques

ENGINE_NAMES = {"hf": "Hugging Face transformers (FlashAttention / SDPA)", "hf-eager": "transformers, eager attention",
                "vllm": "vLLM", "llama.cpp": "llama.cpp", "gpt-fast": "gpt-fast (PyTorch, torch.compile)",
                "tensorrt-llm": "TensorRT-LLM"}
SHARDING = ("none", "zero1", "zero2", "zero3", "fsdp")
OPTIMIZERS = ("adamw", "adam-8bit", "paged-adam-8bit")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (its default code)."""

    def error(self, message):
        raise RecommenderInputError(message)


def _lower(text: str) -> str:
    """An id as given, case-insensitive; a blank value is an error, never the default."""
    value = str(text).strip().lower()
    if not value:
        raise argparse.ArgumentTypeError("must not be blank")
    return value


def _text(text: str) -> str:
    """A free-text value (a path, a comma-separated list): blank is an error, never the default."""
    if not str(text).strip():
        raise argparse.ArgumentTypeError("must not be blank")
    return str(text)


def _add_choice(p: argparse.ArgumentParser, flag: str, choices, **kwargs) -> None:
    """A choices-style option that accepts any letter case ('Context', 'BATCH'), as every id of this CLI does."""
    p.add_argument(flag, type=_lower, choices=tuple(choices), metavar="{" + ",".join(choices) + "}", **kwargs)


def _add_model_gpu(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=_lower, help="model preset id (see `models`)")
    p.add_argument("--config", type=_text, help="path to a Hugging Face config.json")
    p.add_argument("--params-b", type=float, help="custom model size in billions of parameters")
    p.add_argument("--gpu", type=_lower, help="GPU preset id (see `gpus`)")
    p.add_argument("--gpu-mem-gib", type=float, help="custom GPU memory in GiB")
    p.add_argument("--gpu-bandwidth-gbps", type=float, help="custom GPU bandwidth (GB/s)")
    p.add_argument("--gpu-tflops", type=float, help="custom GPU dense fp16 TFLOPS")
    p.add_argument("--unified-memory", action="store_true",
                   help="the custom GPU shares its memory with the CPU (Apple silicon): ~75%% is usable")
    p.add_argument("--num-gpus", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=8,
                   help="GPUs per node; more GPUs run tensor parallel per node and pipeline stages across nodes")
    p.add_argument("--internode-gbps", type=float, default=50.0,
                   help="bandwidth between nodes per GPU, GB/s (default: one 400 Gb/s InfiniBand NDR link)")
    _add_choice(p, "--workload", WORKLOADS, default="inference")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prompt-len", type=int, default=512)
    p.add_argument("--gen-len", type=int, default=256)
    p.add_argument("--no-local-runs", action="store_true",
                   help="ignore this machine's live-demo runs (they only ever adjust estimates of their own device)")
    p.add_argument("--json", action="store_true", help="print JSON (the default output format)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m recommender", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    est = sub.add_parser("estimate", help="memory and latency of one configuration")
    _add_model_gpu(est)
    est.add_argument("--weights", type=_lower, default=None, help=f"one of {', '.join(FORMATS)}")
    est.add_argument("--kv", type=_lower, default=None, help=f"one of {', '.join(KV_BYTES)}")
    est.add_argument("--framework", type=_lower, default=None, help=f"one of {', '.join(ENGINES)}")
    est.add_argument("--techniques", type=_text, help="comma-separated technique or catalog ids to evaluate as one stack "
                                          "(see `techniques`), e.g. awq,kv-fp8,vllm")
    est.add_argument("--gpu-memory-utilization", type=float,
                     help="share of GPU memory the engine may fill (vLLM's gpu_memory_utilization; default 0.9)")
    est.add_argument("--expert-parallel", action="store_true",
                     help="MoE models on vllm/sglang/tensorrt-llm: spread the routed experts over --num-gpus "
                          "(attention stays tensor parallel inside each node)")
    _add_choice(est, "--largest", ("context", "batch"),
                help="also report the largest context (tokens) or batch that still fits, all else as given "
                     "(context is capped at the model's context)")
    # fine-tuning options default to None so that giving one with --workload inference is detected as a conflict
    est.add_argument("--lora-rank", type=int, default=None, help="fine-tuning: LoRA rank (default 16)")
    est.add_argument("--no-checkpointing", action="store_true", help="fine-tuning without gradient checkpointing")
    _add_choice(est, "--optimizer", OPTIMIZERS, default=None, help="fine-tuning optimizer (default adamw)")
    _add_choice(est, "--sharding", SHARDING, default=None,
                help="fine-tuning: shard optimizer/gradients/weights over --num-gpus (ZeRO stage or FSDP; default none)")
    pl = sub.add_parser("plan", help="search technique stacks and rank them")
    _add_model_gpu(pl)
    pl.add_argument("--latency-ms-per-token", type=float)
    pl.add_argument("--ttft-ms", type=float)
    _add_choice(pl, "--quality", api.QUALITY_LEVELS, default="small")
    _add_choice(pl, "--objective", api.OBJECTIVES, default="least-risk",
                help="after fit, budgets and quality: least-risk, fastest, or simplest")
    pl.add_argument("--max-plans", type=int, default=25)
    pl.add_argument("--no-pareto", action="store_true", help="omit the Pareto list from the output")
    pl.add_argument("--no-exports", action="store_true", help="omit each plan's runnable exports")
    for name, text in (("models", "list model presets"), ("gpus", "list GPU presets"),
                       ("frameworks", "list the inference engines (--framework values)"),
                       ("techniques", "list technique ids usable with estimate --techniques")):
        sub.add_parser(name, help=text).add_argument("--json", action="store_true")
    cal = sub.add_parser("calibrate", help="leave-one-source-out accuracy of the calibrated cost model")
    cal.add_argument("--report", action="store_true", help="print the accuracy report (JSON)")
    cal.add_argument("--write", metavar="MARKDOWN", help="also update the generated section of this markdown file")
    cal.add_argument("--json", action="store_true")
    return parser


def _model(args):
    given = [n for n, v in (("--model", args.model), ("--config", args.config), ("--params-b", args.params_b))
             if v is not None]
    if len(given) > 1:
        raise RecommenderInputError(f"{' and '.join(given)} conflict: describe the model one way")
    config = None
    if args.config:
        path = Path(args.config)
        if path.is_dir():
            raise RecommenderInputError(f"--config {args.config} is a directory: give the path of a config.json file")
        if not path.is_file():
            raise RecommenderInputError(f"config file not found: {args.config}")
        try:
            api.check_config_size(path.stat().st_size)
            config = path.read_bytes()
        except OSError as exc:
            raise RecommenderInputError(f"cannot read config file {args.config}: {exc.strerror}") from None
    return api.resolve_model(args.model, args.params_b, config)


def _gpu(args):
    return api.resolve_gpu(args.gpu, args.gpu_mem_gib, args.gpu_bandwidth_gbps, args.gpu_tflops,
                           unified_memory=args.unified_memory)


def _request(args, model, gpu, **extra) -> api.PlanRequest:
    return api.PlanRequest(model=model, gpu=gpu, num_gpus=args.num_gpus, workload=args.workload, batch=args.batch,
                           prompt_len=args.prompt_len, gen_len=args.gen_len, use_local_runs=not args.no_local_runs,
                           gpus_per_node=args.gpus_per_node, internode_gbps=args.internode_gbps, **extra)


def run_estimate(args) -> dict:
    model, gpu = _model(args), _gpu(args)
    if args.workload != "inference":
        for flag, value in (("--weights", args.weights), ("--kv", args.kv), ("--framework", args.framework),
                            ("--techniques", args.techniques),
                            ("--gpu-memory-utilization", args.gpu_memory_utilization),
                            ("--expert-parallel", args.expert_parallel or None)):
            if value is not None:
                raise RecommenderInputError(f"{flag} applies to inference, not to --workload {args.workload}")
        cfg = TrainingConfig(method=workload_method(args.workload), optimizer=args.optimizer or "adamw",
                             checkpointing=not args.no_checkpointing, sharding=args.sharding or "none",
                             num_gpus=args.num_gpus, batch=args.batch, seq_len=args.prompt_len + args.gen_len,
                             lora_rank=16 if args.lora_rank is None else args.lora_rank, flash=gpu.flash_attention_2)
        return _with_largest(args, model, gpu, cfg)
    # the reverse: fine-tuning options are None unless given (see build_parser), so any of them here is a conflict
    for flag, value in (("--lora-rank", args.lora_rank), ("--optimizer", args.optimizer),
                        ("--no-checkpointing", args.no_checkpointing or None), ("--sharding", args.sharding)):
        if value is not None:
            raise RecommenderInputError(f"{flag} applies to fine-tuning (--workload finetune-...), not to inference")
    if args.techniques:
        if args.weights or args.kv:
            raise RecommenderInputError("--techniques conflicts with --weights/--kv: the stack sets them")
        items = [t.strip() for t in args.techniques.split(",")]
        if not all(items):
            raise RecommenderInputError(f"--techniques has an empty item in {args.techniques!r}: list technique ids "
                                        "separated by single commas (see `python -m recommender techniques`)")
        ids = items + (["expert-parallel"] if args.expert_parallel else [])
        if args.largest:
            raise RecommenderInputError("--largest works with --weights/--kv/--framework, not with --techniques")
        if args.gpu_memory_utilization is not None:
            raise RecommenderInputError("--gpu-memory-utilization with --techniques is not supported; "
                                        "use --weights/--kv/--framework")
        return api.evaluate_stack(_request(args, model, gpu), ids, engine=args.framework).to_dict()
    engine = args.framework or "hf"
    if args.weights is not None or args.kv is not None:   # only what was given: the defaults are 16-bit
        api.check_engine_runs(engine, args.weights, args.kv, option_names=("--weights", "--kv"))
    cfg = api.InferenceConfig(weights=args.weights or _default_weights(model, engine), kv=args.kv or "fp16",
                              engine=engine,
                              num_gpus=args.num_gpus, batch=args.batch, prompt_len=args.prompt_len,
                              gen_len=args.gen_len, memory_utilization=args.gpu_memory_utilization,
                              gpus_per_node=args.gpus_per_node, internode_gbps=args.internode_gbps,
                              expert_parallel=args.expert_parallel)
    return _with_largest(args, model, gpu, cfg)


def _default_weights(model, engine: str) -> str:
    """Without --weights: the released checkpoint's own format (fp8, mxfp4) when the engine runs it, else 16-bit."""
    if model.native_weights:
        try:
            api.check_engine_runs(engine, model.native_weights, None)
            return model.native_weights
        except RecommenderInputError:
            pass
    return "fp16"


def _with_largest(args, model, gpu, cfg) -> dict:
    out = api.estimate(model, gpu, cfg, use_local_runs=not args.no_local_runs).to_dict()
    if args.largest:
        found = api.largest_fitting_report(model, gpu, cfg, args.largest)
        out[f"largest_{args.largest}"] = found["value"]
        if args.largest == "context":
            out["largest_context_capped_at_model_context"] = found["capped_at_model_context"]
            out["model_context"] = found["model_context"]
    return out


def run_plan(args) -> dict:
    req = _request(args, _model(args), _gpu(args), latency_ms_per_token=args.latency_ms_per_token,
                   ttft_ms=args.ttft_ms, quality=args.quality, max_plans=args.max_plans, objective=args.objective)
    out = api.plan(req).to_dict(exports=not args.no_exports)
    if args.no_pareto:
        out.pop("pareto", None)
    return out


def run_calibrate(args) -> dict:
    from .report import write_markdown_section

    report = api.calibration_report()
    if args.write:
        try:
            write_markdown_section(Path(args.write), report)
        except OSError as exc:
            raise RecommenderInputError(f"cannot write {args.write}: {exc.strerror or exc}") from None
    return report


def one_line(message: str, limit: int = 400) -> str:
    """An error message as one printable line (no terminal escapes), cut to `limit` characters."""
    text = " ".join(str(message).split())
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "models":
            out = {"models": api.list_models()}
        elif args.command == "gpus":
            out = {"gpus": api.list_gpus()}
        elif args.command == "frameworks":
            out = {"frameworks": [{"id": e, "name": ENGINE_NAMES.get(e, e)} for e in ENGINES]}
        elif args.command == "techniques":
            out = {"techniques": [{"id": t.id, "name": t.name, "category": t.category, "catalog_id": t.catalog_id}
                                  for t in techniques().values()]}
        elif args.command == "estimate":
            out = run_estimate(args)
        elif args.command == "plan":
            out = run_plan(args)
        else:
            out = run_calibrate(args)
    except ValueError as exc:   # RecommenderInputError and any other validation failure: one line, no traceback
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        json.dump(out, sys.stdout, indent=1, allow_nan=False, default=str)
        sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:   # e.g. piped into `head`: not an error of ours
        sys.stderr.close()
    return 0
