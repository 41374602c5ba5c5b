"""Weight quantization of a copy of the model: int8 per channel, packed int4 per group, dynamic int8, GPU libs.

The absmax formula is Eq. (1) of Wan et al., "Efficient Large Language Models: A Survey":
X_low = Round(absmax(X_low) / absmax(X_high) * X_high), i.e. scale = absmax(X) / q_max with q_max = 2**(b-1) - 1.
"""

from __future__ import annotations

import copy
import threading
import warnings
from dataclasses import dataclass

from live_demo.decoding import eos_ids, perplexity, plain_decode

BASE_METHODS = ("fp32", "fp16", "bf16")
CPU_METHODS = ("int8-dynamic-outlier", "int8-dynamic", "int8-dynamic-mixed", "int8-weight-only", "int4-g32",
               "int4-g64-asym")
# Layers whose inputs carry activation outliers (LLM.int8, Dettmers et al. 2022): on SmolLM2-135M, dynamic int8
# on down_proj alone raised perplexity from 18.7 to 46.7, so the "mixed" recipe keeps them in full precision.
OUTLIER_LAYERS = ("down_proj",)
# int8-dynamic-outlier (LLM.int8-style decomposition with a static outlier set): an input channel is an outlier when
# its calibrated absmax exceeds OUTLIER_RATIO x the layer's median channel absmax. A relative rule, because the
# fixed 6.0 of LLM.int8 marks 1120 of 1536 down_proj channels in SmolLM2's last layer (median absmax 7.8 there).
OUTLIER_RATIO = 3.0
OUTLIER_MAX_FRACTION = 0.2  # cap per layer, so a flat layer never turns into a dense fp32 matmul
GPU_METHODS = ("torchao-int8wo", "bnb-int8", "bnb-nf4")
GRANULARITIES = ("tensor", "channel", "group")


@dataclass(frozen=True)
class QuantMethod:
    """A named quantization recipe."""

    name: str
    bits: int
    group_size: int | None  # None = per output channel
    kind: str  # "weight-only", "dynamic", "dynamic-outlier", "library", "cast"
    symmetric: bool = True
    skip: tuple = ()  # name suffixes of Linear layers left unquantized

    @classmethod
    def from_name(cls, name: str) -> QuantMethod:
        presets = {
            "fp32": cls("fp32", 32, None, "cast"),
            "fp16": cls("fp16", 16, None, "cast"),
            "bf16": cls("bf16", 16, None, "cast"),
            "int8-dynamic": cls("int8-dynamic", 8, None, "dynamic"),
            "int8-dynamic-mixed": cls("int8-dynamic-mixed", 8, None, "dynamic", skip=OUTLIER_LAYERS),
            "int8-dynamic-outlier": cls("int8-dynamic-outlier", 8, None, "dynamic-outlier"),
            "int8-weight-only": cls("int8-weight-only", 8, None, "weight-only"),
            "int4-g32": cls("int4-g32", 4, 32, "weight-only"),
            "int4-g64-asym": cls("int4-g64-asym", 4, 64, "weight-only", symmetric=False),
            "int4-g128": cls("int4-g128", 4, 128, "weight-only"),
            "torchao-int8wo": cls("torchao-int8wo", 8, None, "library"),
            "bnb-int8": cls("bnb-int8", 8, None, "library"),
            "bnb-nf4": cls("bnb-nf4", 4, 64, "library"),
        }
        if name not in presets:
            raise ValueError(f"Unknown quantization method {name!r}; choose one of {sorted(presets)}")
        return presets[name]


def available_methods(device: str) -> list[str]:
    """Methods that can run on this device with the installed libraries."""
    import importlib.util

    methods = ["int8-weight-only", "int4-g32", "int4-g64-asym"]
    if device == "cpu":
        methods = ["int8-dynamic-outlier", "int8-dynamic", "int8-dynamic-mixed"] + methods
    else:
        methods = (["fp16"] if _bf16_default() else []) + methods  # the baseline itself is bf16 (or fp16)
        if importlib.util.find_spec("torchao") is not None:
            methods.append("torchao-int8wo")
        if importlib.util.find_spec("bitsandbytes") is not None:
            methods += ["bnb-int8", "bnb-nf4"]
    return methods


