"""AppTest interaction tests for the catalog page."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "catalog_page.py")


def new_app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60)


def test_search_narrows_the_results():
    at = new_app().run()
    at.text_input(key="cat_query").set_value("gptq").run()
    assert not at.exception
    assert any("matching techniques" in m.value for m in at.markdown)
    assert at.query_params["q"] == ["gptq"] or at.query_params["q"] == "gptq"


def test_filter_by_stage_updates_url():
    at = new_app().run()
    at.multiselect(key="cat_stages").set_value(["prompting"]).run()
    assert not at.exception
    params = at.query_params
    assert "prompting" in str(params["stages"])


def test_open_a_technique_shows_breadcrumb_summary_and_citation():
    at = new_app().run()
    at.selectbox(key="cat_technique").set_value("gptq").run()
    assert not at.exception
    assert any(h.value == "GPTQ" for h in at.header)
    assert any("Model-Centric" in c.value for c in at.caption)
    assert any("@" in c.value for c in at.code)


def test_query_params_restore_a_view():
    at = new_app()
    at.query_params["q"] = "lora"
    at.query_params["stages"] = "fine-tuning"
    at.query_params["id"] = "lora"
    at.run()
    assert not at.exception
    assert at.text_input(key="cat_query").value == "lora"
    assert at.multiselect(key="cat_stages").value == ["fine-tuning"]
    assert any(h.value == "LoRA" for h in at.header)


def test_unknown_id_in_url_shows_a_warning_not_an_exception():
    at = new_app()
    at.query_params["id"] = "gptqq"
    at.run()
    assert not at.exception
    assert any("gptq" in w.value for w in at.warning)


def test_compare_two_techniques():
    at = new_app().run()
    at.multiselect(key="cat_compare").set_value(["gptq", "awq"]).run()
    assert not at.exception
    assert len(at.dataframe) >= 2
