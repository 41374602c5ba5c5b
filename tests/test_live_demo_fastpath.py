"""Decode paths: the static-cache (and compiled) paths give the eager path's tokens; the choice and the fallback."""

from __future__ import annotations

import shutil

import pytest

from live_demo import fastpath
from live_demo.decoding import chat_prompt_ids, plain_decode
from live_demo.speculative import SpecConfig, build_drafter, speculative_decode

pytest_plugins = ["tests.live_demo_fixtures"]
PROMPT = "The cat sat on the mat. The cat sat on the"


@pytest.fixture(scope="module")
def prompt_ids(tiny_lm):
    return chat_prompt_ids(tiny_lm.tokenizer, PROMPT)


@pytest.mark.parametrize("temperature", [0.0, 1.0])  # sampling draws from the logits: equal tokens, equal logits
def test_static_cache_plain_decoding_gives_the_eager_tokens(tiny_lm, prompt_ids, temperature):
    eager = plain_decode(tiny_lm.model, prompt_ids, 40, temperature=temperature, seed=3, path="eager")
    static = plain_decode(tiny_lm.model, prompt_ids, 40, temperature=temperature, seed=3, path="static")
    assert static.new_ids == eager.new_ids and static.extra["decode_path"] == "static"


@pytest.mark.parametrize("drafter", ["prompt-lookup", "int8-self", "early-exit", "draft-model"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_static_cache_speculative_loop_gives_the_eager_tokens(tiny_lm, tiny_draft, prompt_ids, drafter, temperature):
    config = SpecConfig(draft_len=3, max_new_tokens=40, temperature=temperature, seed=5)
    runs = {p: speculative_decode(tiny_lm.model, build_drafter(drafter, tiny_lm.model, tiny_draft.model), prompt_ids,
                                  config, path=p) for p in ("eager", "static")}
    assert runs["static"].new_ids == runs["eager"].new_ids
    assert runs["static"].accepted == runs["eager"].accepted  # rejected drafts were rewound the same way
    if temperature == 0:
        assert runs["static"].new_ids == plain_decode(tiny_lm.model, prompt_ids, 40, path="eager").new_ids


def test_the_path_is_chosen_by_device_with_a_visible_note(monkeypatch):
    monkeypatch.delenv(fastpath.ENV_VAR, raising=False)
    cpu = fastpath.choose_path("cpu")
    assert cpu.name == "eager" and "CPU" in cpu.note
    assert fastpath.choose_path("cuda").name == "compiled"
    monkeypatch.setenv(fastpath.ENV_VAR, "static")
    assert fastpath.choose_path("cpu").name == "static"
    monkeypatch.setenv(fastpath.ENV_VAR, "turbo")
    with pytest.raises(ValueError, match="decode path"):
        fastpath.choose_path("cpu")


def test_a_failing_compiled_path_falls_back_to_eager_with_the_reason(tiny_lm, prompt_ids, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    model = tiny_lm.model
    monkeypatch.setattr(fastpath, "_compiled", broken)
    fastpath._FAILED.pop(model, None)
    run = plain_decode(model, prompt_ids, 6, path="compiled")
    assert run.extra["decode_path"] == "eager" and "no compiler here" in run.extra["decode_note"]
    assert run.new_ids == plain_decode(model, prompt_ids, 6, path="eager").new_ids
    assert fastpath.choose_path("cuda", model=model).name == "eager"  # remembered for this model
    fastpath._FAILED.pop(model, None)


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")),
                    reason="torch.compile's CPU backend (inductor) needs a C++ compiler")
def test_compiled_path_on_cpu_gives_the_eager_tokens(tiny_lm, prompt_ids):
    """torch.compile (inductor) on the CPU gives the eager tokens (about 20 s of compilation on two cores;
    bench/gpu_check.sh checks the compiled path with CUDA graphs on a GPU)."""
    compiled = plain_decode(tiny_lm.model, prompt_ids, 24, path="compiled")
    assert compiled.extra["decode_path"] == "compiled", compiled.extra
    assert compiled.new_ids == plain_decode(tiny_lm.model, prompt_ids, 24, path="eager").new_ids
    assert fastpath.compile_seconds(tiny_lm.model) > 0


# ---------------------------------------------------------------- batch sweep and the GPU-check bench sections

def test_batch_sweep_reports_rate_bandwidth_and_records_kind_sweep(tiny_lm, history_db):
    from common.history import RunHistory
    from live_demo import api

    report = api.run_sweep(tiny_lm, ["baseline", "int4-g32"], (1, 2), new_tokens=4, repeats=1)
    assert [(r["method"], r["batch"]) for r in report.rows] == [("fp32", 1), ("fp32", 2), ("int4-g32", 1),
                                                                ("int4-g32", 2)]
    for r in report.rows:
        assert r["tokens_per_s_min"] <= r["tokens_per_s"] <= r["tokens_per_s_max"] and r["pct_of_peak"] > 0
        assert r["achieved_gbps"] == pytest.approx(r["pct_of_peak"] * report.peak_gbps / 100)
    report.record(RunHistory())
    rows = RunHistory().rows("sweep")
    assert [(r["settings"]["weight_format"], r["settings"]["batch"]) for r in rows] == [
        ("fp32", 1), ("fp32", 2), ("int4-g32", 1), ("int4-g32", 2)]
    with pytest.raises(ValueError, match="batch"):
        api.run_sweep(tiny_lm, ["baseline"], (0,), new_tokens=4, repeats=1)


def test_bench_gpu_sections_run_on_the_cpu(tiny_lm, monkeypatch):
    from live_demo import bench

    monkeypatch.setattr("live_demo.models.load_model", lambda *a, **k: tiny_lm)
    result = bench.run_bench(device="cpu", quick=True, model_id="tiny", record=False,
                             sections=("decode_paths", "outliers"))
    assert "errors" not in result, result.get("errors")
    paths = result["decode_paths"]
    assert {"eager", "static", "transformers_generate", "transformers_generate_static"} <= set(paths)
    assert paths["prompt_lookup_copy"]["identical_to_greedy"] is True
    assert result["outliers"]["all_finite"] is True and "int8-weight-only" in result["outliers"]["methods"]
    assert result["goals"]["no_non_finite_on_the_outlier_test"] is True
    with pytest.raises(ValueError, match="unknown bench sections"):
        bench.run_bench(device="cpu", model_id="tiny", sections=("turbo",))
