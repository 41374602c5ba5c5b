"""AppTest of every live-demo tab with the tiny random model injected through ELLM_DEMO_MODEL=tiny."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parents[1] / "pages" / "live_demo_page.py"


@pytest.fixture()
def app(monkeypatch, tmp_path):
    monkeypatch.setenv("ELLM_DEMO_MODEL", "tiny")
    monkeypatch.setenv("ELLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ELLM_HISTORY_DB", str(tmp_path / "history.sqlite"))
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def _table(at, column: str):
    """The first rendered dataframe that has `column` (AppTest does not expose dataframe keys)."""
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no dataframe with column {column!r}")


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_header_shows_device_dtype_params_memory(app):
    m = _metrics(app)
    assert app.title[0].value == "Live demo"
    assert m["Model"] == "tiny" and m["Device"].startswith("cpu") and "float32" in m["Device"]
    assert m["Parameters"].endswith("M") and m["Memory in use"].endswith("GiB")
    assert [t.label for t in app.tabs] == ["Quantization", "Prompt compression", "Speculative decoding", "History"]


def test_quantization_tab_runs_and_records(app):
    app.multiselect(key="quant_methods").set_value(["int8-weight-only", "int4-g32"]).run()
    app.slider(key="quant_new_tokens").set_value(8).run()
    app.button(key="quant_run").click().run()
    _ok(app)
    table = _table(app, "weights MB")
    assert list(table["method"]) == ["fp32 (baseline)", "int8-weight-only", "int4-g32"]
    res = app.session_state["quant_result"]
    sizes = [res["baseline"]["weight_bytes"]] + [res["methods"][m]["weight_bytes"] for m in res["methods"]]
    assert sizes[2] < sizes[1] < sizes[0]
    app.slider(key="absmax_bits").set_value(8).run()
    assert _metrics(app)["Levels used"].endswith("of 256")
    assert any(c.value.startswith("3 runs stored") for c in app.caption)  # baseline + 2 methods in the history
    assert len(_table(app, "kind")) == 3


def test_compression_tab_greys_tokens_and_reports(app):
    app.selectbox(key="comp_method").set_value("lingua").run()
    app.slider(key="comp_ratio").set_value(2.0).run()
    app.button(key="comp_run").click().run()
    _ok(app)
    m = _metrics(app)
    assert m["Compression ratio"].endswith("×") and "Quality kept (answer probability)" in m
    assert any("line-through" in md.value for md in app.markdown)
    app.slider(key="comp_eval_items").set_value(2).run()
    app.button(key="comp_eval").click().run()
    _ok(app)
    methods = list(_table(app, "quality kept")["method"])
    assert {"ours", "random"} <= set(methods)


def test_compression_empty_context_is_a_clear_error(app):
    first = app.selectbox(key="comp_item").value["id"]
    app.text_area(key=f"comp_context_{first}").set_value("   ").run()
    app.button(key="comp_run").click().run()
    assert not app.exception
    assert any("empty" in e.value for e in app.error)


@pytest.mark.parametrize("drafter", ["prompt-lookup", "int8-self", "early-exit"])
def test_speculative_tab_marks_tokens_and_matches_greedy(app, drafter):
    app.selectbox(key="spec_drafter").set_value(drafter).run()
    app.slider(key="spec_new").set_value(16).run()
    app.button(key="spec_run").click().run()
    assert not app.exception, [e.value for e in app.exception]
    m = _metrics(app)
    assert m["Identical to greedy"] == "yes"
    assert "Acceptance rate" in m and "Target passes / token" in m
    assert any("accepted from draft" in md.value for md in app.markdown)
    assert any("2-core CPU" in i.value for i in app.info)


def test_speculative_draft_model_needs_an_id(app):
    app.selectbox(key="spec_drafter").set_value("draft-model").run()
    app.text_input(key="draft_model_id").set_value("tiny").run()
    app.button(key="spec_run").click().run()
    assert not app.exception
    assert _metrics(app)["Identical to greedy"] == "yes"
    app.text_input(key="draft_model_id").set_value("/no/such/draft").run()
    app.button(key="spec_run").click().run()
    assert not app.exception and any("does not exist" in e.value for e in app.error)


def test_empty_speculative_prompt_is_a_clear_error(app):
    preset = app.selectbox(key="spec_preset").value
    app.text_area(key=f"spec_prompt_{preset}").set_value("").run()
    app.button(key="spec_run").click().run()
    assert not app.exception and any("empty" in e.value for e in app.error)


def test_corrupt_history_shows_error_and_page_keeps_working(monkeypatch, tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"garbage" * 200)
    monkeypatch.setenv("ELLM_DEMO_MODEL", "tiny")
    monkeypatch.setenv("ELLM_HISTORY_DB", str(bad))
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    assert not at.exception
    assert any("not a valid SQLite database" in e.value for e in at.error)
    at.slider(key="spec_new").set_value(8).run()
    at.button(key="spec_run").click().run()
    assert not at.exception
    assert any("not saved" in w.value for w in at.warning)
    assert bad.read_bytes().startswith(b"garbage")


def test_unknown_model_id_is_a_clear_error(app):
    app.text_input(key="model_id").set_value("/no/such/model").run()
    assert not app.exception
    assert any("does not exist" in e.value for e in app.error)