def _bf16_default() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


# ---------------------------------------------------------------- absmax quantization of one tensor

def absmax_quantize(weight, bits: int, granularity: str = "channel", group_size: int = 128):
    """Symmetric absmax quantization (survey Eq. 1). Returns (q int tensor, scale, dequantized weight).

    granularity: "tensor" (one scale), "channel" (one per output row) or "group" (one per `group_size` inputs).
    """
    import torch

    if bits < 2 or bits > 8:
        raise ValueError(f"bits must be between 2 and 8, got {bits}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    w = weight.detach().float()
    q_max = 2 ** (bits - 1) - 1  # e.g. 127 for int8, 7 for int4
    if granularity == "group":
        if w.shape[-1] % group_size:
            raise ValueError(f"in_features {w.shape[-1]} is not divisible by group_size {group_size}")
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
    if w.shape[-1] % group_size:
        raise ValueError(f"in_features {w.shape[-1]} is not divisible by group_size {group_size}")
    grouped = w.reshape(w.shape[0], -1, group_size)  # (out, in/group, group)
    lo, hi = grouped.amin(dim=-1, keepdim=True), grouped.amax(dim=-1, keepdim=True)
    scale = ((hi - lo) / (2**bits - 1)).clamp(min=1e-8)
    u = torch.clamp(torch.round((grouped - lo) / scale), 0, 2**bits - 1)
    return u.to(torch.uint8).reshape(w.shape), scale.squeeze(-1), lo.squeeze(-1)


def explain_absmax(weight, bits: int, granularity: str = "channel", group_size: int = 128, bins: int = 80):
    """Numbers for the interactive explainer: histogram of the weights and the error of the chosen setting."""
    import torch

    w = weight.detach().float().cpu()
    q, scale, deq = absmax_quantize(w, bits, granularity, group_size)
    err = deq - w
    hist = torch.histc(w, bins=bins, min=float(w.min()), max=float(w.max()))
    edges = torch.linspace(float(w.min()), float(w.max()), bins + 1)
    signal = float((w**2).mean())
    noise = float((err**2).mean())
    return {
        "shape": list(w.shape),
        "bits": bits,
        "granularity": granularity,
        "group_size": group_size if granularity == "group" else None,
        "absmax": float(w.abs().max()),
        "num_scales": int(scale.numel()),
        "hist_counts": hist.tolist(),
        "hist_edges": edges.tolist(),
        "mse": noise,
        "relative_error": (noise / signal) ** 0.5 if signal > 0 else 0.0,
        "sqnr_db": float(10 * torch.log10(torch.tensor(signal / max(noise, 1e-30)))),
        "levels_used": int(torch.unique(q).numel()),
        "levels_available": 2**bits,
        "bytes_fp16": w.numel() * 2,
        "bytes_quantized": w.numel() * bits // 8 + scale.numel() * 2,
    }


# ---------------------------------------------------------------- quantized Linear modules

def _make_int8_linear_cls():
    import torch

    class WeightOnlyInt8Linear(torch.nn.Module):
        """int8 weights + one fp scale per output channel; dequantized inside forward."""

        def __init__(self, linear):
            super().__init__()
            q, scale, _ = absmax_quantize(linear.weight, 8, "channel")
            self.in_features, self.out_features = linear.in_features, linear.out_features
            self.register_buffer("weight_int8", q)
            self.register_buffer("scale", scale.to(linear.weight.dtype))
            self.bias = linear.bias

        def dequantized_weight(self):
            return self.weight_int8.to(self.scale.dtype) * self.scale

        def forward(self, x):
            out = torch.nn.functional.linear(x, self.weight_int8.to(x.dtype)) * self.scale.view(-1).to(x.dtype)
            return out + self.bias if self.bias is not None else out

    return WeightOnlyInt8Linear


def _make_int4_linear_cls():
    import torch

    class PackedInt4Linear(torch.nn.Module):
        """int4 weights, two per uint8 byte, one fp16 scale per group of inputs; unpacked inside forward."""

        def __init__(self, linear, group_size: int, symmetric: bool = True):
            super().__init__()
            self.in_features, self.out_features, self.group_size = linear.in_features, linear.out_features, group_size
            if symmetric:
                q, scale, _ = absmax_quantize(linear.weight, 4, "group", group_size)
                u, zero = (q + 8).to(torch.uint8), None  # shift [-8, 7] to [0, 15]
            else:
                u, scale, zero = minmax_quantize_groups(linear.weight, 4, group_size)
            self.register_buffer("packed", u[:, 0::2] | (u[:, 1::2] << 4))  # (out, in/2) uint8
            self.register_buffer("scale", scale.to(torch.float16))  # (out, in/group)
            self.register_buffer("zero", None if zero is None else zero.to(torch.float16))  # (out, in/group)
            self.bias = linear.bias
            self.compute_dtype = linear.weight.dtype

        def dequantized_weight(self):
            low, high = self.packed & 0x0F, self.packed >> 4
            u = torch.stack((low, high), dim=-1).reshape(self.out_features, -1, self.group_size)
            scale = self.scale.to(self.compute_dtype).unsqueeze(-1)
            if self.zero is None:
                grouped = (u.to(self.compute_dtype) - 8) * scale
            else:
                grouped = u.to(self.compute_dtype) * scale + self.zero.to(self.compute_dtype).unsqueeze(-1)
            return grouped.reshape(self.out_features, self.in_features)

        def forward(self, x):
            return torch.nn.functional.linear(x, self.dequantized_weight().to(x.dtype), self.bias)

    return PackedInt4Linear


def _linear_names(model) -> list[str]:
    """Names of the Linear layers inside the transformer blocks (the tied lm_head stays unquantized)."""
    import torch

    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n != "lm_head"]


