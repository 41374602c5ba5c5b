"""Weight quantization of a copy of the model: int8 per channel, packed int4 per group, dynamic int8, GPU libs.

The absmax formula is Eq. (1) of Wan et al., "Efficient Large Language Models: A Survey":
X_low = Round(absmax(X_low) / absmax(X_high) * X_high), i.e. scale = absmax(X) / q_max with q_max = 2**(b-1) - 1.
"""

from __future__ import annotations

import copy
import sys
import threading
import warnings
from dataclasses import dataclass

from common.formats import check_weight_format_id
from live_demo.decoding import eos_ids, perplexity, plain_decode
from live_demo.qmath import (  # noqa: F401  (re-exported: the quantizers of one tensor live in qmath)
    GRANULARITIES,
    _bnb_dequantize,
    absmax_quantize,
    allowed_group_sizes,
    check_group_size_value,
    minmax_quantize_groups,
)

# Layers whose inputs carry activation outliers (LLM.int8, Dettmers et al. 2022): on SmolLM2-135M, dynamic int8
# on down_proj alone raised perplexity from 18.7 to 46.7, so the "mixed" recipe keeps them in full precision.
OUTLIER_LAYERS = ("down_proj",)
# int8-dynamic-outlier (LLM.int8-style decomposition with a static outlier set): an input channel is an outlier when
# its calibrated absmax exceeds OUTLIER_RATIO x the layer's median channel absmax. A relative rule, because the
# fixed 6.0 of LLM.int8 marks 1120 of 1536 down_proj channels in SmolLM2's last layer (median absmax 7.8 there).
OUTLIER_RATIO = 3.0
OUTLIER_MAX_FRACTION = 0.2  # cap per layer, so a flat layer never turns into a dense fp32 matmul
KINDS = ("cast", "dynamic", "dynamic-outlier", "int8-weight-only", "int4-weight-only", "torchao", "bnb")


@dataclass(frozen=True)
class QuantMethod:
    """A named quantization recipe and the weight format it stores (an id of common.formats.WEIGHT_FORMAT_IDS).

    kind: how the copy is made, one of KINDS; it keys the quantizer (see `quantize_copy`) and, for our own layers,
    the layer class (`qlayers.LAYER_CLASSES`).
    """

    name: str
    bits: int
    group_size: int | None  # None = per output channel
    kind: str
    weight_format: str
    symmetric: bool = True
    skip: tuple = ()  # name suffixes of Linear layers left unquantized
    gpu_only: bool = False
    cpu_only: bool = False
    package: str | None = None  # the optional library a method needs

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        check_weight_format_id(self.weight_format)

    @classmethod
    def from_name(cls, name: str) -> QuantMethod:
        if name not in METHODS:
            raise ValueError(f"Unknown quantization method {name!r}; choose one of {sorted(METHODS)}")
        return METHODS[name]


METHODS: dict[str, QuantMethod] = {m.name: m for m in (
    QuantMethod("fp32", 32, None, "cast", "fp32"),
    QuantMethod("fp16", 16, None, "cast", "fp16"),
    QuantMethod("bf16", 16, None, "cast", "bf16"),
    # dynamic int8: int8 weights and per-call int8 activations, i.e. W8A8
    QuantMethod("int8-dynamic", 8, None, "dynamic", "int8-w8a8", cpu_only=True),
    QuantMethod("int8-dynamic-mixed", 8, None, "dynamic", "int8-w8a8", skip=OUTLIER_LAYERS, cpu_only=True),
    QuantMethod("int8-dynamic-outlier", 8, None, "dynamic-outlier", "int8-w8a8", cpu_only=True),
    QuantMethod("int8-weight-only", 8, None, "int8-weight-only", "int8"),
    QuantMethod("int4-g32", 4, 32, "int4-weight-only", "int4-g32"),
    QuantMethod("int4-g64-asym", 4, 64, "int4-weight-only", "int4-g64", symmetric=False),
    QuantMethod("int4-g128", 4, 128, "int4-weight-only", "int4"),
    QuantMethod("torchao-int8wo", 8, None, "torchao", "int8", gpu_only=True, package="torchao"),
    QuantMethod("torchao-int4wo", 4, 128, "torchao", "int4", gpu_only=True, package="torchao"),
    QuantMethod("torchao-fp8wo", 8, None, "torchao", "fp8", gpu_only=True, package="torchao"),
    QuantMethod("bnb-int8", 8, None, "bnb", "int8-bnb", gpu_only=True, package="bitsandbytes"),
    QuantMethod("bnb-nf4", 4, 64, "bnb", "nf4", gpu_only=True, package="bitsandbytes"),
)}


