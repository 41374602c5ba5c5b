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
