"""The CLI contract other checks rely on (subprocess, JSON on stdout, one-line errors with exit code 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    proc = subprocess.run([sys.executable, "-m", "recommender", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_estimate_inference_json():
    rc, out, err = run("estimate", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--json")
    assert rc == 0, err
    data = json.loads(out)
    for key in ("memory_gib", "fits", "ttft_ms", "decode_ms_per_token", "decode_tokens_per_s"):
        assert key in data
    assert data["fits"] is True


def test_estimate_finetune_json():
    rc, out, _ = run("estimate", "--model", "llama-2-7b", "--gpu", "rtx-4090", "--workload", "finetune-full",
                     "--json")
    assert rc == 0
    assert json.loads(out)["fits"] is False


def test_plan_json_with_diagnosis():
    rc, out, err = run("plan", "--params-b", "70", "--gpu-mem-gib", "24", "--quality", "small", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert "diagnosis" in data and data["plans"]
    assert {"techniques", "memory_gib", "decode_ms_per_token", "quality_risk", "fits", "meets_latency",
            "reasons"} <= set(data["plans"][0])


def test_models_and_gpus_list():
    rc, out, _ = run("models")
    assert rc == 0 and any(m["id"] == "mixtral-8x7b" for m in json.loads(out)["models"])
    rc, out, _ = run("gpus")
    assert rc == 0 and any(g["id"] == "t4" for g in json.loads(out)["gpus"])


@pytest.mark.parametrize("args", [
    ("estimate", "--model", "lama-2-7b", "--gpu", "a100-80gb"),
    ("estimate", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--batch", "-3"),
    ("estimate", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--weights", "int5"),
    ("estimate", "--params-b", "nan", "--gpu", "t4"),
    ("plan", "--params-b", "1e12", "--gpu", "t4"),
    ("plan", "--model", "llama-2-7b", "--gpu-mem-gib", "0"),
    ("plan", "--model", "llama-2-7b"),
    ("estimate", "--config", "/nonexistent/config.json", "--gpu", "t4"),
    ("bogus",),
])
def test_bad_input_is_one_line_exit_2(args):
    rc, out, err = run(*args)
    assert rc == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:")


def test_suggests_closest_preset():
    _, _, err = run("estimate", "--model", "mistral7b", "--gpu", "t4")
    assert "mistral-7b" in err


# ---- in-process checks (same code path as `python -m recommender`, without a process start each)
def call(*args) -> tuple[int, dict | None, str]:
    import contextlib
    import io

    from recommender.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, (json.loads(out.getvalue()) if code == 0 else None), err.getvalue()


M7 = ("estimate", "--model", "llama-2-7b", "--gpu", "h100-sxm")


@pytest.mark.parametrize("argv,attr,value", [
    (["estimate", "--largest", "Context"], "largest", "context"),
    (["estimate", "--largest", "BATCH"], "largest", "batch"),
    (["estimate", "--optimizer", "AdamW"], "optimizer", "adamw"),
    (["estimate", "--sharding", "FSDP"], "sharding", "fsdp"),
    (["estimate", "--workload", "Finetune-LoRA"], "workload", "finetune-lora"),
    (["estimate", "--framework", "VLLM"], "framework", "vllm"),
    (["plan", "--quality", "SMALL"], "quality", "small"),
    (["plan", "--objective", "Fastest"], "objective", "fastest"),
])
def test_every_choice_option_is_case_insensitive(argv, attr, value):
    from recommender.cli import build_parser

    assert getattr(build_parser().parse_args(argv), attr) == value


def test_largest_context_is_capped_at_the_model_context():
    code, data, err = call(*M7, "--weights", "int4", "--framework", "vllm", "--largest", "Context")
    assert code == 0, err
    # Llama-2-7B takes 4,096 tokens; with the default 256-token output the prompt can be 3,840 at most
    assert data["model_context"] == 4096
    assert data["largest_context"] == 4096 - 256 and data["largest_context_capped_at_model_context"] is True
    code, data, err = call("estimate", "--model", "llama-2-7b", "--gpu", "t4", "--batch", "16", "--largest", "context")
    assert code == 0, err
    assert data["largest_context"] < 4096 - 256 and data["largest_context_capped_at_model_context"] is False


def test_api_largest_fitting_caps_and_reports():
    from recommender import api

    model, gpu = api.resolve_model("llama-2-7b"), api.resolve_gpu("h100-sxm")
    cfg = api.InferenceConfig(weights="int4", engine="vllm", gen_len=100)
    report = api.largest_fitting_report(model, gpu, cfg, "context")
    assert report == {"value": 4096 - 100, "capped_at_model_context": True, "model_context": 4096}
    assert api.largest_fitting(model, gpu, cfg, "context") == 4096 - 100   # the page's call: still an int
    train = api.TrainingConfig(method="lora")
    assert api.largest_fitting(model, gpu, train, "context") == 4096
    assert api.largest_fitting_report(model, gpu, cfg, "batch")["capped_at_model_context"] is False


def test_exl2_at_any_bits_per_weight():
    from recommender.formats import weight_format

    fmt = weight_format("EXL2-4.65")
    assert (fmt.id, fmt.bits_per_weight, fmt.kernel) == ("exl2-4.65", 4.65, "exl2")
    assert weight_format("exl2-4") is weight_format("exl2-4.0")   # a listed target returns its row
    mem = {}
    for w in ("exl2-4.0", "exl2-4.65", "exl2-5.0"):
        code, data, err = call(*M7, "--weights", w, "--framework", "exllamav2")
        assert code == 0, err
        mem[w] = data["memory_breakdown_gib"]["weights"]
    assert mem["exl2-4.0"] < mem["exl2-4.65"] < mem["exl2-5.0"]


def test_fp4_weights_warn_about_fp4_not_fp8():
    code, data, err = call("estimate", "--model", "llama-2-7b", "--gpu", "rtx-3090", "--weights", "nvfp4",
                           "--framework", "vllm")
    assert code == 0, err
    text = " ".join(data["warnings"])
    assert "FP4" in text and "FP8" not in text
    code, data, err = call("estimate", "--model", "llama-2-7b", "--gpu", "rtx-3090", "--weights", "fp8",
                           "--framework", "vllm")
    assert code == 0 and any("FP8" in w for w in data["warnings"])   # the FP8 check itself is unchanged


def test_qlora_on_a_custom_gpu_does_not_claim_it_is_not_nvidia():
    code, data, err = call("estimate", "--params-b", "8", "--gpu-mem-gib", "24", "--workload", "finetune-qlora")
    assert code == 0, err
    assert not any("NVIDIA" in w for w in data["warnings"])
    code, data, err = call("estimate", "--params-b", "8", "--gpu", "mi300x", "--workload", "finetune-qlora")
    assert code == 0, err
    assert any("NVIDIA" in w for w in data["warnings"])   # a known non-NVIDIA GPU still warns


def test_plan_stack_round_trips_through_estimate_techniques():
    """README: a plan's `stack` passed to `estimate --techniques` (same model and GPU) gives the plan's numbers."""
    code, data, err = call("plan", "--model", "llama-3.1-70b", "--gpu", "h200", "--json", "--no-exports",
                           "--no-pareto", "--max-plans", "1")
    assert code == 0, err
    top = data["plans"][0]
    code, again, err = call("estimate", "--model", "llama-3.1-70b", "--gpu", "h200", "--techniques",
                            ",".join(top["stack"]))
    assert code == 0, err
    assert again["stack"] == top["stack"]
    assert again["per_gpu_memory_gib"] == top["per_gpu_memory_gib"]
    assert again["decode_ms_per_token"] == top["decode_ms_per_token"]