def _swap(model, name: str, new) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def quantize_copy(model, method: str, calibration_ids: list[list[int]] | None = None):
    """A quantized deep copy of `model`; the original (possibly cached and shared) is never touched.

    `calibration_ids` (token id lists) is needed by int8-dynamic-outlier only, to find the outlier channels.
    """
    import torch

    spec = QuantMethod.from_name(method)
    device = next(model.parameters()).device
    if spec.kind == "cast":
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[method]
        return copy.deepcopy(model).to(dtype).eval()
    if spec.kind in ("dynamic", "dynamic-outlier") and device.type != "cpu":
        raise ValueError(f"{method} (torch.ao quantize_dynamic) runs on CPU only; pick int8-weight-only")
    if spec.kind == "dynamic":
        return _dynamic_int8(model, spec.skip)
    if spec.kind == "dynamic-outlier":
        if not calibration_ids or not any(calibration_ids):
            raise ValueError(f"{method} needs calibration_ids (token id lists) to find its outlier channels; "
                             "live_demo.api.calibration_ids(tokenizer) gives the QA contexts")
        return _dynamic_int8_outlier(model, calibration_ids)
    if spec.kind == "library":
        return _library_quantize(model, method)
    check_group_size(model, spec)
    clone = copy.deepcopy(model).eval()
    cls = _make_int8_linear_cls() if spec.bits == 8 else _make_int4_linear_cls()
    with torch.no_grad():
        for name in _linear_names(clone):
            linear = clone.get_submodule(name)
            new = cls(linear) if spec.bits == 8 else cls(linear, spec.group_size, spec.symmetric)
            _swap(clone, name, new.to(device))
    return clone


def _dynamic_int8(model, skip: tuple):
    """torch.ao dynamic int8 (fbgemm): int8 weights per channel, activations quantized per call. CPU only.

    It is deprecated in favour of torchao, but it is the one path measured to decode faster on this CPU.
    """
    import torch

    clone = copy.deepcopy(model).float()
    if clone.lm_head.weight is clone.get_input_embeddings().weight:  # untie: quantize the head, not the table
        clone.lm_head.weight = torch.nn.Parameter(clone.lm_head.weight.detach().clone())
    names = [n for n, m in clone.named_modules() if isinstance(m, torch.nn.Linear) and not n.endswith(skip)]
    return _quantize_dynamic_named(clone, names)