def available_methods(device: str) -> list[str]:
    """Methods that can run on this device with the installed libraries, in the order the page lists them."""
    import importlib.util

    order = ["int8-dynamic-outlier", "int8-dynamic", "int8-dynamic-mixed"] if device == "cpu" else \
        (["fp16"] if _bf16_default() else [])  # on CUDA the baseline itself is bf16 (or fp16)
    order += ["int8-weight-only", "int4-g32", "int4-g64-asym"]
    if device != "cpu":
        order += [name for name, m in METHODS.items() if m.package and importlib.util.find_spec(m.package)
                  and (name != "torchao-fp8wo" or _fp8_supported())]
    return order


def _fp8_supported() -> bool:
    """fp8 matmuls need compute capability 8.9 or newer (Ada, Hopper)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)


def _bf16_default() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


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


# ---------------------------------------------------------------- quantized copies

def linear_names(model) -> list[str]:
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

    spec = QuantMethod.from_name(method)
    device = next(model.parameters()).device
    if spec.cpu_only and device.type != "cpu":
        raise ValueError(f"{method} (torch.ao quantize_dynamic) runs on CPU only; pick int8-weight-only")
    if spec.gpu_only and device.type != "cuda":
        raise ValueError(f"{method} needs a CUDA GPU; on CPU use int8-dynamic or int8-weight-only")
    return QUANTIZERS[spec.kind](model, spec, calibration_ids)


def _cast(model, spec: QuantMethod, calibration_ids=None):
    import torch

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[spec.weight_format]
    return copy.deepcopy(model).to(dtype).eval()


def _own_layers(model, spec: QuantMethod, calibration_ids=None):
    """Our readable int8 / packed int4 layers (qlayers.LAYER_CLASSES) in place of every block Linear."""
    import torch

    from live_demo.qlayers import LAYER_CLASSES

    check_group_size(model, spec)
    cls = LAYER_CLASSES[spec.kind]
    clone = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name in linear_names(clone):
            linear = clone.get_submodule(name)
            _swap(clone, name, cls(linear) if spec.bits == 8 else cls(linear, spec.group_size, spec.symmetric))
    return clone


def _dynamic(model, spec: QuantMethod, calibration_ids=None):
    return _dynamic_int8(model, spec.skip)


def _dynamic_outlier(model, spec: QuantMethod, calibration_ids=None):
    if not calibration_ids or not any(calibration_ids):
        raise ValueError(f"{spec.name} needs calibration_ids (token id lists) to find its outlier channels; "
                         "live_demo.api.calibration_ids(tokenizer) gives the QA contexts")
    return _dynamic_int8_outlier(model, calibration_ids)


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
    from live_demo.qlayers import LAYER_CLASSES

    cls = LAYER_CLASSES["dynamic-outlier"]
    names = linear_names(clone) + (["lm_head"] if head_outliers else [])
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
    if spec.group_size is None or spec.kind != "int4-weight-only":
        return
    bad = {model.get_submodule(n).in_features for n in linear_names(model)
           if model.get_submodule(n).in_features % spec.group_size}
    if bad:
        raise ValueError(f"{spec.name}: in_features {sorted(bad)} are not divisible by {spec.group_size}; "
                         "pick a smaller group size (e.g. int4-g32)")


def _require(spec: QuantMethod) -> None:
    import importlib.util

    if importlib.util.find_spec(spec.package) is None:
        raise ValueError(f"{spec.package} is not installed; pip install {spec.package} to use {spec.name}")


def _torchao(model, spec: QuantMethod, calibration_ids=None):
    """torchao weight-only int8 / int4 (group 128, tinygemm) / fp8 on CUDA; run through torch.compile to be fast."""
    import torch

    _require(spec)
    from torchao import quantization as tq

    configs = {"torchao-int8wo": lambda: tq.Int8WeightOnlyConfig(),
               "torchao-int4wo": lambda: tq.Int4WeightOnlyConfig(group_size=spec.group_size),
               "torchao-fp8wo": lambda: tq.Float8WeightOnlyConfig()}
    clone = copy.deepcopy(model).eval()
    if spec.name == "torchao-int4wo":
        clone = clone.to(torch.bfloat16)  # torchao's int4 kernel (tinygemm) takes bf16 activations only
    tq.quantize_(clone, configs[spec.name](),
                 filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and fqn != "lm_head")
    return clone


def _bnb(model, spec: QuantMethod, calibration_ids=None):
    """bitsandbytes LLM.int8() or NF4 layers; moving them to CUDA performs the quantization."""
    import torch

    from live_demo.qlayers import CastInputLinear

    _require(spec)
    import bitsandbytes as bnb

    clone = copy.deepcopy(model).eval()
    for name in linear_names(clone):
        lin = clone.get_submodule(name)
        if spec.name == "bnb-int8":
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
        new = new.to("cuda")
        # int8 computes in fp16: cast explicitly (bitsandbytes would warn on every call of a bf16 model)
        _swap(clone, name, CastInputLinear(new) if spec.name == "bnb-int8" else new)
    return clone


# method kind -> the function that makes the quantized copy: (model, spec, calibration_ids) -> model
QUANTIZERS = {
    "cast": _cast,
    "dynamic": _dynamic,
    "dynamic-outlier": _dynamic_outlier,
    "int8-weight-only": _own_layers,
    "int4-weight-only": _own_layers,
    "torchao": _torchao,
    "bnb": _bnb,
}


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
        if t is None or t.numel() == 0:
            return
        if _is_wrapper_subclass(t):  # e.g. a torchao quantized weight: count the tensors it holds
            for inner in _inner_tensors(t):
                add(inner, is_linear)
            return
        if t.data_ptr() in seen:
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

    from torch.ao.nn.quantized.modules.linear import LinearPackedParams

    linear_types = _linear_types()
    for name, module in model.named_modules():
        in_head = _in_head(name)
        is_linear = not in_head and isinstance(module, linear_types)
        if _is_dynamic_linear(module):
            w, b = module._packed_params._weight_bias()
            add(w, not in_head)
            add(b, not in_head)
            continue
        if isinstance(module, LinearPackedParams):  # read through its DynamicLinear above
            continue
        for t in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False)):
            add(t, is_linear and module is not model)
    return {"weight_bytes": total, "linear_weight_bytes": linear}


def _is_wrapper_subclass(t) -> bool:
    """A tensor subclass that stores its data in inner tensors (torchao's quantized weights do)."""
    import torch

    return type(t) not in (torch.Tensor, torch.nn.Parameter) and hasattr(t, "__tensor_flatten__")


def _inner_tensors(t) -> list:
    """The plain tensors inside a wrapper subclass, recursively (its __tensor_flatten__ attribute names)."""
    names, _ = t.__tensor_flatten__()
    return [getattr(t, n) for n in names]


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
        elif name != "lm_head" and _bnb_types() and isinstance(module, _bnb_types()):
            out[name] = _bnb_dequantize(module)
        elif name != "lm_head" and _is_torchao_weight(module):
            out[name] = module.weight.dequantize()
    return out


def _linear_types() -> tuple:
    """torch Linear (plain, torchao-quantized, bitsandbytes) and our quantized layer classes."""
    import torch

    from live_demo.qlayers import LAYER_CLASSES, CastInputLinear

    return (torch.nn.Linear, CastInputLinear, *LAYER_CLASSES.values())


def _bnb_types() -> tuple:
    """bitsandbytes' layer classes when bitsandbytes has been imported (by _bnb), else ()."""
    bnb = sys.modules.get("bitsandbytes")
    return (bnb.nn.Linear8bitLt, bnb.nn.Linear4bit) if bnb is not None else ()


def _in_head(name: str) -> bool:
    """lm_head or a module inside it (the head is reported apart from the transformer-block Linears)."""
    return name == "lm_head" or name.startswith("lm_head.")


def _is_dynamic_linear(module) -> bool:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return isinstance(module, DynamicLinear)


def _is_torchao_weight(module) -> bool:
    """A Linear whose weight is a torchao tensor subclass (torchao is then imported: quantize_ made it)."""
    import torch

    torchao = sys.modules.get("torchao")
    if torchao is None or not isinstance(module, torch.nn.Linear):
        return False
    from torchao.utils import TorchAOBaseTensor

    return isinstance(module.weight, TorchAOBaseTensor)


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
    on_token=None,
) -> dict:
    """Perplexity on the eval text, decode tokens/s and the greedy answer of one model.

    Decoding is timed `repeats` times after one warm-up; decode_tokens_per_s is the median run and
    decode_tokens_per_s_min / _max the range, so a method with a slow mode shows it (see decoding.spread).
    on_token(i, n) is called after each generated token (the page's progress bar).
    """
    from live_demo.decoding import median_run
    from live_demo.fastpath import compile_seconds

    sizes = weight_bytes(model)
    ppl = perplexity(model, eval_ids, stop_event)
    stops = eos_ids(tokenizer, model)
    plain_decode(model, prompt_ids, 2, stops)  # warm-up: first call pays one-off costs
    runs = [plain_decode(model, prompt_ids, max_new_tokens, stops, stop_event, on_token=on_token)
            for _ in range(max(repeats, 1))]
    run, rate = median_run(runs, "decode_tokens_per_s")
    return {
        **sizes,
        "perplexity": ppl,
        "decode_tokens_per_s": rate["median"],
        "decode_tokens_per_s_min": rate["min"],
        "decode_tokens_per_s_max": rate["max"],
        "timing_runs": rate["n"],
        "decode_path": run.extra.get("decode_path", "eager"),
        "compile_seconds": compile_seconds(model),  # 0 unless the compiled path compiled shapes of this model
        "generate_tokens_per_s": run.tokens_per_s,
        "new_tokens": len(run.new_ids),
        "answer": tokenizer.decode(run.new_ids, skip_special_tokens=True),
    }
