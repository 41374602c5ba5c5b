"""The quantized Linear layers of the live demo, as real top-level nn.Module classes.

This module imports torch at its top, so the rest of the package imports it only inside functions (importing
`live_demo` or `live_demo.api` stays torch-free). `LAYER_CLASSES` maps a quantization method kind (see
`quantization.QuantMethod.kind`) to the class that replaces each Linear of the transformer blocks.

Numerics: every layer multiplies its input by a weight whose magnitudes are those of the original weight (the
per-channel or per-group scale is applied to the weight, not to the product). Multiplying the raw int8 codes
(up to 127) first and scaling afterwards makes the fp16 partial sums up to 127 / absmax(w) times larger: with an
input outlier of 1,000 to 2,806 they passed fp16's 65,504 and turned non-finite (measured on an H200, 2026-11-29).
"""

from __future__ import annotations

import threading

import torch

from live_demo.qmath import _bnb_dequantize, absmax_quantize, minmax_quantize_groups

_WORKSPACE = threading.local()


def _workspace(shape: tuple, dtype, device) -> torch.Tensor:
    """A per-thread scratch tensor of this shape and dtype, reused by every layer of the same shape.

    Our CPU layers dequantize into it instead of allocating a fresh weight-sized temporary in every call (issue
    14's slow int8-weight-only mode). What such a temporary costs depends on glibc's allocator state: taken from
    pages the heap already holds it is cheap; served by a fresh mmap, or after glibc gave the heap's top back to
    the system, each of its 4 KiB pages is faulted in and zeroed again in every call. Measured on the project's
    2-core Xeon, 2026-11-30 (docs/live_demo.md, bench/bench_qlayer_page_faults.py): with a fresh fp32 weight per
    call SmolLM2-135M decoded at a median 15.3 tok/s with 0 page faults per token in one regime and 4.1 tok/s
    with about 100,000 in the other, and one such layer flipped on its own in 3 of 24 default-state processes
    (1,696 faults and 3.3-7.2 ms per call against 0 and 0.7-1.6 ms); with this workspace no layer faults a page.
    The buffer is created outside inference mode so in-place refills are allowed in and out of it; a layer is done
    with it before the next layer of its thread refills it.
    """
    store = getattr(_WORKSPACE, "buffers", None)
    if store is None:
        store = _WORKSPACE.buffers = {}
    key = (tuple(shape), dtype, str(device))
    buf = store.get(key)
    if buf is None:
        with torch.inference_mode(False), torch.no_grad():
            buf = torch.empty(shape, dtype=dtype, device=device)
        store[key] = buf
    return buf


class WeightOnlyInt8Linear(torch.nn.Module):
    """int8 weights, one scale per output channel (survey Eq. 1); dequantized to the input's dtype per call.

    Shapes: weight_int8 (out, in) int8, scale (out, 1) in the original weight dtype. forward: x (..., in) ->
    (..., out). On the CPU the int8 codes are converted into a reused workspace (see _workspace); in fp32 the
    scale is then applied to the output, in fp16/bf16 (and on GPUs, and under torch.compile, which fuses the
    dequantization into the matmul) to the weight first, so the products keep the original weight's magnitudes.
    """

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        q, scale, _ = absmax_quantize(linear.weight, 8, "channel")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", q.to(linear.weight.device))
        self.register_buffer("scale", scale.to(linear.weight.dtype).to(linear.weight.device))
        self.bias = linear.bias

    def dequantized_weight(self) -> torch.Tensor:
        return self.weight_int8.to(self.scale.dtype) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and not torch.compiler.is_compiling():  # no weight-sized allocation per call
            w = _workspace(self.weight_int8.shape, x.dtype, x.device)
            w.copy_(self.weight_int8)
            if x.dtype == torch.float32:
                # fp32 cannot overflow here, so the scale is applied to the (small) output, not the weight
                out = torch.nn.functional.linear(x, w) * self.scale.view(-1)
                return out + self.bias if self.bias is not None else out
            w.mul_(self.scale.to(x.dtype))  # fp16/bf16: scale first, see the module doc
            return torch.nn.functional.linear(x, w, self.bias)
        w = self.weight_int8.to(x.dtype) * self.scale.to(x.dtype)  # fp16/bf16: scale first, see the module doc
        return torch.nn.functional.linear(x, w, self.bias)


