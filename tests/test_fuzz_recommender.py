"""Fuzzing the recommender: every page input through AppTest, and the package boundary with raw bad values.

Each page example asserts three things: no exception box, a clear st.error when the input is invalid, and
that the next normal interaction plans again. Package examples assert that bad values raise
RecommenderInputError (a ValueError) and never anything else.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from recommender import GPU, ModelSpec, PlanRequest, RecommenderInputError
from recommender.errors import check_number
from recommender.models import MAX_CONFIG_BYTES, model_from_hf_config, resolve_model
from recommender.planner import QUALITY_LEVELS

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "recommender_page.py")
FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

HOSTILE_TEXT = [
    "", " ", "\x00\x01\x02\x1b[31m", "<script>alert(1)</script>", "**x**", "[x](javascript:alert(1))",
    "$\\frac{1}{0}$", ":red[alarm] :skull:", "# heading\n- list", "<img src=x onerror=alert(1)>",
    "\u202e\u200b\ufeff", "x" * MAX_CONFIG_BYTES, "{" * 5000, "[" * 100_000,
]
VALID_CONFIG = {"num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32, "vocab_size": 32000,
                "num_key_value_heads": 8, "intermediate_size": 14336, "model_type": "llama"}

# (widget key, lowest valid, highest valid, integer widget); 0 means "no budget" for the two budgets
NUMBER_INPUTS = [
    ("rec_num_gpus", 1, 64, True), ("rec_batch", 1, 100_000, True), ("rec_prompt_len", 1, 10_000_000, True),
    ("rec_gen_len", 1, 10_000_000, True), ("rec_latency", 1e-3, 1e7, False), ("rec_ttft", 1e-3, 1e8, False),
]
CUSTOM_GPU_INPUTS = [("rec_gpu_mem", 0.25, 4096), ("rec_gpu_bw", 1, 100_000), ("rec_gpu_tflops", 0.01, 100_000)]
DEFAULTS = {"rec_num_gpus": 1, "rec_batch": 1, "rec_prompt_len": 512, "rec_gen_len": 256, "rec_latency": 0.0, "rec_ttft": 0.0,
            "rec_gpu_mem": 24.0, "rec_gpu_bw": 1000.0, "rec_gpu_tflops": 150.0, "rec_params_b": 7.0}

hostile_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e308, -1e308, 0.01, 0.25, 4096.0, 1e7, 1e8]),
)
hostile_ints = st.one_of(st.integers(-(10**15), 10**15), st.sampled_from([0, -1, 1, 64, 65, 100_001]))


def inert(markdown: str) -> bool:
    """True when no markdown syntax survives: every special character in the body is backslash-escaped."""
    bare = re.sub(r"\\.", "", markdown)
    return not any(c in bare for c in "[]()<>*_`$~|#\\")


def errors(at) -> list[str]:
    """The st.error texts as a reader sees them (markdown escapes removed)."""
    return [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]


def planned(at) -> bool:
    """The page planned: its stack card shows the recommended stack or, when budgets are missed, the best option."""
    return any(s.value in ("Recommended stack", "Best available option") for s in at.subheader)


def assert_clean(at) -> None:
    assert not at.exception, [e.message for e in at.exception]
    # input errors echo user text, so their body must be inert (diagnosis errors are our own wording)
    echoed = [e.value.removeprefix("Cannot plan this: ") for e in at.error
              if e.value.startswith("Cannot plan this: ")]
    assert all(inert(e) for e in echoed), echoed


def assert_recovers(at, key: str, kind: str = "number_input") -> None:
    """The next normal interaction works: back to a sensible value, the page plans again."""
    getattr(at, kind)(key=key).set_value(DEFAULTS[key]).run()
    assert not at.exception
    assert not errors(at) and planned(at), errors(at)


@pytest.fixture(scope="module")
def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception and planned(at)
    return at


@pytest.mark.parametrize("key,low,high,integer", NUMBER_INPUTS)
def test_number_inputs_fuzzed(page, key, low, high, integer):
    at = page

    @FUZZ
    @given(value=hostile_ints if integer else hostile_floats)
    def check(value):
        at.number_input(key=key).set_value(value).run()
        assert_clean(at)
        shown = at.number_input(key=key).value   # st.number_input may refuse a value; judge what it kept
        valid = (shown == 0 and key in ("rec_latency", "rec_ttft")) or low <= shown <= high
        if not valid:
            assert any("must be" in e for e in errors(at)), (shown, errors(at))
        else:
            assert planned(at) or errors(at)
        assert_recovers(at, key)

    check()


@contextlib.contextmanager
def switched(at, kind: str, key: str, value, back):
    """Put a mode widget (model source, GPU) on `value` for one fuzz test and back on `back` afterwards, so the
    next test on the shared page starts from the preset."""
    getattr(at, kind)(key=key).set_value(value).run()
    try:
        yield at
    finally:
        getattr(at, kind)(key=key).set_value(back).run()


@pytest.mark.parametrize("key,low,high", CUSTOM_GPU_INPUTS)
def test_custom_gpu_inputs_fuzzed(page, key, low, high):
    at = page

    @FUZZ
    @given(value=hostile_floats)
    def check(value):
        at.number_input(key=key).set_value(value).run()
        assert_clean(at)
        if not low <= at.number_input(key=key).value <= high:
            assert any("gpu" in e for e in errors(at)), errors(at)
        assert_recovers(at, key)

    with switched(at, "selectbox", "rec_gpu_id", "custom", "a100-80gb"):
        check()


def test_parameter_count_fuzzed(page):
    at = page

    @FUZZ
    @given(value=hostile_floats)
    def check(value):
        at.number_input(key="rec_params_b").set_value(value).run()
        assert_clean(at)
        if not 0.01 <= at.number_input(key="rec_params_b").value <= 10_000:
            assert any("model size" in e for e in errors(at)), errors(at)
        assert_recovers(at, "rec_params_b")

    with switched(at, "radio", "rec_model_source", "Parameter count", "Preset"):
        check()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# a real config with one field replaced by a hostile value: reaches the field checks, not just the JSON parser
mutated_configs = st.builds(
    lambda field, value: json.dumps({**VALID_CONFIG, field: value}),
    st.sampled_from([*VALID_CONFIG, "sliding_window", "sliding_window_pattern", "num_local_experts",
                     "num_experts_per_tok", "head_dim", "max_position_embeddings", "_name_or_path", "text_config"]),
    json_values,
)
config_texts = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=300), mutated_configs,
                         json_values.map(lambda v: json.dumps(v)))


def test_config_text_fuzzed(page):
    at = page

    @FUZZ
    @given(text=config_texts)
    def check(text):
        at.text_area(key="rec_config_text").set_value(text).run()
        assert_clean(at)
        assert planned(at) or any("config.json" in e for e in errors(at)), errors(at)
        at.text_area(key="rec_config_text").set_value(json.dumps(VALID_CONFIG)).run()
        assert not at.exception and planned(at) and not errors(at), errors(at)

    with switched(at, "radio", "rec_model_source", "config.json", "Preset"):
        check()


uploads = st.one_of(
    st.binary(max_size=2000),
    st.sampled_from([b"", b"\xff\xfe\x00", b"{", json.dumps(VALID_CONFIG).encode("utf-16"),
                     b" " * (MAX_CONFIG_BYTES + 1), b'{"a": "' + b"x" * (MAX_CONFIG_BYTES + 10) + b'"}']),
    config_texts.map(lambda t: t.encode("utf-8", errors="replace")),
)


def test_config_upload_fuzzed(page):
    at = page

    @FUZZ
    @given(data=uploads)
    def check(data):
        at.file_uploader(key="rec_config_file").set_value(("config.json", data, "application/json")).run()
        assert_clean(at)
        assert planned(at) or any("config.json" in e for e in errors(at)), errors(at)
        if len(data) > MAX_CONFIG_BYTES:
            assert any("too large" in e for e in errors(at)), errors(at)
        at.file_uploader(key="rec_config_file").set_value(
            ("config.json", json.dumps(VALID_CONFIG).encode(), "application/json")).run()
        assert not at.exception and planned(at) and not errors(at), errors(at)

    with switched(at, "radio", "rec_model_source", "config.json", "Preset"):
        try:
            check()
        finally:
            at.file_uploader(key="rec_config_file").set_value(None)


def test_model_name_from_config_is_escaped(page):
    at = page
    at.radio(key="rec_model_source").set_value("config.json").run()
    hostile = "[click](javascript:alert(1)) <script>x</script> **bold** :red[x] $x$"
    at.text_area(key="rec_config_text").set_value(json.dumps({**VALID_CONFIG, "_name_or_path": hostile})).run()
    assert not at.exception and planned(at)
    caption = next(c.value for c in at.caption if "Model:" in c.value)
    assert inert(caption.split("Model:", 1)[1].rsplit(" (", 1)[0])
    at.radio(key="rec_model_source").set_value("Preset").run()


# ------------------------------------------------------------------ the package boundary, raw values
raw_numbers = st.one_of(st.floats(), st.integers(), st.none(), st.booleans(), st.text(max_size=10),
                        st.sampled_from([float("nan"), float("inf"), -float("inf"), 10**400, "1e999"]))


@settings(max_examples=200, deadline=None, database=None)
@given(value=raw_numbers, low=st.floats(-1e6, 1e6), span=st.floats(0, 1e6), integer=st.booleans())
def test_check_number_returns_in_range_or_raises(value, low, span, integer):
    try:
        out = check_number("x", value, low=low, high=low + span, integer=integer)
    except RecommenderInputError as exc:
        assert str(exc).startswith("x must be")
        return
    assert math.isfinite(out) and low <= out <= low + span


@settings(max_examples=150, deadline=None, database=None)
@given(mem=raw_numbers, bw=raw_numbers, tf=raw_numbers)
def test_custom_gpu_raises_value_error_only(mem, bw, tf):
    try:
        gpu = GPU.custom(mem, bw, tf)
    except ValueError as exc:
        assert "gpu" in str(exc)
        return
    assert gpu.memory_gib > 0 and gpu.bandwidth_gbps > 0 and gpu.fp16_tflops > 0


@settings(max_examples=150, deadline=None, database=None)
@given(params_b=raw_numbers)
def test_params_count_raises_value_error_only(params_b):
    try:
        spec = ModelSpec.from_params(params_b)
    except ValueError as exc:
        assert "model size" in str(exc)
        return
    assert spec.total_params > 0


@settings(max_examples=300, deadline=None, database=None)
@given(config=st.one_of(mutated_configs, config_texts, json_values, st.binary(max_size=200),
                        mutated_configs.map(str.encode)))
def test_config_parser_raises_recommender_input_error_only(config):
    try:
        spec = model_from_hf_config(config)
    except RecommenderInputError as exc:
        assert str(exc) and len(str(exc)) < 400   # a message a person can read, not a dump of the input
        return
    assert spec.layers > 0 and spec.total_params > 0 and "\n" not in spec.name


def test_oversized_config_is_refused_before_parsing():
    huge = b'{"num_hidden_layers": 2, "pad": "' + b"x" * MAX_CONFIG_BYTES + b'"}'
    for raw in (huge, huge.decode()):
        with pytest.raises(RecommenderInputError, match="too large"):
            model_from_hf_config(raw)


@settings(max_examples=150, deadline=None, database=None)
@given(num_gpus=raw_numbers, batch=raw_numbers, prompt_len=raw_numbers, gen_len=raw_numbers,
       latency=raw_numbers, ttft=raw_numbers, quality=st.text(max_size=12).filter(lambda q: q not in QUALITY_LEVELS),
       workload=st.text(max_size=12),
       max_plans=raw_numbers)
def test_plan_request_validation_raises_value_error_only(num_gpus, batch, prompt_len, gen_len, latency, ttft,
                                                         quality, workload, max_plans):
    req = PlanRequest(model=resolve_model("llama-2-7b"), gpu=GPU.from_name("a100-80gb"), num_gpus=num_gpus,
                      batch=batch, prompt_len=prompt_len, gen_len=gen_len, latency_ms_per_token=latency,
                      ttft_ms=ttft, quality=quality, workload=workload, max_plans=max_plans)
    with pytest.raises(RecommenderInputError):
        req.validated()   # the text quality/workload are never valid ids, so something always fails



@settings(max_examples=150, deadline=None, database=None)
@given(weights=st.one_of(st.sampled_from(["fp16", "int8", "int4", "nf4", "gptq-4bit"]), st.text(max_size=8),
                         st.none(), st.integers()),
       kv=st.one_of(st.sampled_from(["fp16", "fp8", "int8"]), st.text(max_size=8), st.none()),
       engine=st.one_of(st.sampled_from(["hf", "vllm", "llama.cpp"]), st.text(max_size=8)),
       batch=raw_numbers, prompt_len=raw_numbers, gen_len=raw_numbers, num_gpus=raw_numbers)
def test_estimate_inference_raises_value_error_only(weights, kv, engine, batch, prompt_len, gen_len, num_gpus):
    from recommender import InferenceConfig, estimate_inference

    cfg = InferenceConfig(weights=weights, kv=kv, engine=engine, batch=batch, prompt_len=prompt_len,
                          gen_len=gen_len, num_gpus=num_gpus)
    try:
        est = estimate_inference(resolve_model("llama-2-7b"), GPU.from_name("a100-80gb"), cfg)
    except ValueError as exc:
        assert str(exc) and len(str(exc)) < 400
        return
    assert est.to_dict()["memory_gib"] > 0


@settings(max_examples=100, deadline=None, database=None)
@given(gpu_id=st.one_of(st.sampled_from(["a100-80gb", "t4"]), st.text(max_size=10)), target=raw_numbers,
       draft=raw_numbers, acceptance=raw_numbers, draft_len=raw_numbers)
def test_speculative_projection_raises_value_error_only(gpu_id, target, draft, acceptance, draft_len):
    """The live demo passes measured values here (an acceptance rate can be NaN after zero drafted tokens)."""
    from recommender.api import project_speculative_speedup

    try:
        out = project_speculative_speedup(gpu_id, target, draft, acceptance, draft_len)
    except ValueError as exc:
        assert str(exc) and len(str(exc)) < 400
        return
    assert math.isfinite(out["speedup"]) and out["speedup"] > 0
