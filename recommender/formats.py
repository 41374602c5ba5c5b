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
    needs: str = ""                # hardware required: "bf16", "fp8", or "fp4" (FP4 kernels; gated by the fp8 flag)
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
    # ---- 2025-26 formats (rec-data). New kernel classes, kept few:
    #   "fp4"        4-bit floating point with block scales (MXFP4 / NVFP4): native tensor-core math on Blackwell,
    #                dequantizing (Marlin-style) kernels elsewhere;
    #   "int4-marlin" GPTQ/AWQ int4 run by the Marlin mixed-precision kernels (vLLM/SGLang awq_marlin, gptq_marlin);
    #   "int4-gemv"  AutoAWQ's batch-1 GEMV kernels (transformers + AutoAWQ, version="gemv");
    #   "exl2"       ExLlamaV2's mixed-bit EXL2 kernels;
    #   "gguf-q5" / "gguf-q6" / "gguf-iq" llama.cpp K-quant and i-quant (codebook) kernels.
    # prior_mbu has no published share for these kernels yet: each starts from its family's gpt-fast-derived share
    # (int4 0.42, GGUF 0.69 as above) and is corrected by calibration from measurements.csv.
    # MXFP4: 32 FP4 (E2M1) values share one 8-bit E8M0 scale -> 4 + 8/32 = 4.25 bpw (OCP Microscaling Formats
    # v1.0 spec, https://www.opencompute.org/documents/ocp-microscaling-formats-mx-v1-0-spec-final-pdf).
    WeightFormat("mxfp4", 4.25, "fp4", 0.42, needs="fp4",
                 source="OCP MX v1.0: FP4 E2M1 elements, block 32, E8M0 scale; gpt-oss MoE weights ship in it"),
    # NVFP4: 16 FP4 values share one FP8 (E4M3) scale, plus one FP32 scale per tensor -> 4 + 8/16 = 4.5 bpw
    # (https://developer.nvidia.com/blog/introducing-nvfp4-for-efficient-and-accurate-low-precision-inference/).
    WeightFormat("nvfp4", 4.5, "fp4", 0.42, needs="fp4",
                 source="NVIDIA NVFP4: FP4 E2M1, block 16, E4M3 scale + per-tensor FP32 scale"),
    # Marlin: "close to ideal (4x) speedups up to batchsizes of 16-32 tokens" over fp16 (IST-DASLab/marlin README):
    # a near-ideal 4x at a quarter of the bytes means the fp16 share of peak, 0.69. A batch-1 GEMV kernel built for
    # the same job (AutoAWQ's) gets the same prior; calibration corrects both from measurements.
    WeightFormat("awq-marlin", 4.25, "int4-marlin", 0.69,
                 source="AWQ int4 group 128 on Marlin kernels (vLLM awq_marlin; https://github.com/IST-DASLab/marlin)"),
    WeightFormat("gptq-marlin", 4.25, "int4-marlin", 0.69,
                 source="GPTQ int4 group 128 on Marlin kernels (vLLM gptq_marlin; https://github.com/IST-DASLab/marlin)"),
    WeightFormat("awq-gemv", 4.25, "int4-gemv", 0.69,
                 source="AutoAWQ int4 group 128, GEMV kernels (https://github.com/casper-hansen/AutoAWQ#benchmarks)"),
    # GGUF effective bpw = llama-quantize's reference file size for Llama-3-8B (GiB, all tensors incl. embeddings
    # and output) x 8 / 8.03e9 parameters, from the "Allowed quantization types" table of tools/quantize
    # (https://github.com/ggml-org/llama.cpp/blob/master/tools/quantize/quantize.cpp): Q5_K_M 5.33G, Q6_K 6.14G,
    # Q5_0 5.21G. i-quants: the type's own bpw printed in the same table (file-level mixes differ slightly).
    WeightFormat("q6_k", 6.57, "gguf-q6", 0.69, quantizes_embeddings=True, source="llama.cpp Q6_K (6.14 GiB @ Llama-3-8B)"),
    WeightFormat("q5_k_m", 5.70, "gguf-q5", 0.69, quantizes_embeddings=True,
                 source="llama.cpp Q5_K_M (5.33 GiB @ Llama-3-8B)"),
    WeightFormat("q5_0", 5.57, "gguf-q5", 0.69, quantizes_embeddings=True, source="llama.cpp Q5_0 (5.21 GiB @ Llama-3-8B)"),
    WeightFormat("iq4_xs", 4.25, "gguf-iq", 0.69, quantizes_embeddings=True, source="llama.cpp IQ4_XS: 4.25 bpw"),
    WeightFormat("iq3_m", 3.66, "gguf-iq", 0.69, quantizes_embeddings=True, source="llama.cpp IQ3_M: 3.66 bpw mix"),
    WeightFormat("iq3_xxs", 3.06, "gguf-iq", 0.69, quantizes_embeddings=True, source="llama.cpp IQ3_XXS: 3.06 bpw"),
    WeightFormat("iq2_m", 2.7, "gguf-iq", 0.69, quantizes_embeddings=True, source="llama.cpp IQ2_M: 2.7 bpw"),
    WeightFormat("iq2_xxs", 2.06, "gguf-iq", 0.69, quantizes_embeddings=True, source="llama.cpp IQ2_XXS: 2.06 bpw"),
    # EXL2 takes ANY target average bpw between 2 and 8 (scales included in the average; the output layer has its
    # own head_bits, default 6): https://github.com/turboderp-org/exllamav2#exl2-quantization. These rows are the
    # common published targets; the lead accepts `exl2-<bpw>` generically.
    WeightFormat("exl2-3.0", 3.0, "exl2", 0.42, source="ExLlamaV2 EXL2 at 3.0 bpw average"),
    WeightFormat("exl2-4.0", 4.0, "exl2", 0.42, source="ExLlamaV2 EXL2 at 4.0 bpw average"),
    WeightFormat("exl2-5.0", 5.0, "exl2", 0.42, source="ExLlamaV2 EXL2 at 5.0 bpw average"),
    WeightFormat("exl2-6.0", 6.0, "exl2", 0.42, source="ExLlamaV2 EXL2 at 6.0 bpw average"),
    WeightFormat("exl2-8.0", 8.0, "exl2", 0.42, source="ExLlamaV2 EXL2 at 8.0 bpw average"),
]}

