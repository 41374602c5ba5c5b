"""Stable functions for other packages (the live demo, notebooks): plain arguments in, dicts out."""

from __future__ import annotations

from . import costs
from .errors import RecommenderInputError, check_number
from .estimate import InferenceConfig, decode_step_roofline
from .formats import weight_format
from .hardware import GPU, gpu_presets
from .models import ModelSpec, model_presets


def list_gpus() -> list[dict]:
    """Every GPU preset: id, name, memory_gib, bandwidth_gbps, fp16_tflops, int8_tops, vendor, ... source."""
    return [g.to_dict() for g in gpu_presets().values()]


def list_models() -> list[dict]:
    return [m.to_dict() for m in model_presets().values()]


def decode_ms_per_token(gpu_id: str, params_b: float, weights: str = "fp16", batch: int = 1) -> float:
    """Calibrated batch-`batch` decode time of a Llama-shaped model with `params_b` parameters on a preset GPU."""
    from .estimate import estimate_inference

    model = ModelSpec.from_params(params_b)
    est = estimate_inference(model, GPU.from_name(gpu_id),
                             InferenceConfig(weights=weights, engine="hf", batch=batch, prompt_len=128, gen_len=128))
    return float(est.decode_ms_per_token)


def project_speculative_speedup(gpu_id: str, target_params_b: float, draft_params_b: float, acceptance_rate: float,
                                draft_len: int, weights: str = "fp16") -> dict:
    """Leviathan et al. speculative-decoding projection with our calibrated roofline decode times.

    Returns speedup, target/spec ms per token, expected tokens per target step and the draft/target cost ratio.
    """
    check_number("target size (B params)", target_params_b, low=0.01, high=10_000)
    check_number("draft size (B params)", draft_params_b, low=0.001, high=10_000)
    check_number("acceptance rate", acceptance_rate, low=0.0, high=1.0)
    check_number("draft length", draft_len, low=1, high=64, integer=True)
    if draft_params_b >= target_params_b:
        raise RecommenderInputError("the draft model must be smaller than the target model")
    gpu = GPU.from_name(gpu_id)
    fmt = weight_format(weights)
    from .calibration import default_calibrator

    cal = default_calibrator()
    cfg = InferenceConfig(weights=fmt.id, engine="hf", prompt_len=128, gen_len=128)

    def step_s(params_b: float, tokens: int) -> float:
        model = ModelSpec.from_params(params_b)
        step = decode_step_roofline(model, gpu, cfg, tokens_per_step=tokens)
        corr = cal.decode_correction(engine="hf", gpu=gpu, fmt=fmt, num_gpus=1, batch=1,
                                     bytes_per_gpu=step["bytes_per_gpu"], mode="single")[0]
        return step["prior_s"] / corr

    target = step_s(target_params_b, 1)
    draft = step_s(draft_params_b, 1)
    verify = max(target, step_s(target_params_b, draft_len + 1))
    spec = costs.speculative_time_per_token(target, draft, verify, acceptance_rate, draft_len)
    return {"speedup": target / spec, "target_ms_per_token": target * 1e3, "spec_ms_per_token": spec * 1e3,
            "draft_ms_per_token": draft * 1e3, "expected_tokens_per_step":
                costs.speculative_expected_tokens(acceptance_rate, draft_len),
            "cost_ratio": draft / target, "gpu": gpu.id, "weights": fmt.id}


def warm_up() -> None:
    """Fit the default calibration now (about 0.7 s here) instead of during the first user's first plan."""
    from .calibration import default_calibrator

    default_calibrator()
