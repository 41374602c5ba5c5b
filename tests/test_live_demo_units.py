"""Unit tests of the live_demo package on tiny random models (milliseconds each, no downloads)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from live_demo.compression import CompressionSettings, compress, context_budget, load_qa_set
from live_demo.decoding import chat_prompt_ids, check_prompt, eos_ids, plain_decode
from live_demo.errors import EmptyPromptError, ModelLoadError, PromptTooLongError, TokenizerMismatchError
from live_demo.quantization import (
    QuantMethod,
    absmax_quantize,
    explain_absmax,
    per_layer_error,
    quantize_copy,
    weight_bytes,
)
from live_demo.speculative import SpecConfig, build_drafter, speculative_decode

pytest_plugins = ["tests.live_demo_fixtures"]  # shared tiny-model fixtures
PROMPTS = ["The lighthouse on the northern cape", "Bread is one of the oldest prepared foods. Bread is one"]


# ---------------------------------------------------------------- quantization

@given(bits=st.integers(2, 8), rows=st.integers(1, 6), groups=st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_absmax_levels_and_error_bound(bits, rows, groups):
    w = torch.randn(rows, 32 * groups)
    for gran in ("tensor", "channel", "group"):
        q, scale, deq = absmax_quantize(w, bits, gran, 32)
        q_max = 2 ** (bits - 1) - 1
        assert int(q.int().abs().max()) <= q_max
        # Rounding error is at most half a step of the scale that applies to each weight.
        step = scale.max()
        assert (deq - w).abs().max() <= step / 2 + 1e-5


def test_more_bits_never_more_error():
    w = torch.randn(64, 128)
    errors = [explain_absmax(w, b, "channel")["relative_error"] for b in range(2, 9)]
    assert errors == sorted(errors, reverse=True)


def test_bad_quant_inputs():
    with pytest.raises(ValueError, match="bits"):
        absmax_quantize(torch.randn(4, 32), 1)
    with pytest.raises(ValueError, match="granularity"):
        absmax_quantize(torch.randn(4, 32), 4, "row")
    with pytest.raises(ValueError, match="divisible"):
        absmax_quantize(torch.randn(4, 48), 4, "group", 32)
    with pytest.raises(ValueError, match="Unknown quantization method"):
        QuantMethod.from_name("int3")


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-dynamic-mixed", "int8-weight-only", "int4-g32",
                                    "int4-g64-asym", "fp16"])
def test_quantize_copy_never_mutates_the_original(tiny_lm, method):
    before = {k: v.clone() for k, v in tiny_lm.model.state_dict().items()}
    q = quantize_copy(tiny_lm.model, method)
    assert q is not tiny_lm.model
    after = tiny_lm.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(type(m).__name__ != "PackedInt4Linear" for m in tiny_lm.model.modules())


def test_fewer_bits_never_more_bytes(tiny_lm):
    sizes = {m: weight_bytes(quantize_copy(tiny_lm.model, m))["linear_weight_bytes"]
             for m in ("fp16", "int8-weight-only", "int4-g32")}
    fp32 = weight_bytes(tiny_lm.model)["linear_weight_bytes"]
    assert fp32 > sizes["fp16"] > sizes["int8-weight-only"] > sizes["int4-g32"]
    # Packed int4 g32: half a byte per weight plus one fp16 scale per 32 weights = 28.1% of fp16.
    assert sizes["int4-g32"] / sizes["fp16"] == pytest.approx(0.28125, rel=1e-3)


def test_int4_packing_round_trips(tiny_lm):
    q = quantize_copy(tiny_lm.model, "int4-g32")
    layer = q.model.layers[0].mlp.down_proj
    w = tiny_lm.model.model.layers[0].mlp.down_proj.weight
    _, _, expected = absmax_quantize(w, 4, "group", 32)
    assert layer.packed.dtype == torch.uint8 and layer.packed.shape[1] == w.shape[1] // 2
    assert torch.allclose(layer.dequantized_weight(), expected, atol=2e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_quantized_layers_compute_what_their_dequantized_weight_gives(dtype):
    # the CPU layers dequantize into a reused workspace; the values must be those of a fresh dequantized weight
    from live_demo.qlayers import PackedInt4Linear, WeightOnlyInt8Linear

    gen = torch.Generator().manual_seed(3)
    linear = torch.nn.Linear(128, 96).to(dtype)
    x = torch.randn(2, 3, 128, generator=gen).to(dtype)
    for layer in (WeightOnlyInt8Linear(linear), PackedInt4Linear(linear, 32),
                  PackedInt4Linear(linear, 64, symmetric=False)):
        with torch.inference_mode():
            if isinstance(layer, WeightOnlyInt8Linear) and dtype == torch.float32:  # scale on the output in fp32
                expected = torch.nn.functional.linear(x, layer.weight_int8.to(dtype)) * layer.scale.view(-1)
                expected = expected + layer.bias
            else:
                expected = torch.nn.functional.linear(x, layer.dequantized_weight().to(dtype), layer.bias)
            assert torch.equal(layer(x), expected) and torch.equal(layer(x), expected), type(layer).__name__


_FAULTS_CHILD = """
import json, resource, torch
from live_demo.qlayers import PackedInt4Linear, WeightOnlyInt8Linear
torch.set_num_threads(1)
linear = torch.nn.Linear(576, 1536, bias=False)
x = torch.randn(1, 1, 576)
int8, int4, asym = WeightOnlyInt8Linear(linear), PackedInt4Linear(linear, 32), PackedInt4Linear(linear, 64, False)
calls = {"int8": lambda: int8(x), "int4": lambda: int4(x), "int4-asym": lambda: asym(x),
         "fresh weight": lambda: torch.nn.functional.linear(x, int8.dequantized_weight())}
