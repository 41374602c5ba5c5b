"""Command line: python -m recommender estimate|plan|models|gpus|calibrate (JSON to stdout, errors to stderr)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import RecommenderInputError
from .estimate import (
    ENGINES,
    WORKLOADS,
    InferenceConfig,
    TrainingConfig,
    estimate_inference,
    estimate_training,
)
from .formats import FORMATS, KV_BYTES
from .hardware import gpu_presets, resolve_gpu
from .models import check_config_size, model_presets, resolve_model
from .planner import QUALITY_LEVELS, PlanRequest, plan


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (its default code)."""

    def error(self, message):
        raise RecommenderInputError(message)


def _add_model_gpu(p: argparse.ArgumentParser, allow_custom: bool) -> None:
    p.add_argument("--model", help="model preset id (see `models`)")
    p.add_argument("--config", help="path to a Hugging Face config.json")
    p.add_argument("--gpu", help="GPU preset id (see `gpus`)")
    if allow_custom:
        p.add_argument("--params-b", type=float, help="custom model size in billions of parameters")
        p.add_argument("--gpu-mem-gib", type=float, help="custom GPU memory in GiB")
        p.add_argument("--gpu-bandwidth-gbps", type=float, help="custom GPU bandwidth (GB/s)")
        p.add_argument("--gpu-tflops", type=float, help="custom GPU dense fp16 TFLOPS")
    p.add_argument("--num-gpus", type=int, default=1)
    p.add_argument("--workload", default="inference", choices=WORKLOADS)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prompt-len", type=int, default=512)
    p.add_argument("--gen-len", type=int, default=256)
    p.add_argument("--json", action="store_true", help="print JSON (the default output format)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m recommender", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    est = sub.add_parser("estimate", help="memory and latency of one configuration")
    _add_model_gpu(est, allow_custom=True)
    est.add_argument("--weights", default="fp16", help=f"one of {', '.join(FORMATS)}")
    est.add_argument("--kv", default="fp16", help=f"one of {', '.join(KV_BYTES)}")
    est.add_argument("--framework", default="hf", help=f"one of {', '.join(ENGINES)}")
    est.add_argument("--lora-rank", type=int, default=16)
    est.add_argument("--no-checkpointing", action="store_true", help="fine-tuning without gradient checkpointing")
    est.add_argument("--optimizer", default="adamw", choices=("adamw", "adam-8bit", "paged-adam-8bit"))
    pl = sub.add_parser("plan", help="search technique stacks and rank them")
    _add_model_gpu(pl, allow_custom=True)
    pl.add_argument("--latency-ms-per-token", type=float)
    pl.add_argument("--ttft-ms", type=float)
    pl.add_argument("--quality", default="small", choices=QUALITY_LEVELS)
    pl.add_argument("--max-plans", type=int, default=25)
    pl.add_argument("--no-pareto", action="store_true", help="omit the Pareto list from the output")
    sub.add_parser("models", help="list model presets").add_argument("--json", action="store_true")
    sub.add_parser("gpus", help="list GPU presets").add_argument("--json", action="store_true")
    cal = sub.add_parser("calibrate", help="leave-one-source-out accuracy of the calibrated cost model")
    cal.add_argument("--report", action="store_true", help="print the accuracy report (JSON)")
    cal.add_argument("--write", metavar="MARKDOWN", help="also update the generated section of this markdown file")
    cal.add_argument("--json", action="store_true")
    return parser


def _model(args):
    config = None
    if getattr(args, "config", None):
        path = Path(args.config)
        if not path.is_file():
            raise RecommenderInputError(f"config file not found: {args.config}")
        try:
            check_config_size(path.stat().st_size)
            config = path.read_bytes()
        except OSError as exc:
            raise RecommenderInputError(f"cannot read config file {args.config}: {exc.strerror}") from None
    return resolve_model(args.model, getattr(args, "params_b", None), config)


def _gpu(args):
    return resolve_gpu(args.gpu, getattr(args, "gpu_mem_gib", None), getattr(args, "gpu_bandwidth_gbps", None),
                       getattr(args, "gpu_tflops", None))


def run_estimate(args) -> dict:
    model, gpu = _model(args), _gpu(args)
    if args.workload == "inference":
        cfg = InferenceConfig(weights=args.weights, kv=args.kv, engine=args.framework, num_gpus=args.num_gpus,
                              batch=args.batch, prompt_len=args.prompt_len, gen_len=args.gen_len)
        return estimate_inference(model, gpu, cfg).to_dict()
    method = args.workload.removeprefix("finetune-")
    cfg = TrainingConfig(method=method, optimizer=args.optimizer, checkpointing=not args.no_checkpointing,
                         num_gpus=args.num_gpus, batch=args.batch, seq_len=args.prompt_len + args.gen_len,
                         lora_rank=args.lora_rank, flash=gpu.flash_attention_2)
    return estimate_training(model, gpu, cfg).to_dict()


def run_plan(args) -> dict:
    req = PlanRequest(model=_model(args), gpu=_gpu(args), num_gpus=args.num_gpus, workload=args.workload,
                      batch=args.batch, prompt_len=args.prompt_len, gen_len=args.gen_len,
                      latency_ms_per_token=args.latency_ms_per_token, ttft_ms=args.ttft_ms, quality=args.quality,
                      max_plans=args.max_plans)
    out = plan(req)
    if args.no_pareto:
        out.pop("pareto", None)
    return out


def run_calibrate(args) -> dict:
    from .report import calibration_report, write_markdown_section

    report = calibration_report()
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
            out = {"models": [m.to_dict() for m in model_presets().values()]}
        elif args.command == "gpus":
            out = {"gpus": [g.to_dict() for g in gpu_presets().values()]}
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
