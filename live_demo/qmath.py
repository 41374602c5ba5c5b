"""Quantizers of one tensor: symmetric absmax (per tensor, channel or group), asymmetric min/max groups, and the
dequantization of a bitsandbytes layer. The layers (qlayers.py) and the model-level methods (quantization.py) both
build on these, so neither imports the other. torch is imported inside the functions, as in the rest of the package.
"""

from __future__ import annotations

import sys

from live_demo.errors import check_int

GRANULARITIES = ("tensor", "channel", "group")


def absmax_quantize(weight, bits: int, granularity: str = "channel", group_size: int = 128):
    """Symmetric absmax quantization (survey Eq. 1). Returns (q int tensor, scale, dequantized weight).

    granularity: "tensor" (one scale), "channel" (one per output row) or "group" (one per `group_size` inputs).
    """
    import torch

    check_int("bits", bits, 2, 8)
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    w = weight.detach().float()
    q_max = 2 ** (bits - 1) - 1  # e.g. 127 for int8, 7 for int4
    if granularity == "group":
        check_group_size_value(w.shape[-1], group_size)
        grouped = w.reshape(w.shape[0], -1, group_size)  # (out, in/group, group)
        scale = grouped.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8) / q_max
        q = torch.clamp(torch.round(grouped / scale), -q_max - 1, q_max)
        return q.to(torch.int8).reshape(w.shape), scale.squeeze(-1), (q * scale).reshape(w.shape)
    if granularity == "channel":
        scale = w.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8) / q_max
    else:
        scale = w.abs().max().clamp(min=1e-8) / q_max
    q = torch.clamp(torch.round(w / scale), -q_max - 1, q_max)
    return q.to(torch.int8), scale, q * scale


def minmax_quantize_groups(weight, bits: int, group_size: int):
    """Asymmetric (min/max, zero-point) group quantization: w ~ u * scale + minimum, u in [0, 2**bits - 1].

    This is the scheme of gpt-fast's int4 and of ggml's Q4_1 blocks. Returns (u uint8, scale, minimum).
    """
    import torch

    w = weight.detach().float()
    check_group_size_value(w.shape[-1], group_size)
    grouped = w.reshape(w.shape[0], -1, group_size)  # (out, in/group, group)
    lo, hi = grouped.amin(dim=-1, keepdim=True), grouped.amax(dim=-1, keepdim=True)
    scale = ((hi - lo) / (2**bits - 1)).clamp(min=1e-8)
    u = torch.clamp(torch.round((grouped - lo) / scale), 0, 2**bits - 1)
    return u.to(torch.uint8).reshape(w.shape), scale.squeeze(-1), lo.squeeze(-1)


def allowed_group_sizes(in_features: int) -> list[int]:
    """Powers of two from 8 up that divide `in_features`: the group sizes int4 kernels use (gpt-fast: 32-256)."""
    return [g for g in (8, 16, 32, 64, 128, 256, 512) if g <= in_features and in_features % g == 0]


def check_group_size_value(in_features: int, group_size) -> int:
    """`group_size` when it is a whole number > 0 dividing `in_features`; else ValueError naming the allowed sizes."""
    allowed = allowed_group_sizes(in_features)
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1 \
            or in_features % group_size:
        raise ValueError(f"group size must be a positive whole number that in_features {in_features} is divisible "
                         f"by, got {group_size!r}; allowed sizes here: {', '.join(map(str, allowed)) or 'none'}")
    return group_size


def _bnb_dequantize(module):
    w = module.weight
    bnb = sys.modules.get("bitsandbytes")  # a real bitsandbytes layer implies the library is imported
    if bnb is not None and isinstance(module, bnb.nn.Linear4bit):
        return bnb.functional.dequantize_4bit(w.data, w.quant_state)
    # bitsandbytes keeps the row scales on the weight until the first forward pass, then moves them to the
    # layer's state and sets weight.SCB to None (seen with 0.50.2 on an H100).
    scb = w.SCB if getattr(w, "SCB", None) is not None else getattr(module.state, "SCB", None)
    if scb is None:
        raise ValueError("bitsandbytes int8 layer has no row scales (SCB); cannot compute its error")
    return w.data.float() * (scb.float().unsqueeze(1) / 127.0)
