"""The Recommender page under AppTest: card, memory bar and Pareto render; bad input shows st.error."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parents[1] / "pages" / "recommender_page.py"


@pytest.fixture
def app():
    return AppTest.from_file(str(PAGE), default_timeout=120).run()


def charts(at):
    return at.get("plotly_chart")


def test_default_renders_card_memory_bar_and_pareto(app):
    assert not app.exception
    assert any("Recommended stack" in s.value for s in app.subheader)
    assert len(charts(app)) >= 3   # memory bar, latency bar, Pareto scatter
    assert any("/catalog?id=" in m.value for m in app.markdown)
    assert app.get("code")   # exports


def test_model_that_does_not_fit_shows_diagnosis(app):
    app.selectbox(key="rec_model_id").set_value("llama-2-70b")
    app.selectbox(key="rec_gpu_id").set_value("rtx-4090")
    app.run()
    assert not app.exception
    # one consistent verdict: nothing fits in GPU memory, the best fallback offloads, and the reason says why
    assert any("offloads" in w.value for w in app.warning), [w.value for w in app.warning]
    assert any("needs" in m.value for m in app.markdown)
    assert not any("Recommended stack" in s.value for s in app.subheader)
    assert any("Best available option" in s.value for s in app.subheader)


def test_bad_config_json_shows_error(app):
    app.radio(key="rec_model_source").set_value("config.json").run()
    app.text_area(key="rec_config_text").set_value("{not json").run()
    assert not app.exception
    assert any("not valid JSON" in e.value for e in app.error)


def test_negative_size_shows_error(app):
    app.radio(key="rec_model_source").set_value("Parameter count").run()
    app.number_input(key="rec_params_b").set_value(-5).run()
    assert not app.exception
    assert any("between" in e.value for e in app.error)


def test_custom_gpu_and_finetuning(app):
    app.radio(key="rec_model_source").set_value("Parameter count").run()
    app.number_input(key="rec_params_b").set_value(65.0)
    app.selectbox(key="rec_workload").set_value("finetune-qlora")
    app.selectbox(key="rec_gpu_id").set_value("custom").run()
    app.number_input(key="rec_gpu_mem").set_value(48.0).run()
    assert not app.exception
    assert any("qlora" in m.value.lower() for m in app.markdown)
    assert charts(app)   # memory bar


def test_zero_gpu_memory_shows_error(app):
    app.selectbox(key="rec_gpu_id").set_value("custom").run()
    app.number_input(key="rec_gpu_mem").set_value(0.0).run()
    assert not app.exception
    assert app.error


def test_refit_button_refits_with_history(tmp_path, monkeypatch):
    """The calibration expander offers a refit that reads the live demo's run history."""
    from recommender import calibration

    monkeypatch.setenv("ELLM_HISTORY_DB", str(tmp_path / "history.sqlite"))
    calls = []
    real = calibration.fit_calibrator
    monkeypatch.setattr(calibration, "fit_calibrator", lambda rows: calls.append(len(rows)) or real(rows))
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    assert not at.exception
    at.button(key="rec_refit").click().run()
    assert not at.exception
    assert calls, "the refit button did not refit the calibration"


def test_pareto_axis_stays_near_the_plans_with_a_far_budget():
    from recommender import api

    plans = [{"decode_ms_per_token": 10.0, "per_gpu_memory_gib": 5, "quality_risk": 0, "stack": ["fp16"],
              "engine": "hf", "num_gpus": 1},
             {"decode_ms_per_token": 40.0, "per_gpu_memory_gib": 3, "quality_risk": 1, "stack": ["awq"],
              "engine": "hf", "num_gpus": 1}]
    fig = api.pareto_scatter(plans, latency_budget_ms=1e30, capacity_gib=24)
    low, high = fig.layout.xaxis.range
    assert 10 ** high < 100 and 10 ** low > 5
    near = api.pareto_scatter(plans, latency_budget_ms=20, capacity_gib=24)
    positions = {a.text: a.yanchor for a in near.layout.annotations} if near.layout.annotations else {}
    assert len(positions) == 2   # both labels drawn, at opposite corners


def test_comparison_rows_show_a_dash_for_what_does_not_apply():
    from recommender import api

    plan = {"stack": ["lora"], "engine": "hf", "num_gpus": 1, "per_gpu_memory_gib": 9.5, "decode_ms_per_token": None,
            "decode_tokens_per_s": None, "ttft_ms": None, "quality_risk": 0.0, "fits": True, "meets_latency": True}
    rows = api.compare_rows(plan, plan)
    assert all("None" not in r["A"] for r in rows)
    assert any(r["A"] == "—" for r in rows)
