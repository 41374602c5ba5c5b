"""Saturated-server throughput (docs/cost_model.md §3.8): concurrency, the steady-state formula and its calibration."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from recommender import api
from recommender.calibration import accuracy_report, load_measurements, predict_row
from recommender.errors import RecommenderInputError
from recommender.estimate import InferenceConfig, InferenceEvaluator, saturated_throughput
from recommender.hardware import GPU
from recommender.models import ModelSpec

GIB = 2**30


def test_hand_computation_trtllm_llama31_8b_fp8_h100_128_128():
    """TensorRT-LLM v1.0 perf overview row 177 (https://github.com/NVIDIA/TensorRT-LLM/blob/main/docs/source/
    performance/perf-overview.md): Llama-3.1-8B FP8 on one H100 SXM, ISL/OSL 128/128, measured 28,312 output tok/s.
    B and the uncalibrated (prior) throughput worked out by hand from the preset's numbers."""
    model, gpu = ModelSpec.from_name("llama-3.1-8b"), GPU.from_name("h100-sxm")
    cfg = InferenceConfig(weights="fp8", engine="tensorrt-llm", prompt_len=128, gen_len=128)
    sat = InferenceEvaluator(model, gpu).saturated_throughput(cfg)

    # memory per sequence: K and V, 32 layers, 8 KV heads of 128, 2 bytes, over 128 + 128 tokens
    kv_token = 2 * 32 * 8 * 128 * 2
    assert kv_token == 131_072
    kv_seq = kv_token * 256
    # FP8 blocks at 1 byte per weight; embeddings and output head stay 16-bit (docs/cost_model.md §2.1)
    weights = 6_979_584_000 * 1 + (525_336_576 + 525_336_576) * 2
    # one 8192-token chunk (max_num_tokens) of hidden states in and out plus the FFN intermediate, 2 bytes each
    acts = 8192 * (2 * 4096 + 2 * 14336) * 2
    runtime = 650 * 2**20
    free = 80 * GIB - weights - acts - runtime
    memory_max = math.floor(0.9 * free / kv_seq)   # free_gpu_memory_fraction 0.9
    assert memory_max == 2025 < 4096               # memory binds before trtllm-bench's cap
    assert sat["sequences"] == sat["memory_max_sequences"] == memory_max
    assert sat["limited_by"] == "memory"

    b, params = memory_max, model.active_params
    peak, bw = 1979e12, 3350e9                     # H100 SXM dense FP8 FLOP/s, HBM3 bytes/s (gpus.yaml)
    # decode step at batch B: the blocks and the output head once (the embedding table is only looked up) plus each
    # sequence's KV at the mean context 128 + 64, memory-bound at the fp8 kernels' prior 0.52 of peak bandwidth,
    # versus 2 FLOPs per parameter plus attention, compute-bound at 0.75 of peak
    weights_read = 6_979_584_000 * 1 + 525_336_576 * 2
    memory_s = (weights_read + b * kv_token * (128 + 64)) / bw / 0.52
    compute_s = b * (2 * params + 4 * 32 * 32 * 128 * (128 + 64)) / peak / 0.75
    decode_s = max(memory_s, compute_s)
    # each step also prefills B * ISL/OSL = B prompt tokens at the prefill rate
    prefill_s = b * (2 * params * 128 + 2 * 32 * 128 * 128 * 32 * 128) / 128 / peak / 0.75
    assert sat["decode_step_s"] == pytest.approx(decode_s, rel=1e-9)
    assert sat["prefill_step_s"] == pytest.approx(prefill_s, rel=1e-9)
    assert sat["tokens_per_s"] == pytest.approx(b / (decode_s + prefill_s), rel=1e-9)
    assert 30_000 < sat["tokens_per_s"] < 45_000   # ~37,200 uncalibrated against 28,312 measured
    # the functional face is the same model
    assert saturated_throughput(model, gpu, cfg)["tokens_per_s"] == pytest.approx(sat["tokens_per_s"])


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tensorrt-llm", "tgi"])
def test_more_memory_never_fewer_sequences(engine):
    model = ModelSpec.from_name("llama-3.1-8b")
    cfg = InferenceConfig(weights="fp16", engine=engine, prompt_len=1000, gen_len=1000)
    seqs = []
    for mem in (24, 40, 48, 80, 96, 141, 192):
        gpu = GPU.custom(mem, 3000, 900)
        seqs.append(InferenceEvaluator(model, gpu).saturated_throughput(cfg)["sequences"])
    assert seqs == sorted(seqs), seqs


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tensorrt-llm", "tgi"])
def test_longer_requests_never_more_sequences(engine):
    model, gpu = ModelSpec.from_name("llama-3.1-8b"), GPU.from_name("h100-sxm")
    ev = InferenceEvaluator(model, gpu)
    base = InferenceConfig(weights="fp8", engine=engine, prompt_len=128, gen_len=128)
    for field in ("prompt_len", "gen_len"):
        seqs = [ev.saturated_throughput(replace(base, **{field: n}))["sequences"] for n in (128, 1000, 4096, 20000)]
        assert seqs == sorted(seqs, reverse=True), (field, seqs)