def input_absmax(model, calibration_ids: list[list[int]]) -> dict:
    """name -> per-input-channel max |x| seen by each block Linear over the calibration texts."""
    import torch

    absmax: dict = {}

    def record(name):
        def hook(module, inputs, output):
            x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(dim=0)  # (in_features,)
            absmax[name] = torch.maximum(absmax[name], x) if name in absmax else x
        return hook

    device = next(model.parameters()).device
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    handles = [model.get_submodule(n).register_forward_hook(record(n)) for n in names]
    try:
        with torch.inference_mode():
            for ids in calibration_ids:
                if ids:
                    model(input_ids=torch.tensor([ids], device=device), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return absmax


def outlier_channels(absmax, ratio: float = OUTLIER_RATIO, max_fraction: float = OUTLIER_MAX_FRACTION):
    """Sorted indices of the channels whose absmax exceeds `ratio` x the median, at most `max_fraction` of them."""
    import torch

    limit = ratio * absmax.median()
    cap = int(max_fraction * absmax.numel())
    order = torch.argsort(absmax, descending=True)[:cap]
    return order[absmax[order] > limit].sort().values


def _make_outlier_linear_cls():
    import torch

    class OutlierInt8Linear(torch.nn.Module):
        """LLM.int8()-style decomposition with a static outlier set (Dettmers et al. 2022, Sec. 3.2).

        y = int8_dynamic(x with outlier channels zeroed) + x[..., idx] @ W[:, idx].T. The outlier inputs and their
        weight columns stay fp32; zeroing them before the int8 part keeps them from setting the activation scale.
        """

        def __init__(self, linear, outlier_idx):
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

        def dequantized_weight(self):
            inlier = self.inlier.weight
            w = (inlier().dequantize() if callable(inlier) else inlier.detach()).float().clone()
            w[:, self.outlier_idx] = self.outlier_weight
            return w

        def forward(self, x):
            out = self.inlier(x * self.keep_mask)
            if self.outlier_idx.numel():
                out = out + torch.nn.functional.linear(x.index_select(-1, self.outlier_idx), self.outlier_weight)
            return out

    return OutlierInt8Linear


def _dynamic_int8_outlier(model, calibration_ids: list[list[int]], ratio: float = OUTLIER_RATIO,
                          max_fraction: float = OUTLIER_MAX_FRACTION, head_outliers: bool = True):
    """int8-dynamic with LLM.int8()-style fp32 outlier columns in every block Linear, found by calibration. CPU only.

    lm_head is untied and quantized as in int8-dynamic, and by default decomposed as well: on SmolLM2-135M its
    input has channels up to 11x the median absmax, and plain dynamic int8 on the head alone cost +2.1 % perplexity.
    """
    import torch

    clone = copy.deepcopy(model).float().eval()
    absmax = input_absmax(clone, calibration_ids)  # hooks go on the copy, never on the shared model
    if clone.lm_head.weight is clone.get_input_embeddings().weight:  # untie: quantize the head, not the table
        clone.lm_head.weight = torch.nn.Parameter(clone.lm_head.weight.detach().clone())
    cls = _make_outlier_linear_cls()
    names = _linear_names(clone) + (["lm_head"] if head_outliers else [])
    with torch.no_grad():
        for name in names:
            idx = outlier_channels(absmax[name], ratio, max_fraction)
            _swap(clone, name, cls(clone.get_submodule(name), idx))
    targets = [f"{n}.inlier" for n in names] + ([] if head_outliers else ["lm_head"])
    return _quantize_dynamic_named(clone, targets)


def _quantize_dynamic_named(model, names: list[str]):
    """torch.ao quantize_dynamic (per-channel int8 weights) of the named Linears, full 8-bit activation range."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        qmodel = quantize_dynamic(model, {n: per_channel_dynamic_qconfig for n in names}, dtype=torch.qint8,
                                  inplace=True)  # `model` is already our private copy
    for module in qmodel.modules():
        if isinstance(module, DynamicLinear):
            # version < 4 makes forward use the full 8-bit activation range (reduce_range=False); on
            # SmolLM2-135M this cut the perplexity increase roughly in half versus the 7-bit default.
            module.version = 3
    return qmodel.eval()


def check_group_size(model, spec: QuantMethod) -> None:
    if spec.group_size is None or spec.kind != "weight-only":
        return
    bad = {model.get_submodule(n).in_features for n in _linear_names(model)
           if model.get_submodule(n).in_features % spec.group_size}
    if bad:
        raise ValueError(f"{spec.name}: in_features {sorted(bad)} are not divisible by {spec.group_size}; "
                         "pick a smaller group size (e.g. int4-g32)")


def _library_quantize(model, method: str):
    """GPU paths through torchao or bitsandbytes; a clear error where the library is missing."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise ValueError(f"{method} needs a CUDA GPU; on CPU use int8-dynamic or int8-weight-only")
    clone = copy.deepcopy(model).eval()
    if method == "torchao-int8wo":
        if importlib.util.find_spec("torchao") is None:
            raise ValueError("torchao is not installed; pip install torchao to use torchao-int8wo")
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        quantize_(clone, Int8WeightOnlyConfig(), filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear)
                  and fqn != "lm_head")
        return clone
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("bitsandbytes is not installed; pip install bitsandbytes to use bnb-int8 / bnb-nf4")
    import bitsandbytes as bnb

    # bitsandbytes warns on every int8 matmul of a bf16 model that it casts inputs to fp16 (17k lines in one H100
    # run); that cast is expected, so silence that one message.
    warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")
    for name in _linear_names(clone):
        lin = clone.get_submodule(name)
        if method == "bnb-int8":
            new = bnb.nn.Linear8bitLt(lin.in_features, lin.out_features, bias=lin.bias is not None,
                                      has_fp16_weights=False, threshold=6.0)
            new.weight = bnb.nn.Int8Params(lin.weight.data.cpu().half(), requires_grad=False,
                                           has_fp16_weights=False)
        else:
            new = bnb.nn.Linear4bit(lin.in_features, lin.out_features, bias=lin.bias is not None,
                                    compute_dtype=lin.weight.dtype, quant_type="nf4")
            new.weight = bnb.nn.Params4bit(lin.weight.data.cpu(), requires_grad=False, quant_type="nf4")
        if lin.bias is not None:
            new.bias = torch.nn.Parameter(lin.bias.data.cpu(), requires_grad=False)
        _swap(clone, name, new.to("cuda"))  # moving to CUDA performs the bnb quantization
    return clone


