"""Hostile text through every live-demo text input (tiny model): a clear message, never an exception, and the
next normal interaction still works."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parents[1] / "pages" / "live_demo_page.py"
HOSTILE = [
    "", "   ", "\x00\x01\x1b[31m", "<script>alert(1)</script>", "**bold** [x](javascript:alert(1))",
    "$$\\frac{1}{0}$$", "../../../../etc/passwd", "https://evil.example/model", "owner/name/extra",
    "😀" * 50, "word " * 3000,
]
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=120))
FUZZ = settings(max_examples=6, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True, scope="module")
def tiny_model_env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        data = tmp_path_factory.mktemp("fuzz-live-demo")
        patch.setenv("ELLM_DEMO_MODEL", "tiny")
        patch.setenv("ELLM_CACHE_DIR", str(data / "cache"))
        patch.setenv("ELLM_HISTORY_DB", str(data / "history.sqlite"))
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


def new_app() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    assert not at.exception
    return at


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def assert_generation_still_works(at) -> None:
    preset = at.selectbox(key="live_spec_preset").value
    at.text_area(key=f"live_spec_prompt_{preset}").set_value("The cat sat on the mat. The cat sat on the").run()
    at.selectbox(key="live_spec_drafter").set_value("prompt-lookup")
    at.slider(key="live_spec_new").set_value(8)
    at.button(key="live_spec_run").click().run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}.get("Identical to greedy") == "yes"


@FUZZ
@given(text=hostile_text)
def test_speculative_prompt_fuzzed(text):
    at = new_app()
    preset = at.selectbox(key="live_spec_preset").value
    at.text_area(key=f"live_spec_prompt_{preset}").set_value(text).run()
    at.slider(key="live_spec_new").set_value(8)
    at.button(key="live_spec_run").click().run()
    assert_clean(at)
    if not text.strip():
        assert any("empty" in e.value for e in at.error)
    assert_generation_still_works(at)


@FUZZ
@given(context=hostile_text, question=hostile_text)
def test_compression_inputs_fuzzed(context, question):
    at = new_app()
    item = at.selectbox(key="live_comp_item").value["id"]
    at.text_area(key=f"live_comp_context_{item}").set_value(context)
    at.text_input(key=f"live_comp_question_{item}").set_value(question).run()
    at.button(key="live_comp_run").click().run()
    assert_clean(at)
    if not context.strip():
        assert at.error, "an empty context must give a clear message"
    assert_generation_still_works(at)


@FUZZ
@given(model_id=st.sampled_from(HOSTILE[2:10] + ["/no/such/dir", "~/nope", "a b c"]))
def test_model_ids_fuzzed(model_id):
    at = new_app()
    at.text_input(key="live_model_id").set_value(model_id).run()
    assert_clean(at)
    assert at.error, f"{model_id!r} should be refused with a message"
    at.text_input(key="live_model_id").set_value("").run()
    assert_clean(at)
    assert_generation_still_works(at)


@FUZZ
@given(draft_id=st.sampled_from(HOSTILE[2:10] + ["/no/such/dir"]))
def test_draft_model_ids_fuzzed(draft_id):
    at = new_app()
    at.selectbox(key="live_spec_drafter").set_value("draft-model")
    at.text_input(key="live_spec_draft_id").set_value(draft_id)
    at.slider(key="live_spec_new").set_value(8)
    at.button(key="live_spec_run").click().run()
    assert_clean(at)
    assert at.error
    assert_generation_still_works(at)
