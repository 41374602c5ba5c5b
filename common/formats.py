"""The one vocabulary of weight storage formats shared by the recommender and the live demo.

The recommender's `formats.FORMATS` holds each format's bits, kernel class and source, keyed by exactly these ids
(a test checks the two agree); each live-demo quantization method names the id of the format it produces, so a
live measurement can be matched to the recommender's estimate for the same format without string guessing.
"""

from __future__ import annotations

WEIGHT_FORMAT_IDS: tuple[str, ...] = (
    "fp32", "fp16", "bf16", "fp8",
    "int8", "int8-bnb", "int8-w8a8",
    "int4", "int4-g64", "int4-g32", "nf4", "bnb-4bit", "int3", "int2",
    "q8_0", "q4_0", "q4_k_m", "q3_k_m", "q2_k",
    "mxfp4", "nvfp4", "awq-marlin", "gptq-marlin", "awq-gemv",
    "q6_k", "q5_k_m", "q5_0", "iq4_xs", "iq3_m", "iq3_xxs", "iq2_m", "iq2_xxs",
    "exl2-3.0", "exl2-4.0", "exl2-5.0", "exl2-6.0", "exl2-8.0",
)


def check_weight_format_id(format_id: str) -> str:
    """Return `format_id` when it is in the shared vocabulary, else raise ValueError naming the known ids."""
    if format_id not in WEIGHT_FORMAT_IDS:
        raise ValueError(f"unknown weight format id {format_id!r}; known: {', '.join(WEIGHT_FORMAT_IDS)}")
    return format_id
