"""The recommender's public face: what the pages, the CLI, the benches and notebooks call.

Plain arguments in, typed results out (`PlanResult`, `Plan`, `Estimate`); every estimate is calibrated with the
process's default calibrator. Nothing here imports streamlit or torch. Errors: `RecommenderInputError` (a ValueError)
with a message a person can act on.
"""

from __future__ import annotations

from . import costs
from .calibration import default_calibrator, history_measurements, refresh_calibrator
from .engines import check_engine_runs
from .errors import RecommenderInputError, check_number
from .estimate import (
    ENGINES,
    WORKLOADS,
    Estimate,
    InferenceConfig,
    InferenceEvaluator,
    TrainingConfig,
    estimate_training,
)
from .export import all_exports, export_notes
from .formats import FORMATS, KV_BYTES, weight_format
from .hardware import GPU, gpu_presets, resolve_gpu
from .models import MAX_CONFIG_BYTES, ModelSpec, check_config_size, model_presets, resolve_model
from .planner import OBJECTIVES, QUALITY_LEVELS, Plan, PlanRequest, PlanResult, evaluate_stack, plan
from .report import calibration_report
from .views import (
    alternatives_rows,
    card_markdown,
    compare_rows,
    error_table,
    latency_bar,
    memory_bar,
    pareto_scatter,
    saturated_note,
)

__all__ = [
    "ENGINES", "FORMATS", "GPU", "KV_BYTES", "MAX_CONFIG_BYTES", "OBJECTIVES", "QUALITY_LEVELS", "WORKLOADS", "Estimate",
    "InferenceConfig", "ModelSpec", "Plan", "PlanRequest", "PlanResult", "RecommenderInputError", "TrainingConfig",
    "all_exports", "alternatives_rows", "check_engine_runs", "export_notes", "calibration_report", "card_markdown", "check_config_size", "compare_rows",
    "custom_gpu", "decode_ms_per_token", "error_table", "estimate", "estimate_inference", "estimate_training", "evaluate_stack",
    "gpu_presets", "history_run_count", "largest_fitting", "largest_fitting_report", "latency_bar", "list_gpus", "list_models", "memory_bar", "model_presets",
    "pareto_scatter", "plan", "project_speculative_speedup", "refresh_calibration", "resolve_gpu", "resolve_model",
    "saturated_note",
    "warm_up",
]


def list_gpus() -> list[dict]:
    """Every GPU preset: id, name, memory_gib, bandwidth_gbps, fp16_tflops, int8_tops, vendor, ... source."""
    return [g.to_dict() for g in gpu_presets().values()]


def list_models() -> list[dict]:
    """Every model preset with its architecture fields and source."""
    return [m.to_dict() for m in model_presets().values()]


def custom_gpu(memory_gib: float, bandwidth_gbps: float | None = None, fp16_tflops: float | None = None,
               unified_memory: bool = False) -> GPU:
    """A user-described GPU (memory GiB, bandwidth GB/s, dense fp16 TFLOPS, memory shared with the CPU or not).

    Raises RecommenderInputError for a non-finite or out-of-range number."""
    return GPU.custom(memory_gib, bandwidth_gbps, fp16_tflops, unified_memory=unified_memory)


def estimate_inference(model: ModelSpec, gpu: GPU, cfg: InferenceConfig, use_local_runs: bool = True) -> Estimate:
    """Calibrated memory (GiB) and latency (ms) of one inference configuration.

    With `use_local_runs`, this machine's live-demo runs may adjust estimates of their own engine, device class and
    kernel (never others); `Estimate.local_adjustment` says when and by how much.
    """
    return InferenceEvaluator(model, gpu, default_calibrator(use_local_runs)).evaluate(cfg)


def estimate(model: ModelSpec, gpu: GPU, cfg: InferenceConfig | TrainingConfig,
             use_local_runs: bool = True) -> Estimate:
    """Calibrated estimate of an inference or fine-tuning configuration."""
    if isinstance(cfg, TrainingConfig):
        return estimate_training(model, gpu, cfg)
    return estimate_inference(model, gpu, cfg, use_local_runs)


def largest_fitting(model: ModelSpec, gpu: GPU, cfg: InferenceConfig | TrainingConfig, field: str) -> int | None:
    """The largest context (tokens: prompt for inference, sequence for fine-tuning) or batch that still fits.

    `field` is 'context' or 'batch'; everything else stays as in `cfg`. None when even 1 does not fit. A context is
    never reported beyond what the model takes: prompt + output <= the model's context for inference, the sequence
    <= it for fine-tuning (`largest_fitting_report` says when that cap, not memory, set the answer). Memory grows
    monotonically in both, so an exponential search and a bisection over `estimate(...).fits` find the boundary.
    Raises RecommenderInputError for an unknown field.
    """
    return largest_fitting_report(model, gpu, cfg, field)["value"]


