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