def test_prefill_heavy_requests_give_fewer_output_tokens():
    """At the same total length, more prompt per output token costs prefill time in every step."""
    model, gpu = ModelSpec.from_name("llama-3.1-8b"), GPU.from_name("h100-sxm")
    ev = InferenceEvaluator(model, gpu)
    short_prompt = ev.saturated_throughput(InferenceConfig(weights="fp8", engine="vllm", prompt_len=128, gen_len=2048))
    long_prompt = ev.saturated_throughput(InferenceConfig(weights="fp8", engine="vllm", prompt_len=2048, gen_len=128))
    assert long_prompt["prefill_share"] > short_prompt["prefill_share"]
    assert long_prompt["tokens_per_s"] < short_prompt["tokens_per_s"]


def test_absent_for_engines_without_continuous_batching():
    model, gpu = ModelSpec.from_name("llama-3.1-8b"), GPU.from_name("rtx-4090")
    for engine in ("hf", "llama.cpp"):
        est = api.estimate_inference(model, gpu, InferenceConfig(weights="int4", engine=engine), use_local_runs=False)
        assert est.saturated_throughput_tokens_per_s is None and est.saturated_sequences is None
        with pytest.raises(RecommenderInputError, match="continuously-batching"):
            InferenceEvaluator(model, gpu).saturated_throughput(InferenceConfig(weights="int4", engine=engine))
    est = api.estimate_inference(model, gpu, InferenceConfig(weights="int4", engine="vllm"), use_local_runs=False)
    assert est.saturated_throughput_tokens_per_s > est.throughput_tokens_per_s   # batch 1 is far from saturated
    assert est.saturated_sequences >= 1
    assert est.to_dict()["saturated_sequences"] == est.saturated_sequences


def test_no_room_for_one_sequence_is_an_error():
    model, gpu = ModelSpec.from_name("llama-3.1-70b"), GPU.from_name("h100-sxm")
    cfg = InferenceConfig(weights="fp8", engine="vllm", prompt_len=100_000, gen_len=30_000)
    with pytest.raises(RecommenderInputError, match="no room for one sequence"):
        InferenceEvaluator(model, gpu).saturated_throughput(cfg)
    assert api.estimate_inference(model, gpu, cfg, use_local_runs=False).saturated_throughput_tokens_per_s is None


def test_saturated_rows_form_the_throughput_family_and_other_batch_zero_rows_stay_out():
    rows = [r for r in load_measurements() if r["batch"] == 0]
    for r in rows:
        pred = predict_row(r)
        if r["metric"] != "throughput_tokens_per_s" or min(r["prompt_len"], r["gen_len"]) < 1:
            assert pred is None, r["id"]    # TTFT / per-stream speed under load, or no stated lengths
        elif pred is not None:
            assert pred.family == "throughput", r["id"]
    assert all(predict_row(r) is None or predict_row(r).family != "throughput"
               for r in load_measurements() if r["batch"] >= 1)


def test_throughput_family_in_the_accuracy_report():
    report = accuracy_report()
    block = report["throughput"]
    assert block["calibrated_loso"]["n"] > 40
    assert math.isfinite(block["calibrated_loso"]["median_abs_pct_error"])
    assert "tensorrt-llm" in block["per_engine"]
    assert "trtllm-perf-v1" in block["per_source"]


def test_the_page_sentence_states_the_held_out_error_of_saturated_throughput():
    from recommender import api

    est = api.estimate_inference(api.resolve_model("llama-3.1-8b"), api.resolve_gpu("h100-sxm"),
                                 api.InferenceConfig(weights="fp8", engine="vllm"))
    report = api.calibration_report()
    held = report["throughput"]["calibrated_loso"]
    sentence = api.saturated_note(est, report)
    assert f"{est.saturated_throughput_tokens_per_s:,.0f} output tokens/s" in sentence
    assert f"against {held['n']} published server measurements" in sentence
    assert f"median error is {held['median_abs_pct_error']}%" in sentence
    hf = api.estimate_inference(api.resolve_model("llama-3.1-8b"), api.resolve_gpu("h100-sxm"),
                                api.InferenceConfig(weights="bf16", engine="hf"))
    assert api.saturated_note(hf, report) == ""