def largest_fitting_report(model: ModelSpec, gpu: GPU, cfg: InferenceConfig | TrainingConfig, field: str) -> dict:
    """`largest_fitting` with how it was bounded: {"value": int | None, "capped_at_model_context": bool,
    "model_context": int (tokens)}. `capped_at_model_context` is true when more would fit in memory but the model's
    context (ModelSpec.context, its max_position_embeddings) ends the search. Raises RecommenderInputError for an
    unknown field."""
    from dataclasses import replace

    if field not in ("context", "batch"):
        raise RecommenderInputError(f"field must be 'context' or 'batch', got {field!r}")
    training = isinstance(cfg, TrainingConfig)
    name = "batch" if field == "batch" else "seq_len" if training else "prompt_len"
    limit = 100_000
    if field == "context":   # the model's own context bounds prompt + output (inference) or the sequence
        limit = model.context if training else model.context - cfg.gen_len
    report = {"value": None, "capped_at_model_context": False, "model_context": model.context}

    def fits(value: int) -> bool:
        return estimate(model, gpu, replace(cfg, **{name: value})).fits

    if limit < 1:   # the output alone fills the model's context: no prompt is left
        report["capped_at_model_context"] = True
        return report
    if not fits(1):
        return report
    low, high = 1, 2
    while high <= limit and fits(high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    report["value"] = low
    report["capped_at_model_context"] = field == "context" and low == limit
    return report


def history_run_count() -> int:
    """How many of the local run history's live-demo runs the calibration can use."""
    return len(history_measurements())


def refresh_calibration() -> None:
    """Refit the calibration (e.g. after new live-demo runs were recorded)."""
    refresh_calibrator()


def decode_ms_per_token(gpu_id: str, params_b: float, weights: str = "fp16", batch: int = 1) -> float:
    """Calibrated batch-`batch` decode ms/token of a Llama-shaped model with `params_b` B parameters on a preset GPU."""
    model = ModelSpec.from_params(params_b)
    est = estimate_inference(model, GPU.from_name(gpu_id),
                             InferenceConfig(weights=weights, engine="hf", batch=batch, prompt_len=128, gen_len=128))
    return float(est.decode_ms_per_token)


def project_speculative_speedup(gpu_id: str, target_params_b: float, draft_params_b: float, acceptance_rate: float,
                                draft_len: int, weights: str = "fp16") -> dict:
    """Leviathan et al. (2023) speculative-decoding projection with our calibrated roofline decode times.

    `draft_params_b` may be 0 for a draft-free method (prompt lookup / n-gram): its drafting then costs nothing.
    Returns speedup, target/spec/draft ms per token, expected tokens per target step and the draft/target cost
    ratio. Raises RecommenderInputError for out-of-range inputs or a draft not smaller than the target.
    """
    check_number("target size (B params)", target_params_b, low=0.01, high=10_000)
    check_number("draft size (B params)", draft_params_b, low=0.0, high=10_000)
    check_number("acceptance rate", acceptance_rate, low=0.0, high=1.0)
    check_number("draft length", draft_len, low=1, high=64, integer=True)
    if draft_params_b >= target_params_b:
        raise RecommenderInputError("the draft model must be smaller than the target model")
    gpu = GPU.from_name(gpu_id)
    fmt = weight_format(weights)
    cal = default_calibrator()
    cfg = InferenceConfig(weights=fmt.id, engine="hf", prompt_len=128, gen_len=128)

    def step_s(params_b: float, tokens: int) -> float:
        evaluator = InferenceEvaluator(ModelSpec.from_params(params_b), gpu)
        step = evaluator.decode_step(cfg, tokens_per_step=tokens)
        corr = cal.decode_batch([("hf", gpu, fmt, 1, 1, step["bytes_per_gpu"], "single")])[0][0]
        return step["prior_s"] / float(corr)

    target = step_s(target_params_b, 1)
    draft = step_s(draft_params_b, 1) if draft_params_b >= 0.01 else 0.0
    verify = max(target, step_s(target_params_b, draft_len + 1))
    spec = costs.speculative_time_per_token(target, draft, verify, acceptance_rate, draft_len)
    return {"speedup": target / spec, "target_ms_per_token": target * 1e3, "spec_ms_per_token": spec * 1e3,
            "draft_ms_per_token": draft * 1e3, "expected_tokens_per_step":
                costs.speculative_expected_tokens(acceptance_rate, draft_len),
            "cost_ratio": draft / target, "gpu": gpu.id, "weights": fmt.id}


def warm_up() -> None:
    """Fit the default calibration now (under a second) instead of during the first user's first plan."""
    default_calibrator()