out = {}
with torch.inference_mode():
    for name, call in calls.items():
        call(); call()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            call()
        out[name] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
print(json.dumps(out))
"""


def test_cpu_quantized_layers_fault_in_no_weight_pages_per_call():
    # Issue 14's slow int8-weight-only mode: a fresh weight-sized temporary per call is faulted in page by page
    # whenever glibc serves it by mmap. A fixed MALLOC_MMAP_THRESHOLD_ forces that regime in a child process, where
    # a fresh fp32 1536 x 576 weight costs at least its 864 pages per call and our layers must cost next to none.
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("resource")  # Unix only: the child counts minor page faults with getrusage
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "PYTHONPATH": root}
    proc = subprocess.run([sys.executable, "-c", _FAULTS_CHILD], env=env, cwd=root, capture_output=True, text=True,
                          timeout=120, check=True)
    faults = json.loads(proc.stdout.strip().splitlines()[-1])
    if faults["fresh weight"] < 1536 * 576 * 4 // 4096:
        pytest.skip(f"this C library does not serve large blocks by mmap here ({faults})")
    assert all(faults[name] < 50 for name in ("int8", "int4", "int4-asym")), faults


def test_per_layer_error_and_outputs(tiny_lm):
    ids = torch.tensor([tiny_lm.tokenizer.encode(PROMPTS[0])])
    ref = tiny_lm.model(ids).logits
    for method in ("int8-weight-only", "int8-dynamic", "int4-g32"):
        q = quantize_copy(tiny_lm.model, method)
        errors = per_layer_error(tiny_lm.model, q)
        assert len(errors) == 14 and all(0 <= e["relative_error"] < 0.5 for e in errors)
        assert torch.isfinite(q(ids).logits).all()
    int8 = quantize_copy(tiny_lm.model, "int8-weight-only")
    assert (int8(ids).logits - ref).abs().max() < (quantize_copy(tiny_lm.model, "int4-g32")(ids).logits
                                                   - ref).abs().max()


# ---------------------------------------------------------------- prompt compression

def test_context_budget():
    assert context_budget(200, 20, 2.0) == 90
    assert context_budget(10, 100, 4.0) == 1  # never below one token
    assert context_budget(50, 0, 1.0) == 50


@pytest.mark.parametrize("method", ["ours", "lingua", "selective-word", "selective-phrase", "random"])
def test_compression_hits_the_ratio_and_keeps_order(tiny_lm, method):
    qa = load_qa_set()
    item = qa["items"][0]
    res = compress(tiny_lm.model, tiny_lm.tokenizer, item["context"], item["question"], qa["instruction"],
                   CompressionSettings.from_name(method, 2.0))
    assert len(res.keep) == len(res.context_ids) == len(res.pieces)
    assert res.ratio == pytest.approx(2.0, rel=0.1)
    assert res.kept_ids == [t for t, k in zip(res.context_ids, res.keep) if k]
    assert res.other_tokens > 0


def test_question_aware_keeps_whole_sentences_and_protects_numbers(tiny_lm):
    from live_demo.compression import _protected, _sentence_spans

    qa = load_qa_set()
    for item in qa["items"][:3]:
        res = compress(tiny_lm.model, tiny_lm.tokenizer, item["context"], item["question"], qa["instruction"],
                       CompressionSettings.from_name("ours", 2.0))
        spans = _sentence_spans(res.pieces)
        assert any(all(res.keep[s:e]) for s, e in spans)  # at least the top-ranked sentence survives intact
        assert sum(res.keep) == len(res.kept_ids)
    assert _protected(" 4,310") and _protected(" Edwin") and not _protected(" the")


def test_qa_split_is_a_fixed_even_partition():
    from live_demo.qa_eval import qa_split

    ids = [i["id"] for i in load_qa_set()["items"]]
    dev = [i for i in ids if qa_split(i) == "dev"]
    assert qa_split("q01") == "dev" and qa_split("q02") == "held-out"
    assert len(dev) == len(ids) // 2


def test_compression_ratio_one_keeps_everything(tiny_lm):
    res = compress(tiny_lm.model, tiny_lm.tokenizer, "one two three four five six.", "what?", "",
                   CompressionSettings(1.0, "lingua"))
    assert all(res.keep)


def test_compression_bad_input(tiny_lm):
    with pytest.raises(EmptyPromptError):
        compress(tiny_lm.model, tiny_lm.tokenizer, "   ", "q")
    with pytest.raises(PromptTooLongError):
        compress(tiny_lm.model, tiny_lm.tokenizer, "word " * 500, "q", max_context_tokens=100)
    for bad in (0.5, float("nan"), 100):
        with pytest.raises(ValueError, match="ratio"):
            CompressionSettings(bad)
    with pytest.raises(ValueError, match="preset"):
        CompressionSettings.from_name("zip")


def test_qa_set_schema():
    qa = load_qa_set()
    assert len(qa["items"]) >= 20
    assert len({i["id"] for i in qa["items"]}) == len(qa["items"])
    for item in qa["items"]:
        assert item["answer"].lower() in item["context"].lower() or item["id"] in ("q11", "q16", "q18", "q24")


def test_llmlingua_peer_runs_offline(tiny_lm, monkeypatch):
    pytest.importorskip("llmlingua")
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("llmlingua tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    from live_demo.llmlingua_peer import LLMLinguaPeer

    peer = LLMLinguaPeer(tiny_lm.model, tiny_lm.tokenizer)
    item = load_qa_set()["items"][1]
    kept, seconds, other = peer.compress_ids(item["context"], "Answer briefly.", item["question"], 2.0)
    full = len(tiny_lm.tokenizer.encode(item["context"]))
    assert 0 < len(kept) < full and seconds >= 0 and other > 0


# ---------------------------------------------------------------- speculative decoding

@pytest.mark.parametrize("drafter", ["prompt-lookup", "int8-self", "early-exit", "draft-model"])
@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_speculative_equals_plain_greedy(tiny_lm, tiny_draft, drafter, k, prompt):
    ids = tiny_lm.tokenizer.encode(prompt)
    plain = plain_decode(tiny_lm.model, ids, 24)
    d = build_drafter(drafter, tiny_lm.model, tiny_draft.model, early_exit_layers=1)
    spec = speculative_decode(tiny_lm.model, d, ids, SpecConfig(draft_len=k, max_new_tokens=24))
    assert spec.new_ids == plain.new_ids
    assert len(spec.from_draft) == len(spec.new_ids)
    assert sum(spec.from_draft) == spec.accepted
    assert 0 <= spec.acceptance_rate <= 1
    assert spec.target_calls <= len(spec.new_ids)  # never more target passes than plain decoding


def test_sampling_mode_is_reproducible(tiny_lm, tiny_draft):
    ids = tiny_lm.tokenizer.encode(PROMPTS[0])
    cfg = SpecConfig(draft_len=3, max_new_tokens=20, temperature=0.9, seed=7)
    runs = [speculative_decode(tiny_lm.model, build_drafter("draft-model", tiny_lm.model, tiny_draft.model), ids,
                               cfg).new_ids for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) == 20
    lookup = speculative_decode(tiny_lm.model, build_drafter("prompt-lookup", tiny_lm.model), ids, cfg)
    assert len(lookup.new_ids) == 20


def test_sampling_matches_target_distribution():
    """The rejection rule reproduces p exactly: check the one-step output distribution by simulation."""
    from live_demo.speculative import _accept

    gen = torch.Generator().manual_seed(0)
    p_logits = torch.log(torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]))
    q = [torch.tensor([0.2, 0.2, 0.6])]
    counts = torch.zeros(3)
    trials = 20000
    for _ in range(trials):
        token = int(torch.multinomial(q[0], 1, generator=gen))
        n_ok, nxt = _accept(p_logits, [token], q, 1.0, gen)
        counts[token if n_ok == 1 else nxt] += 1
    assert torch.allclose(counts / trials, torch.tensor([0.6, 0.3, 0.1]), atol=0.015)


def test_prompt_lookup_proposes_copy():
    from live_demo.speculative import PromptLookupDrafter

    d = PromptLookupDrafter()
    seq = [5, 6, 7, 8, 9, 1, 5, 6]
    assert d.propose(seq, 3, 0.0, None)[0] == [7, 8, 9]
    assert d.propose([1, 2, 3], 3, 0.0, None)[0] == []
    assert d.propose([4, 7, 1, 7], 2, 0.0, None)[0] == []  # a single-token match is not enough by default
    assert PromptLookupDrafter(min_match=1).propose([4, 7, 1, 7], 2, 0.0, None)[0] == [1, 7]
    with pytest.raises(ValueError, match="min_match"):
        PromptLookupDrafter(min_match=0)


def test_prompt_lookup_copies_from_the_longest_agreement_not_the_latest_ngram():
    """[2, 3] occurs twice; the earlier occurrence is also preceded by 1, as the current tail is."""
    from live_demo.speculative import PromptLookupDrafter

    seq = [1, 2, 3, 9, 5, 2, 3, 8, 1, 2, 3]
    assert PromptLookupDrafter().propose(seq, 2, 0.0, None)[0] == [9, 5]
    tie = [0, 2, 3, 9, 5, 2, 3, 8, 1, 2, 3]  # equal agreement: the most recent copy wins
    assert PromptLookupDrafter().propose(tie, 2, 0.0, None)[0] == [8, 1]


def test_a_draft_found_in_the_prompt_is_verified_by_the_prefill_pass(tiny_lm):
    """The first target pass feeds the prompt plus a proposal, so prompt lookup saves a pass from the start."""
    from live_demo.speculative import PromptLookupDrafter

    widths = []
    model = tiny_lm.model
    original = model.forward

    def spy(*args, **kwargs):
        widths.append(kwargs["input_ids"].shape[1])
        return original(*args, **kwargs)

    prompt = [11, 12, 13, 14, 15, 11, 12]
    model.forward = spy
    try:
        res = speculative_decode(model, PromptLookupDrafter(), prompt, SpecConfig(draft_len=3, max_new_tokens=8))
    finally:
        del model.forward
    assert widths[0] == len(prompt) + 3  # [13, 14, 15] proposed from the prompt itself
    plain = plain_decode(model, prompt, 8)
    assert res.new_ids == plain.new_ids
    assert res.target_calls == len(widths)


def test_spec_config_validation():
    for kwargs in ({"draft_len": 0}, {"max_new_tokens": 0}, {"temperature": -1}):
        with pytest.raises(ValueError):
            SpecConfig(**kwargs)
    with pytest.raises(ValueError, match="draft model"):
        build_drafter("draft-model", None)
    with pytest.raises(ValueError, match="unknown drafter"):
        build_drafter("medusa", None)


def test_early_exit_shares_weights_without_mutation(tiny_lm):
    from live_demo.speculative import early_exit_model

    n_layers = len(tiny_lm.model.model.layers)
    shallow = early_exit_model(tiny_lm.model, 1)
    assert len(shallow.model.layers) == 1 and len(tiny_lm.model.model.layers) == n_layers
    assert shallow.lm_head.weight is tiny_lm.model.lm_head.weight
    with pytest.raises(ValueError):
        early_exit_model(tiny_lm.model, n_layers)


# ---------------------------------------------------------------- prompts, models, limits

def test_prompt_limits(tiny_lm):
    with pytest.raises(EmptyPromptError):
        check_prompt("  \n", tiny_lm.tokenizer)
    with pytest.raises(PromptTooLongError, match="cap"):
        check_prompt("hello " * 50, tiny_lm.tokenizer, cap=10)
    with pytest.raises(ValueError, match="max_new_tokens"):
        from live_demo.decoding import check_new_tokens

        check_new_tokens(10_000)
    assert chat_prompt_ids(tiny_lm.tokenizer, "hi")


def test_tokenizer_mismatch_is_reported(tiny_lm):
    from live_demo.models import check_same_tokenizer

    other = copy.deepcopy(tiny_lm.tokenizer)
    other.add_tokens(["<extra-token>"])
    with pytest.raises(TokenizerMismatchError, match="different tokenizer"):
        check_same_tokenizer(tiny_lm.tokenizer, other)


def test_unknown_model_id_is_a_clear_error(tmp_path):
    from live_demo.models import load_model

    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "no-such-model"), device="cpu")
    with pytest.raises(ModelLoadError, match="Could not load"):
        load_model("no-such-org/no-such-model-xyz", device="cpu")  # HF_HUB_OFFLINE=1 in tests
    with pytest.raises(ValueError, match="device"):
        load_model("tiny", device="tpu")


def test_incomplete_cache_is_never_trusted(tmp_path, monkeypatch):
    from live_demo import models

    monkeypatch.setenv("ELLM_CACHE_DIR", str(tmp_path))
    half = models.default_cache_path()
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")  # a conversion killed before the marker was written
    assert not models.is_default_cached()


def test_oom_becomes_clear_error():
    from live_demo.decoding import oom_guard
    from live_demo.errors import OutOfMemoryError

    with pytest.raises(OutOfMemoryError, match="memory"):
        with oom_guard():
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_decoding_stops_at_eos(tiny_lm):
    ids = tiny_lm.tokenizer.encode(PROMPTS[0])
    first = plain_decode(tiny_lm.model, ids, 1).new_ids[0]
    run = plain_decode(tiny_lm.model, ids, 30, stop_ids={first})
    assert run.new_ids == [first]
    assert eos_ids(tiny_lm.tokenizer, tiny_lm.model)


def test_perplexity_is_finite(tiny_lm):
    from live_demo.api import eval_ids
    from live_demo.decoding import perplexity

    ppl = perplexity(tiny_lm.model, eval_ids(tiny_lm.tokenizer, 64))
    assert math.isfinite(ppl) and ppl > 1


def test_benchmark_records_a_method_that_cannot_run_here_and_goes_on(tiny_lm):
    """A GPU-only method on the CPU fails for the page (the user asked for it) but not for the benchmark."""
    from live_demo.api import run_quantization

    with pytest.raises(ValueError, match="CUDA"):
        run_quantization(tiny_lm, ["bnb-nf4"], eval_tokens=32, max_new_tokens=2)
    res = run_quantization(tiny_lm, ["bnb-nf4", "int8-weight-only"], eval_tokens=32, max_new_tokens=2,
                           keep_going=True)
    assert "CUDA" in res.methods["bnb-nf4"]["error"]
    assert res.methods["int8-weight-only"]["perplexity"] > 0


def test_bnb_int8_error_uses_the_row_scales_wherever_bitsandbytes_keeps_them():
    """bitsandbytes moves SCB from the weight to the layer state after the first forward (found on an H100)."""
    from types import SimpleNamespace

    from live_demo.quantization import _bnb_dequantize

    q = torch.tensor([[127, -64], [10, 0]], dtype=torch.int8)
    scb = torch.tensor([2.0, 0.5])
    expected = torch.tensor([[2.0, -64 * 2 / 127], [10 * 0.5 / 127, 0.0]])
    before = SimpleNamespace(weight=SimpleNamespace(data=q, SCB=scb), state=SimpleNamespace(SCB=None))
    after = SimpleNamespace(weight=SimpleNamespace(data=q, SCB=None), state=SimpleNamespace(SCB=scb))
    for module in (before, after):
        assert torch.allclose(_bnb_dequantize(module), expected)
    with pytest.raises(ValueError, match="SCB"):
        _bnb_dequantize(SimpleNamespace(weight=SimpleNamespace(data=q, SCB=None), state=SimpleNamespace(SCB=None)))


def test_forward_keeping_the_last_logits_matches_the_full_forward(tiny_lm):
    from live_demo.decoding import forward, new_cache

    ids = torch.tensor([[3, 9, 27, 81, 5, 7]])
    with torch.inference_mode():
        full = forward(tiny_lm.model, ids, new_cache(tiny_lm.model))
        last2 = forward(tiny_lm.model, ids, new_cache(tiny_lm.model), keep=2)
    assert last2.shape == (1, 2, full.shape[-1])
    assert torch.allclose(last2, full[:, -2:], atol=1e-5)


def test_sentences_end_at_punctuation_followed_by_space_not_inside_decimals():
    from live_demo.compression import _sentence_spans

    pieces = ["The", " mirror", " is", " 2", ".", "4", " metres", " wide", ".", " It", " is", " old", "!"]
    assert _sentence_spans(pieces) == [(0, 9), (9, 13)]


def test_live_threads_leave_a_core_for_serving_and_reject_bad_values(monkeypatch):
    import os

    from live_demo.models import live_threads

    monkeypatch.delenv("ELLM_LIVE_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert live_threads() == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5}, raising=False)   # e.g. `taskset -c 5`
    assert live_threads() == 1
    monkeypatch.setenv("ELLM_LIVE_THREADS", "3")
    assert live_threads() == 3
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv("ELLM_LIVE_THREADS", bad)
        with pytest.raises(ValueError, match="ELLM_LIVE_THREADS"):
            live_threads()


def test_decode_perplexity_equals_batched_perplexity_for_a_batch_independent_model(tiny_lm):
    from live_demo.decoding import decode_perplexity, perplexity

    ids = [5, 17, 3, 99, 42, 7, 7, 250, 13, 1]
    assert decode_perplexity(tiny_lm.model, ids) == pytest.approx(perplexity(tiny_lm.model, ids), rel=1e-4)
    with pytest.raises(ValueError, match="at least 2"):
        decode_perplexity(tiny_lm.model, [5])


def test_decode_perplexity_is_reported_for_dynamic_methods_only(tiny_lm):
    from live_demo.api import run_quantization

    res = run_quantization(tiny_lm, ["int8-dynamic", "int8-weight-only"], eval_tokens=24, max_new_tokens=2,
                           decode_ppl=True)
    assert res.baseline["decode_perplexity"] > 0
    assert "decode_perplexity_change" in res.methods["int8-dynamic"]
    assert "decode_perplexity" not in res.methods["int8-weight-only"]


def test_run_quantization_frees_each_quantized_copy_even_in_a_reference_cycle(tiny_lm, monkeypatch):
    # The server turns off Streamlit's collection after every script run, so a copy kept alive only by a
    # reference cycle would stay in memory until Python's own collector ran: the run collects after each copy.
    import gc
    import weakref

    from live_demo import quantization
    from live_demo.api import run_quantization

    copies, real = [], quantization.quantize_copy

    def quantize_in_a_cycle(model, method, *args, **kwargs):
        copy = real(model, method, *args, **kwargs)
        copy.cycle = [copy]
        copies.append(weakref.ref(copy))
        return copy

    monkeypatch.setattr(quantization, "quantize_copy", quantize_in_a_cycle)
    gc.disable()
    try:
        run_quantization(tiny_lm, ["int8-dynamic", "int8-weight-only"], eval_tokens=24, max_new_tokens=2)
        assert len(copies) == 3 and all(ref() is None for ref in copies)   # fp16 sizing copy + two methods
    finally:
        gc.enable()


def test_cli_help_lists_every_verb():
    # `python -m live_demo --help` raised TypeError: a bare % in a verb's help is a format directive to argparse
    from live_demo.__main__ import build_parser

    text = build_parser().format_help()
    assert "% of measured peak" in text and all(verb in text for verb in ("bench", "quantize", "sweep", "speculate"))