# ---------------------------------------------------------------- measuring a (quantized) model

def _tensor_bytes(t) -> int:
    return t.numel() * t.element_size()


def weight_bytes(model) -> dict:
    """Real storage of weights: total bytes and the bytes held by the transformer-block Linear layers.

    Tied tensors (embedding == lm_head) are counted once. Dynamic-quantized Linears are measured from their
    packed int8 weight and scales.
    """
    import torch

    seen: set[int] = set()
    alive: list = []  # keep unpacked temporaries alive so their addresses are not reused during the walk
    total = linear = 0

    def add(t, is_linear: bool) -> None:
        nonlocal total, linear
        if t is None or t.data_ptr() in seen or t.numel() == 0:
            return
        seen.add(t.data_ptr())
        alive.append(t)
        size = _tensor_bytes(t)
        if t.is_quantized:
            size = t.numel() * t.element_size()
            if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                size += _tensor_bytes(t.q_per_channel_scales()) + _tensor_bytes(t.q_per_channel_zero_points())
            else:
                size += 8
        total += size
        linear += size if is_linear else 0

    for name, module in model.named_modules():
        in_head = _in_head(name)
        is_linear = not in_head and ("proj" in name or type(module).__name__.endswith("Linear"))
        if _is_dynamic_linear(module):
            w, b = module._packed_params._weight_bias()
            add(w, not in_head)
            add(b, not in_head)
            continue
        if type(module).__name__ == "LinearPackedParams":
            continue
        for t in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False)):
            add(t, is_linear and module is not model)
    return {"weight_bytes": total, "linear_weight_bytes": linear}


