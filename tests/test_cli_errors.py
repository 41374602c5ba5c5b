"""Both command lines turn bad arguments into one printable line on stderr and a non-zero exit, never a traceback.

Most cases call each CLI's main() in-process (fast, same code path as `python -m ...`); a few run the real
module in a subprocess to prove the process-level contract (exit status, nothing on stdout).
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from catalog.__main__ import main as catalog_main
from recommender.cli import main as recommender_main
from recommender.models import MAX_CONFIG_BYTES

ROOT = Path(__file__).resolve().parents[1]


def call(main, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:   # argparse's --help and friends; errors must not get here
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code, out: str, err: str) -> None:
    assert code not in (0, None), (code, err)
    assert "Traceback" not in err and not out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert lines[0].isprintable() and len(lines[0]) <= 410, "no terminal escapes, no floods"


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("configs")
    (folder / "inf.json").write_text('{"num_hidden_layers": 1e400, "hidden_size": 4096}')
    (folder / "nan.json").write_text('{"num_hidden_layers": NaN}')
    (folder / "binary.json").write_bytes(b"\xff\xfe\x00\x01")
    (folder / "deep.json").write_text("[" * 100_000)
    (folder / "huge.json").write_bytes(b" " * (MAX_CONFIG_BYTES + 1))
    (folder / "experts.json").write_text(json.dumps({"num_hidden_layers": 2, "hidden_size": 64, "vocab_size": 10,
                                                     "num_attention_heads": 4, "num_local_experts": "eight"}))
    return folder


RECOMMENDER_CASES = [
    ["plan", "--model", "llama-2-7b", "--gpu", "t4", "--max-plans", "0"],
    ["plan", "--model", "llama-2-7b", "--gpu", "t4", "--max-plans", "-3"],
    ["plan", "--model", "llama-2-7b", "--gpu", "t4", "--latency-ms-per-token", "nan"],
    ["plan", "--model", "llama-2-7b", "--gpu", "t4", "--ttft-ms", "inf"],
    ["plan", "--model", "llama-2-7b", "--gpu", "t4", "--quality", "perfect"],
    ["estimate", "--model", "llama-2-7b", "--gpu", "t4", "--num-gpus", "abc"],
    ["estimate", "--model", "llama-2-7b", "--gpu", "t4", "--prompt-len", "0"],
    ["estimate", "--model", "llama-2-7b", "--gpu", "t4", "--gen-len", "99999999999"],
    ["estimate", "--model", "llama-2-7b", "--gpu", "t4", "--kv", "int3"],
    ["estimate", "--model", "llama-2-7b", "--gpu", "t4", "--framework", "tgi2"],
    ["estimate", "--params-b", "-1", "--gpu", "t4"],
    ["estimate", "--params-b", "inf", "--gpu", "t4"],
    ["estimate", "--params-b", "7", "--gpu-mem-gib", "-24"],
    ["estimate", "--params-b", "7", "--gpu-mem-gib", "24", "--gpu-bandwidth-gbps", "0"],
    ["estimate", "--model", "x" * 100_000, "--gpu", "t4"],
    ["estimate", "--model", "\x1b[31mred\nline", "--gpu", "t4"],
    ["estimate", "--model", "llama-2-7b", "--gpu", "<script>"],
    ["calibrate", "--write", "/nonexistent-dir/x/report.md"],
    ["estimate", "--model", "llama-2-7b"],
    [],
    ["--bogus"],
]


@pytest.mark.parametrize("argv", RECOMMENDER_CASES, ids=lambda a: " ".join(a)[:40] or "no-args")
def test_recommender_bad_arguments(argv):
    assert_one_line_error(*call(recommender_main, argv))


@pytest.mark.parametrize("name", ["inf.json", "nan.json", "binary.json", "deep.json", "huge.json", "experts.json",
                                  "missing.json", "."])
def test_recommender_bad_config_files(configs, name):
    code, out, err = call(recommender_main, ["plan", "--config", str(configs / name), "--gpu", "t4"])
    assert_one_line_error(code, out, err)
    if name == "huge.json":
        assert "too large" in err


CATALOG_CASES = [
    [], ["bogus"], ["search"], ["search", "gptq", "--limit", "0"], ["search", "gptq", "--limit", "-1"],
    ["search", "gptq", "--limit", "many"], ["search", "x" * 1000], ["search", "gptq", "--stage", "nope"],
    ["show", "gptqq"], ["show", "x" * 100_000], ["show", "\x00\x1b[2J"], ["export", "--format", "xml"],
    ["build", "--survey", "/nonexistent/survey.txt"],
]


@pytest.mark.parametrize("argv", CATALOG_CASES, ids=lambda a: " ".join(a)[:40] or "no-args")
def test_catalog_bad_arguments(argv):
    assert_one_line_error(*call(catalog_main, argv))


def test_catalog_odd_but_valid_queries_succeed():
    for query in ["", "\x00\x01", "<script>", "**x**", "🙂"]:
        code, _, err = call(catalog_main, ["search", query, "--json"])
        assert code == 0 and "Traceback" not in err


@pytest.mark.parametrize("module,argv", [
    ("catalog", ["search", "gptq", "--limit", "0"]),
    ("catalog", ["frobnicate"]),
    ("recommender", ["plan", "--params-b", "nan", "--gpu", "t4"]),
    ("recommender", ["estimate", "--model", "llama-2-7b", "--gpu", "nope"]),
])
def test_real_process_exits_non_zero_with_one_line(module, argv):
    proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr)


# ---- contradictions, impossible setups and malformed configs: exit status 2, one line naming the option or field
M7 = ["estimate", "--model", "llama-2-7b", "--gpu", "h100-sxm"]
CONFLICT_CASES = [
    # a stack that names an engine against a different --framework
    (M7 + ["--techniques", "vllm", "--framework", "hf"], ["vllm", "hf", "--framework"]),
    (M7 + ["--techniques", "awq,vllm", "--framework", "llama.cpp"], ["vllm", "llama.cpp"]),
    # a memory share on engines that allocate on demand (every engine but vllm and sglang)
    (M7 + ["--framework", "hf", "--gpu-memory-utilization", "0.8"], ["--gpu-memory-utilization", "hf", "vllm, sglang"]),
    (M7 + ["--framework", "llama.cpp", "--gpu-memory-utilization", "0.8"], ["--gpu-memory-utilization", "llama.cpp"]),
    (M7 + ["--gpu-memory-utilization", "0.8"], ["--gpu-memory-utilization", "hf"]),
    # fine-tuning-only options with an inference workload (the reverse of the inference-only check)
    (M7 + ["--lora-rank", "8"], ["--lora-rank", "fine-tuning"]),
    (M7 + ["--optimizer", "adam-8bit"], ["--optimizer", "fine-tuning"]),
    (M7 + ["--no-checkpointing"], ["--no-checkpointing", "fine-tuning"]),
    (M7 + ["--sharding", "zero3"], ["--sharding", "fine-tuning"]),
    (M7 + ["--sharding", "none"], ["--sharding", "fine-tuning"]),
    # blank values are errors, never the defaults
    (M7 + ["--weights", " "], ["--weights", "blank"]),
    (M7 + ["--kv", ""], ["--kv", "blank"]),
    (M7 + ["--framework", "  "], ["--framework", "blank"]),
    (["estimate", "--model", " ", "--gpu", "t4"], ["--model", "blank"]),
    (M7 + ["--techniques", ",,,"], ["--techniques", "empty"]),
    (M7 + ["--techniques", "awq,,vllm"], ["--techniques", "empty"]),
    # weight or KV formats the engine cannot run: the engine and what it runs
    (M7 + ["--weights", "exl2-4.0", "--framework", "llama.cpp"], ["exl2-4.0", "llama.cpp", "q4_k_m"]),
    (M7 + ["--weights", "exl2-4.65", "--framework", "vllm"], ["exl2-4.65", "vllm", "awq-marlin"]),
    (M7 + ["--weights", "awq-marlin", "--framework", "llama.cpp"], ["awq-marlin", "llama.cpp", "it runs"]),
    (M7 + ["--weights", "int8-bnb", "--framework", "tensorrt-llm"], ["int8-bnb", "tensorrt-llm", "fp8"]),
    (M7 + ["--weights", "q4_k_m", "--framework", "exllamav2"], ["q4_k_m", "exllamav2", "exl2-<bits>"]),
    (M7 + ["--kv", "q4_0", "--framework", "vllm"], ["--kv q4_0", "vllm", "fp8"]),
    (M7 + ["--kv", "fp8", "--framework", "llama.cpp"], ["--kv fp8", "llama.cpp", "q8_0"]),
    # tensor parallelism needs the attention heads divisible by the GPU count (Llama-2-7B: 32 heads)
    (M7 + ["--num-gpus", "3", "--framework", "vllm"], ["3 GPUs", "32 attention heads", "vllm", "--num-gpus"]),
    (M7 + ["--num-gpus", "6", "--framework", "sglang"], ["6 GPUs", "32 attention heads"]),
    (M7 + ["--num-gpus", "3", "--techniques", "fp8,vllm"], ["3 GPUs", "32 attention heads"]),
    # EXL2 outside ExLlamaV2's 2-8 bits per weight
    (M7 + ["--weights", "exl2-9", "--framework", "exllamav2"], ["EXL2", "between 2 and 8"]),
    (M7 + ["--weights", "exl2-1.5"], ["EXL2", "between 2 and 8"]),
    (M7 + ["--weights", "exl2-abc"], ["EXL2", "number"]),
    # choices stay validated whatever their case
    (M7 + ["--largest", "Contexts"], ["--largest", "context"]),
    # an architecture feature is the model's, not a technique to add to a stack
    (M7 + ["--techniques", "gqa,vllm"], ["gqa", "architecture"]),
]


@pytest.mark.parametrize("argv,needles", CONFLICT_CASES, ids=lambda a: " ".join(a[5:]) if isinstance(a, list) and
                         len(a) > 5 else None)
def test_recommender_conflicts_and_impossible_setups(argv, needles):
    code, out, err = call(recommender_main, argv)
    assert code == 2
    assert_one_line_error(code, out, err)
    for needle in needles:
        assert needle in err, (needle, err)


BASE_CONFIG = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "vocab_size": 100,
               "num_attention_heads": 4, "intermediate_size": 128}
CONFIG_CASES = [
    ({"model_type": "mixtral", "num_local_experts": 0, "num_experts_per_tok": 2}, ["num_local_experts", ">= 1"]),
    ({"model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 5},
     ["num_experts_per_tok (5)", "num_local_experts = 4"]),
    ({"quantization_config": "fp8"}, ["quantization_config", "object"]),
    ({"rope_scaling": "linear"}, ["rope_scaling", "object"]),
    ({"num_attention_heads": 5}, ["field hidden_size", "not a multiple"]),
    ({"hidden_act": 5}, ["field hidden_act", "expected str"]),
    ({"model_type": "gemma3_text", "sliding_window": 512, "sliding_window_pattern": 0},
     ["field sliding_window_pattern", "divides by is 0"]),
]


@pytest.mark.parametrize("extra,needles", CONFIG_CASES, ids=lambda x: ",".join(x) if isinstance(x, dict) else None)
def test_recommender_malformed_config_names_the_field(tmp_path, extra, needles):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**BASE_CONFIG, **extra}))
    code, out, err = call(recommender_main, ["estimate", "--config", str(path), "--gpu", "t4"])
    assert code == 2
    assert_one_line_error(code, out, err)
    assert "validation error" not in err.lower() and "to_dict" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_recommender_config_directory_says_directory(tmp_path):
    code, out, err = call(recommender_main, ["estimate", "--config", str(tmp_path), "--gpu", "t4"])
    assert code == 2
    assert_one_line_error(code, out, err)
    assert "is a directory" in err and "--config" in err


def test_tgi_runs_exl2_at_any_bits():
    """TGI's launcher lists --quantize exl2 (data/engines.yaml); an EXL2 width on TGI is no longer refused."""
    code, out, err = call(recommender_main, ["estimate", "--model", "llama-2-7b", "--gpu", "rtx-4090", "--weights",
                                             "exl2-4.65", "--framework", "tgi", "--json"])
    assert code == 0, err
    assert json.loads(out)["settings"]["weights"] == "exl2-4.65"