ALIASES = {"f16": "fp16", "float16": "fp16", "half": "fp16", "bfloat16": "bf16", "f32": "fp32", "float32": "fp32",
           "4bit": "int4", "int4-g128": "int4", "gptq": "int4", "awq": "int4", "8bit": "int8", "q4": "q4_0",
           "q8": "q8_0", "llm-int8": "int8-bnb", "bnb-int8": "int8-bnb", "bnb-nf4": "nf4", "w8a8": "int8-w8a8",
           "smoothquant": "int8-w8a8", "3bit": "int3", "2bit": "int2", "quip": "int2",
           "fp4": "nvfp4", "mx-fp4": "mxfp4", "modelopt_fp4": "nvfp4", "awq_marlin": "awq-marlin",
           "gptq_marlin": "gptq-marlin", "marlin": "gptq-marlin", "q5_k": "q5_k_m", "q6": "q6_k"}


# ExLlamaV2's converter takes any target average between 2 and 8 bits per weight (its -b/--bits; the README's EXL2
# section: https://github.com/turboderp-org/exllamav2#exl2-quantization); the layer mix it searches is made of
# 2- to 8-bit quantizations, so no average outside that range exists.
EXL2_MIN_BPW, EXL2_MAX_BPW = 2.0, 8.0


def exl2_format(bits: float) -> WeightFormat:
    """The EXL2 format at an average of `bits` bits per weight (scales included), e.g. 4.65 -> `exl2-4.65`.

    A listed target (exl2-3.0, -4.0, ...) returns its row; any other is built on demand with the same kernel and
    prior. Raises RecommenderInputError outside EXL2_MIN_BPW..EXL2_MAX_BPW or for a non-number.
    """
    try:
        value = float(bits)
    except (TypeError, ValueError):
        raise RecommenderInputError(f"EXL2 bits per weight must be a number, got {bits!r} (e.g. exl2-4.65)") from None
    if not EXL2_MIN_BPW <= value <= EXL2_MAX_BPW:   # also rejects NaN
        raise RecommenderInputError(f"EXL2 bits per weight must be between {EXL2_MIN_BPW:g} and {EXL2_MAX_BPW:g} "
                                    f"(ExLlamaV2's range), got {bits}")
    for fmt in FORMATS.values():
        if fmt.kernel == "exl2" and fmt.bits_per_weight == value:
            return fmt
    return WeightFormat(f"exl2-{value:g}", value, "exl2", 0.42,
                        source=f"ExLlamaV2 EXL2 at {value:g} bpw average (https://github.com/turboderp-org/exllamav2)")


def weight_format(name: str) -> WeightFormat:
    """Look up a weight format by id or alias; `exl2-<bits>` for any bits per weight from 2 to 8 (exl2_format).

    Raises RecommenderInputError naming the closest known ids."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key in FORMATS:
        return FORMATS[key]
    if key.startswith("exl2-") or key.startswith("exl2_"):
        return exl2_format(key[5:])
    hint = closest_ids(str(name), list(FORMATS))
    raise RecommenderInputError(
        f"unknown weight format '{name}'. Known: {', '.join(f for f in FORMATS if not f.startswith('exl2-'))}, "
        f"exl2-<bits> ({EXL2_MIN_BPW:g}-{EXL2_MAX_BPW:g})"
        + (f". Did you mean: {', '.join(hint)}?" if hint else ""))


# KV-cache element sizes in bytes; int8/int4 include one fp16 scale per 32-element group.
KV_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0625, "q8_0": 1.0625, "int4": 0.5625,
            "q4_0": 0.5625}


def kv_bytes_per_element(name: str) -> float:
    key = str(name).strip().lower()
    if key in KV_BYTES:
        return KV_BYTES[key]
    raise RecommenderInputError(f"unknown KV-cache dtype '{name}'. Known: {', '.join(KV_BYTES)}")
