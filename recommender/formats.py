"""Weight storage formats: effective bits per weight (with quantization metadata) and kernel class."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import RecommenderInputError, closest_ids


@dataclass(frozen=True)
class WeightFormat:
    """How transformer-block weights are stored. Embeddings/lm_head stay 16-bit unless `quantizes_embeddings`."""

    id: str
    bits_per_weight: float
    kernel: str                    # calibration feature: which kernel family reads these weights
    prior_mbu: float               # share of peak bandwidth decode reaches before calibration
    quantizes_embeddings: bool = False
    needs: str = ""                # hardware flag required ("bf16", "fp8")
    source: str = ""


# prior_mbu: gpt-fast README, Llama-2-7B on A100-80GB (2,039 GB/s peak): bf16 1,397 GB/s (0.69),
# int8 1,069 GB/s (0.52), int4 g32 863 GB/s (0.42). bitsandbytes: LLM.int8() paper reports 15-23% slower
# than fp16 per token at half the bytes -> 0.69 * 0.5 / 1.19 = 0.29. NF4 has no published share; QLoRA's
# README says 4-bit inference is slow without fused kernels, so we start from half the int4 share.
FORMATS: dict[str, WeightFormat] = {f.id: f for f in [
    WeightFormat("fp32", 32.0, "fp32", 0.69, source="IEEE single precision"),
    WeightFormat("fp16", 16.0, "fp16", 0.69, source="IEEE half precision"),
    WeightFormat("bf16", 16.0, "fp16", 0.69, needs="bf16", source="bfloat16"),
    WeightFormat("fp8", 8.0, "fp8", 0.52, needs="fp8", source="FP8 E4M3 with per-tensor scales (Micikevicius 2022)"),
    # per-channel fp16 scale on a 4096-wide row adds 16/4096 bit: negligible.
    WeightFormat("int8", 8.0, "int8", 0.52, source="weight-only int8, per-channel scales"),
    WeightFormat("int8-bnb", 8.0, "bnb-int8", 0.29, source="LLM.int8() (bitsandbytes)"),
    WeightFormat("int8-w8a8", 8.0, "int8", 0.52, source="SmoothQuant W8A8"),
    # group-wise int4 with an fp16 scale + zero per group g: 4 + 32/g bits (docs/cost_model.md §2.1)
    WeightFormat("int4", 4.25, "int4", 0.42, source="GPTQ/AWQ int4, group 128"),
    WeightFormat("int4-g64", 4.5, "int4", 0.42, source="int4, group 64"),
    WeightFormat("int4-g32", 5.0, "int4", 0.42, source="int4, group 32 (gpt-fast)"),
    # NF4 with double quantization: 4 + 8/64 + 32/(64*256) = 4.127 bits (QLoRA paper, section 3)
    WeightFormat("nf4", 4.127, "bnb-4bit", 0.21, source="bitsandbytes NF4 + double quantization"),
    # bitsandbytes 4-bit without double quantization: 4 + 32/64 bits (one fp32 absmax per 64 weights)
    WeightFormat("bnb-4bit", 4.5, "bnb-4bit", 0.21, source="bitsandbytes FP4/NF4, no double quantization"),
    WeightFormat("int3", 3.25, "int3", 0.42, source="GPTQ 3-bit, group 128"),
    WeightFormat("int2", 2.25, "int2", 0.42, source="2-bit (QuIP-class), group 128 scales"),
    # GGUF: block formats quantize embeddings/output too. Q4_0/Q8_0 block sizes as in gpu_poor (4.5 / 8.5 bpw);
    # K-quants from Llama-3-70B file sizes in the XiongjieDai README (Q4_K_M 39.60 GiB, Q3_K_M 31.91 GiB,
    # Q2_K 24.56 GiB over 70.55B parameters).
    WeightFormat("q8_0", 8.5, "gguf-q8", 0.69, quantizes_embeddings=True, source="llama.cpp Q8_0"),
    WeightFormat("q4_0", 4.5, "gguf-q4", 0.69, quantizes_embeddings=True, source="llama.cpp Q4_0"),
    WeightFormat("q4_k_m", 4.82, "gguf-q4", 0.69, quantizes_embeddings=True, source="llama.cpp Q4_K_M"),
    WeightFormat("q3_k_m", 3.89, "gguf-q3", 0.69, quantizes_embeddings=True, source="llama.cpp Q3_K_M"),
    WeightFormat("q2_k", 2.99, "gguf-q2", 0.69, quantizes_embeddings=True, source="llama.cpp Q2_K"),
]}

ALIASES = {"f16": "fp16", "float16": "fp16", "half": "fp16", "bfloat16": "bf16", "f32": "fp32", "float32": "fp32",
           "4bit": "int4", "int4-g128": "int4", "gptq": "int4", "awq": "int4", "8bit": "int8", "q4": "q4_0",
           "q8": "q8_0", "llm-int8": "int8-bnb", "bnb-int8": "int8-bnb", "bnb-nf4": "nf4", "w8a8": "int8-w8a8",
           "smoothquant": "int8-w8a8", "3bit": "int3", "2bit": "int2", "quip": "int2"}


def weight_format(name: str) -> WeightFormat:
    """Look up a weight format by id or alias."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key in FORMATS:
        return FORMATS[key]
    hint = closest_ids(str(name), list(FORMATS))
    raise RecommenderInputError(
        f"unknown weight format '{name}'. Known: {', '.join(FORMATS)}"
        + (f". Did you mean: {', '.join(hint)}?" if hint else ""))


# KV-cache element sizes in bytes; int8/int4 include one fp16 scale per 32-element group.
KV_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0625, "q8_0": 1.0625, "int4": 0.5625,
            "q4_0": 0.5625}


def kv_bytes_per_element(name: str) -> float:
    key = str(name).strip().lower()
    if key in KV_BYTES:
        return KV_BYTES[key]
    raise RecommenderInputError(f"unknown KV-cache dtype '{name}'. Known: {', '.join(KV_BYTES)}")