def dequantized_linear_weights(model) -> dict:
    """name -> dequantized weight of every quantized Linear in the transformer blocks."""
    out = {}
    for name, module in model.named_modules():
        if _in_head(name) or any(name.startswith(f"{done}.") for done in out):  # e.g. an OutlierInt8Linear's part
            continue
        if hasattr(module, "dequantized_weight"):
            out[name] = module.dequantized_weight()
        elif _is_dynamic_linear(module) and name != "lm_head":
            out[name] = module.weight().dequantize()
        elif name != "lm_head" and type(module).__name__ in ("Linear8bitLt", "Linear4bit"):
            out[name] = _bnb_dequantize(module)
        elif name != "lm_head" and type(module).__name__ == "Linear" and _is_torchao_weight(module):
            out[name] = module.weight.dequantize()
    return out


def _in_head(name: str) -> bool:
    """lm_head or a module inside it (the head is reported apart from the transformer-block Linears)."""
    return name == "lm_head" or name.startswith("lm_head.")


def _is_dynamic_linear(module) -> bool:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return isinstance(module, DynamicLinear)


def _is_torchao_weight(module) -> bool:
    return hasattr(module, "weight") and hasattr(module.weight, "dequantize") and "torchao" in type(
        module.weight).__module__


def _bnb_dequantize(module):
    w = module.weight
    if type(module).__name__ == "Linear4bit":
        import bitsandbytes as bnb

        return bnb.functional.dequantize_4bit(w.data, w.quant_state)
    # bitsandbytes keeps the row scales on the weight until the first forward pass, then moves them to the
    # layer's state and sets weight.SCB to None (seen with 0.50.2 on an H100).
    scb = w.SCB if getattr(w, "SCB", None) is not None else getattr(module.state, "SCB", None)
    if scb is None:
        raise ValueError("bitsandbytes int8 layer has no row scales (SCB); cannot compute its error")
    return w.data.float() * (scb.float().unsqueeze(1) / 127.0)


def per_layer_error(original, quantized) -> list[dict]:
    """Relative Frobenius error ||W - Q(W)|| / ||W|| for each quantized Linear, in model order."""
    import torch

    deq = dequantized_linear_weights(quantized)
    rows = []
    for name, w_q in deq.items():
        w = original.get_submodule(name).weight.detach().float()
        diff = torch.linalg.norm(w_q.float().to(w.device) - w) / torch.linalg.norm(w).clamp(min=1e-12)
        rows.append({"layer": name, "relative_error": float(diff)})
    return rows


def measure_model(
    model,
    tokenizer,
    eval_ids: list[int],
    prompt_ids: list[int],
    max_new_tokens: int,
    stop_event: threading.Event | None = None,
    repeats: int = 1,
) -> dict:
    """Perplexity on the eval text, decode tokens/s (best of `repeats`) and the greedy answer of one model."""
    import torch

    torch.manual_seed(0)
    sizes = weight_bytes(model)
    ppl = perplexity(model, eval_ids)
    plain_decode(model, prompt_ids, 2, eos_ids(tokenizer, model))  # warm-up: first call pays one-off costs
    runs = [plain_decode(model, prompt_ids, max_new_tokens, eos_ids(tokenizer, model), stop_event)
            for _ in range(max(repeats, 1))]
    run = max(runs, key=lambda r: r.decode_tokens_per_s)
    return {
        **sizes,
        "perplexity": ppl,
        "decode_tokens_per_s": run.decode_tokens_per_s,
        "generate_tokens_per_s": run.tokens_per_s,
        "new_tokens": len(run.new_ids),
        "answer": tokenizer.decode(run.new_ids, skip_special_tokens=True),
    }