class PackedInt4Linear(torch.nn.Module):
    """int4 weights, two per uint8 byte, one fp16 scale (and zero for asymmetric) per group of inputs.

    Shapes: packed (out, in/2) uint8, scale and zero (out, in/group) fp16. forward: x (..., in) -> (..., out).
    On the CPU the weight is unpacked and dequantized into reused per-thread workspaces (see _workspace).
    """

    def __init__(self, linear: torch.nn.Linear, group_size: int, symmetric: bool = True):
        super().__init__()
        self.in_features, self.out_features, self.group_size = linear.in_features, linear.out_features, group_size
        if symmetric:
            q, scale, _ = absmax_quantize(linear.weight, 4, "group", group_size)
            u, zero = (q + 8).to(torch.uint8), None  # shift [-8, 7] to [0, 15]
        else:
            u, scale, zero = minmax_quantize_groups(linear.weight, 4, group_size)
        device = linear.weight.device
        self.register_buffer("packed", (u[:, 0::2] | (u[:, 1::2] << 4)).to(device))
        self.register_buffer("scale", scale.to(torch.float16).to(device))
        self.register_buffer("zero", None if zero is None else zero.to(torch.float16).to(device))
        self.bias = linear.bias
        self.compute_dtype = linear.weight.dtype

    def dequantized_weight(self) -> torch.Tensor:
        low, high = self.packed & 0x0F, self.packed >> 4
        u = torch.stack((low, high), dim=-1).reshape(self.out_features, -1, self.group_size)
        scale = self.scale.to(self.compute_dtype).unsqueeze(-1)
        if self.zero is None:
            grouped = (u.to(self.compute_dtype) - 8) * scale
        else:
            grouped = u.to(self.compute_dtype) * scale + self.zero.to(self.compute_dtype).unsqueeze(-1)
        return grouped.reshape(self.out_features, self.in_features)

    def _dequantize_into_workspace(self) -> torch.Tensor:
        """dequantized_weight() computed in per-thread workspaces (see _workspace): same operations, same values."""
        device = self.packed.device
        u = _workspace((self.out_features, self.in_features // 2, 2), torch.uint8, device)
        torch.bitwise_and(self.packed, 0x0F, out=u[..., 0])
        torch.bitwise_right_shift(self.packed, 4, out=u[..., 1])
        w = _workspace((self.out_features, self.in_features), self.compute_dtype, device)
        w.copy_(u.view(self.out_features, self.in_features))
        grouped = w.view(self.out_features, -1, self.group_size)
        scale = self.scale.to(self.compute_dtype).unsqueeze(-1)
        if self.zero is None:
            grouped.sub_(8).mul_(scale)
        else:
            grouped.mul_(scale).add_(self.zero.to(self.compute_dtype).unsqueeze(-1))
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == self.compute_dtype and not torch.compiler.is_compiling():
            return torch.nn.functional.linear(x, self._dequantize_into_workspace(), self.bias)
        return torch.nn.functional.linear(x, self.dequantized_weight().to(x.dtype), self.bias)


class OutlierInt8Linear(torch.nn.Module):
    """LLM.int8()-style decomposition with a static outlier set (Dettmers et al. 2022, Sec. 3.2).

    y = int8_dynamic(x with outlier channels zeroed) + x[..., idx] @ W[:, idx].T. The outlier inputs and their
    weight columns stay fp32; zeroing them before the int8 part keeps them from setting the activation scale.
    The `inlier` child is an fp32 Linear here; quantization._dynamic_int8_outlier turns it into torch.ao's dynamic
    int8 Linear afterwards.
    """

    def __init__(self, linear: torch.nn.Linear, outlier_idx: torch.Tensor):
        super().__init__()
        w = linear.weight.detach().float()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        keep = torch.ones(self.in_features, dtype=torch.float32, device=w.device)
        keep[outlier_idx] = 0.0
        self.inlier = torch.nn.Linear(self.in_features, self.out_features, bias=linear.bias is not None,
                                      device=w.device)
        self.inlier.weight = torch.nn.Parameter(w * keep, requires_grad=False)  # outlier columns zeroed
        if linear.bias is not None:  # the bias is added once, inside the int8 part
            self.inlier.bias = torch.nn.Parameter(linear.bias.detach().float().clone(), requires_grad=False)
        self.register_buffer("keep_mask", keep)
        self.register_buffer("outlier_idx", outlier_idx.to(torch.long))
        self.register_buffer("outlier_weight", w[:, outlier_idx].contiguous())  # (out, n_outliers) fp32

    def dequantized_weight(self) -> torch.Tensor:
        inlier = self.inlier.weight
        w = (inlier().dequantize() if callable(inlier) else inlier.detach()).float().clone()
        w[:, self.outlier_idx] = self.outlier_weight
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inlier(x * self.keep_mask)
        if self.outlier_idx.numel():
            out = out + torch.nn.functional.linear(x.index_select(-1, self.outlier_idx), self.outlier_weight)
        return out


class CastInputLinear(torch.nn.Module):
    """Runs a library Linear (bitsandbytes int8) at the dtype its kernel computes in, casting in and out.

    bitsandbytes' int8 matmul computes in fp16 and warns once per call when handed bf16 input; casting here says
    the cast explicitly instead of silencing a warning process-wide.
    """

    def __init__(self, inner: torch.nn.Module, compute_dtype=torch.float16):
        super().__init__()
        self.inner = inner
        self.compute_dtype = compute_dtype
        self.in_features, self.out_features = inner.in_features, inner.out_features

    def dequantized_weight(self) -> torch.Tensor:
        return _bnb_dequantize(self.inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.to(self.compute_dtype)).to(x.dtype)


# method kind -> the layer class that replaces each block Linear (quantization.QuantMethod.kind)
LAYER_CLASSES: dict[str, type[torch.nn.Module]] = {
    "int8-weight-only": WeightOnlyInt8Linear,
    "int4-weight-only": PackedInt4Linear,
    "dynamic-outlier": OutlierInt8Linear,
}
