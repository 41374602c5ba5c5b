"""int8-dynamic-outlier (LLM.int8()-style static outlier decomposition) on the tiny random model."""

from __future__ import annotations

import pytest
import torch

from live_demo.api import calibration_ids
from live_demo.qlayers import OutlierInt8Linear
from live_demo.quantization import (
    _dynamic_int8_outlier,
    _quantize_dynamic_named,
    available_methods,
    outlier_channels,
    per_layer_error,
    quantize_copy,
    weight_bytes,
)

pytest_plugins = ["tests.live_demo_fixtures"]


@pytest.fixture(scope="module")
def calibration(tiny_lm):
    return calibration_ids(tiny_lm.tokenizer)[:4]


@pytest.fixture(scope="module")
def outlier_model(tiny_lm, calibration):
    """A low ratio, because a random model has no real outlier features; the tests need some fp32 columns."""
    model = _dynamic_int8_outlier(tiny_lm.model, calibration, ratio=1.5)
    assert sum(m.outlier_idx.numel() for m in model.modules() if hasattr(m, "outlier_idx")) > 0
    return model


def test_offered_on_cpu_only():
    assert available_methods("cpu")[0] == "int8-dynamic-outlier"
    assert "int8-dynamic-outlier" not in available_methods("cuda")


def test_needs_calibration(tiny_lm):
    with pytest.raises(ValueError, match="calibration_ids"):
        quantize_copy(tiny_lm.model, "int8-dynamic-outlier")


def test_outlier_channels_rule():
    absmax = torch.ones(100)
    absmax[[7, 42]] = torch.tensor([50.0, 4.0])
    assert outlier_channels(absmax, ratio=3.0).tolist() == [7, 42]
    assert outlier_channels(absmax, ratio=3.0, max_fraction=0.01).tolist() == [7]  # the cap keeps the largest
    assert outlier_channels(torch.ones(100), ratio=3.0).numel() == 0


def test_decomposition_rescues_an_outlier_channel():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32, bias=True)
    x = torch.randn(8, 64)
    x[:, 5] = 60.0  # one systematic outlier feature, as in LLM.int8
    ref = linear(x)
    decomposed = torch.nn.ModuleDict({"l": OutlierInt8Linear(linear, torch.tensor([5]))})
    outlier = _quantize_dynamic_named(decomposed, ["l.inlier"])["l"]
    dyn = _quantize_dynamic_named(torch.nn.ModuleDict({"l": _copy_linear(linear)}), ["l"])["l"]
    with torch.no_grad():
        err_outlier = (outlier(x) - ref).abs().max()
        err_plain = (dyn(x) - ref).abs().max()
    assert err_outlier < err_plain / 4
    w = outlier.dequantized_weight()
    assert torch.equal(w[:, 5], linear.weight[:, 5])  # the outlier column is kept exactly, in fp32
    assert torch.equal(outlier.inlier.weight().dequantize()[:, 5], torch.zeros(32))


def _copy_linear(linear):
    new = torch.nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
    new.load_state_dict(linear.state_dict())
    return new


def test_runs_close_to_fp32_and_leaves_the_cache_alone(tiny_lm, calibration):
    before = {k: v.clone() for k, v in tiny_lm.model.state_dict().items()}
    q = quantize_copy(tiny_lm.model, "int8-dynamic-outlier", calibration)
    after = tiny_lm.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m._forward_hooks for m in tiny_lm.model.modules())  # calibration hooks went on the copy
    assert type(tiny_lm.model.lm_head).__name__ == "Linear"
    ids = torch.tensor([tiny_lm.tokenizer.encode("The lighthouse on the northern cape")])
    with torch.no_grad():
        ref = tiny_lm.model(ids).logits
        out = q(ids).logits
    assert torch.isfinite(out).all()
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


def test_outlier_columns_exact_and_errors_per_layer(tiny_lm, outlier_model):
    errors = per_layer_error(tiny_lm.model, outlier_model)
    assert len(errors) == 14 and all(0 <= e["relative_error"] < 0.05 for e in errors)  # lm_head not listed
    blocks = [(n, m) for n, m in outlier_model.named_modules() if type(m).__name__ == "OutlierInt8Linear"]
    assert len(blocks) == 15  # 14 block Linears + lm_head
    for name, module in blocks:
        w = tiny_lm.model.get_submodule(name).weight
        assert torch.equal(module.dequantized_weight()[:, module.outlier_idx], w[:, module.outlier_idx])


def test_bytes_include_the_fp32_outlier_columns(tiny_lm, outlier_model):
    outlier = outlier_model
    plain = quantize_copy(tiny_lm.model, "int8-dynamic")
    extra = sum(t.numel() * t.element_size() for n, m in outlier.named_modules()
                if type(m).__name__ == "OutlierInt8Linear" and not n.startswith("lm_head")
                for t in (m.outlier_weight, m.keep_mask, m.outlier_idx))
    assert weight_bytes(outlier)["linear_weight_bytes"] == weight_bytes(plain)["linear_weight_bytes"] + extra
