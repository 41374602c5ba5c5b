"""Cost-model sanity checks from the issue, data-file schemas and hypothesis properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender import costs
from recommender.api import InferenceConfig, TrainingConfig, estimate_inference, estimate_training
from recommender.calibration import load_measurements
from recommender.formats import FORMATS
from recommender.hardware import GPU, gpu_presets
from recommender.models import ModelSpec, model_presets
from recommender.techniques import techniques

FAST = {"deadline": None, "max_examples": 40}


def infer(model, gpu, **kw):
    return estimate_inference(ModelSpec.from_name(model) if isinstance(model, str) else model,
                              GPU.from_name(gpu) if isinstance(gpu, str) else gpu, InferenceConfig(**kw))


# ---------------------------------------------------------------- sanity tests from the issue
def test_llama2_7b_fp16_fits_on_one_80gb_gpu():
    est = infer("llama-2-7b", "a100-80gb", weights="fp16")
    assert est.fits
    assert 12.5 < est.memory_breakdown_gib["weights"] < 13.0   # 6.74B x 2 bytes = 12.55 GiB


def test_llama2_70b_4bit_does_not_fit_in_24gb():
    est = infer("llama-2-70b", "rtx-4090", weights="int4")
    assert not est.fits
    assert est.memory_breakdown_gib["weights"] > 24


def test_qlora_65b_fits_48gb_and_full_7b_does_not_fit_24gb():
    qlora = estimate_training(ModelSpec.from_name("llama-65b"), GPU.custom(48), TrainingConfig(method="qlora"))
    assert qlora.fits, qlora.memory_breakdown_gib
    full = estimate_training(ModelSpec.from_name("llama-2-7b"), GPU.from_name("rtx-4090"), TrainingConfig(method="full"))
    assert not full.fits
    assert full.per_gpu_memory_gib > 6.74 * 16 * 1e9 / 2**30 * 0.99   # at least the 16 bytes/param model state


def test_gqa_shrinks_kv_cache_by_head_ratio():
    gqa = ModelSpec.from_name("llama-2-70b")
    mha = ModelSpec(**{**gqa.__dict__, "id": "mha", "kv_heads": gqa.heads})
    ratio = costs.kv_bytes_per_token(mha, 2) / costs.kv_bytes_per_token(gqa, 2)
    assert ratio == pytest.approx(gqa.heads / gqa.kv_heads)
    assert costs.kv_cache_bytes(mha, 2, 4096, 8) / costs.kv_cache_bytes(gqa, 2, 4096, 8) == pytest.approx(8)


def test_kv_per_token_matches_reference_table():
    # hardware_and_models.md: Llama-2-7B 512 KiB, Llama-3-8B 128 KiB, Qwen2.5-7B 56 KiB, Gemma-2-9B 336 KiB
    for mid, kib in [("llama-2-7b", 512), ("llama-3-8b", 128), ("qwen2.5-7b", 56), ("gemma-2-9b", 336),
                     ("llama-2-70b", 320), ("falcon-40b", 120)]:
        assert costs.kv_bytes_per_token(ModelSpec.from_name(mid), 2) / 1024 == pytest.approx(kib), mid


def test_sliding_window_caps_kv():
    mistral = ModelSpec.from_name("mistral-7b")
    assert costs.kv_cache_bytes(mistral, 2, 32_000, 1) == pytest.approx(costs.kv_cache_bytes(mistral, 2, 4096, 1))
    gemma = ModelSpec.from_name("gemma-2-9b")   # half the layers windowed
    long, short = costs.kv_cache_bytes(gemma, 2, 8192, 1), costs.kv_cache_bytes(gemma, 2, 4096, 1)
    assert long == pytest.approx(short * 1.5)


def test_moe_memory_uses_total_and_decode_uses_active():
    mixtral = ModelSpec.from_name("mixtral-8x7b")
    assert mixtral.total_params_b == pytest.approx(46.7, rel=0.01)
    assert mixtral.active_params / 1e9 == pytest.approx(12.9, rel=0.02)
    one = costs.weight_read_bytes_per_step(mixtral, 16, 1)
    many = costs.weight_read_bytes_per_step(mixtral, 16, 256)
    assert one < 0.35 * costs.weight_bytes(mixtral, 16)["total"] < many


def test_ridge_point_matches_reference():
    # cost_model.md 3.2.3: about 153 on A100 fp16 and 295 on H100 SXM
    assert costs.ridge_batch(312e12, 2039e9, 2) == pytest.approx(153, rel=0.01)
    assert costs.ridge_batch(989e12, 3350e9, 2) == pytest.approx(295, rel=0.01)


def test_speculative_formula():
    assert costs.speculative_expected_tokens(0.0, 4) == 1
    assert costs.speculative_expected_tokens(1.0, 4) == 5
    assert costs.speculative_expected_tokens(0.8, 4) == pytest.approx((1 - 0.8**5) / 0.2)


def test_quantized_decode_is_faster_but_less_than_bits_ratio():
    fp16 = infer("llama-2-7b", "a100-80gb", weights="fp16", engine="gpt-fast")
    int4 = infer("llama-2-7b", "a100-80gb", weights="int4-g32", engine="gpt-fast")
    speedup = fp16.decode_ms_per_token / int4.decode_ms_per_token
    assert 1.3 < speedup < 3.2   # quantized kernels reach a lower share of peak (gpt-fast: 1.9x)


def test_offload_fits_but_is_slow():
    est = infer("llama-2-70b", "rtx-4090", weights="int4", offload="overlap")
    assert est.fits and est.offloaded_gib > 5
    assert est.decode_ms_per_token > 200


# ---------------------------------------------------------------- data files
def test_presets_are_plentiful_and_varied():
    gpus = gpu_presets()
    assert len(gpus) >= 15 and len(model_presets()) >= 15
    assert {g.vendor for g in gpus.values()} >= {"nvidia", "amd", "apple"}
    assert {g.kind for g in gpus.values()} >= {"datacenter", "consumer"}
    for gid in ("a100-80gb", "h100-sxm", "rtx-4090", "t4", "l4"):
        assert gid in gpus
    for mid in ("llama-2-7b", "llama-2-70b", "llama-3-8b", "mistral-7b", "mixtral-8x7b", "qwen2.5-7b"):
        assert mid in model_presets()


def test_every_gpu_and_model_has_a_source():
    for g in gpu_presets().values():
        assert g.source and g.confidence in ("V", "V2", "U"), g.id
        assert g.memory_gib > 0 and g.bandwidth_gbps > 0 and g.fp16_tflops > 0
    for m in model_presets().values():
        assert m.source, m.id


@pytest.mark.parametrize("mid", list(model_presets()))
def test_parameter_count_matches_published(mid):
    m = model_presets()[mid]
    assert m.total_params_b == pytest.approx(m.params_b, rel=0.03)


def test_techniques_cover_the_issue_and_have_sources():
    t = techniques()
    required = {"fp16", "bf16", "llm-int8", "smoothquant", "gptq", "awq", "nf4", "gptq-3bit", "quip", "kv-fp8",
                "h2o", "streamingllm", "scissorhands", "flashattention", "vllm", "speculative-decoding", "medusa",
                "prompt-lookup", "sparsegpt", "wanda", "flexgen", "zero-inference", "tensor-parallel", "lora",
                "qlora", "gradient-checkpointing", "adam-8bit", "paged-adam-8bit", "zero", "fsdp", "lomo", "mezo"}
    assert required <= set(t)
    for tech in t.values():
        assert tech.source and tech.quality_tier in ("exact", "negligible", "low", "medium", "high")


def test_catalog_ids_exist_in_catalog():
    try:
        from catalog import load_catalog
    except ImportError:
        pytest.skip("catalog package not importable yet")
    cat = load_catalog()
    if not hasattr(cat, "technique_ids"):
        pytest.skip("catalog has no technique_ids() yet")
    known = set(cat.technique_ids())
    missing = sorted({t.catalog_id for t in techniques().values() if t.catalog_id} - known)
    assert not missing, f"catalog ids not in the catalog: {missing}"


def test_measurements_schema():
    rows = load_measurements()
    assert len(rows) >= 60
    for r in rows:
        assert r["source_url"].startswith("https://")
        assert r["value"] > 0 and math.isfinite(r["value"])
        assert r["weights"] in FORMATS
        assert r["model"] in model_presets()
        assert not r["gpu"] or r["gpu"] in gpu_presets()
    assert len({r["source_id"] for r in rows}) >= 5


# ---------------------------------------------------------------- hypothesis properties
BITS = sorted({f.bits_per_weight for f in FORMATS.values()})


@settings(**FAST)
@given(st.sampled_from(list(model_presets())), st.sampled_from(BITS), st.sampled_from(BITS))
def test_fewer_bits_never_more_memory(mid, b1, b2):
    m = model_presets()[mid]
    lo, hi = sorted((b1, b2))
    assert costs.weight_bytes(m, lo)["total"] <= costs.weight_bytes(m, hi)["total"]


@settings(**FAST)
@given(st.sampled_from(["fp16", "int8", "int4", "nf4", "int3", "int2"]), st.sampled_from(["fp16", "int8", "int4"]))
def test_fewer_bits_never_more_total_inference_memory(weights, kv):
    order = ["int2", "int3", "nf4", "int4", "int8", "fp16"]
    lower = order[: order.index(weights) + 1]
    base = infer("llama-2-13b", "a100-80gb", weights=weights, kv=kv).memory_gib
    for w in lower:
        assert infer("llama-2-13b", "a100-80gb", weights=w, kv=kv).memory_gib <= base + 1e-9


@settings(**FAST)
@given(st.floats(0.1, 400), st.floats(1.01, 3.0), st.sampled_from(["a100-80gb", "rtx-4090", "m2-ultra", "t4"]),
       st.sampled_from(["fp16", "int4"]))
def test_more_params_never_less_memory_or_faster_decode(p, factor, gpu, weights):
    small = infer(ModelSpec.from_params(p), gpu, weights=weights, engine="hf")
    big = infer(ModelSpec.from_params(min(p * factor, 10_000)), gpu, weights=weights, engine="hf")
    assert big.memory_gib >= small.memory_gib
    assert big.decode_ms_per_token >= small.decode_ms_per_token * (1 - 1e-9)


@settings(**FAST)
@given(st.integers(1, 512), st.integers(1, 8192))
def test_kv_cache_linear_in_batch_and_context(batch, ctx):
    m = model_presets()["llama-3-8b"]
    one = costs.kv_cache_bytes(m, 2, ctx, 1)
    assert costs.kv_cache_bytes(m, 2, ctx, batch) == pytest.approx(one * batch)
    assert one == pytest.approx(costs.kv_bytes_per_token(m, 2) * ctx)


def test_recommender_formats_match_the_shared_vocabulary():
    from common.formats import WEIGHT_FORMAT_IDS
    from recommender.formats import FORMATS

    assert tuple(FORMATS) == WEIGHT_FORMAT_IDS
