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


def _flat(node):
    """Every element of an AppTest tree in page order."""
    children = getattr(node, "children", None)
    if children is None:
        yield node
        return
    for key in sorted(children):
        yield from _flat(children[key])


def test_opened_technique_is_shown_above_the_search_and_table():
    at = new_app()
    at.query_params["id"] = "gptq"
    at.run()
    order = list(_flat(at.main))
    header = next(i for i, e in enumerate(order) if e.type == "header" and e.value == "GPTQ")
    search = next(i for i, e in enumerate(order) if getattr(e, "key", None) == "cat_query")
    table = next(i for i, e in enumerate(order) if getattr(e, "key", None) == "cat_table")
    assert header < search < table


def test_close_button_hides_the_detail():
    at = new_app().run()
    at.selectbox(key="cat_technique").set_value("awq").run()
    assert any(h.value == "AWQ" for h in at.header)
    at.button(key="cat_close").click().run()
    assert not at.exception and not any(h.value == "AWQ" for h in at.header)


def test_table_puts_full_names_and_useful_columns_first():
    at = new_app().run()
    frame = at.dataframe[0].value
    assert list(frame.columns[:4]) == ["name", "year", "category", "adoption"]
    assert "Optimal Brain Quantization" in set(frame["name"])   # the full name, not a truncated id


def test_detail_shows_venue_paper_link_and_engines_when_known():
    at = new_app()
    at.query_params["id"] = "cot-sc"
    at.run()
    text = " ".join(m.value for m in at.markdown)
    assert "ICLR 2023" in text and "https://arxiv.org/abs/2203.11171" in text


def test_search_explains_filter_words_and_says_no_close_match():
    at = new_app().run()
    at.text_input(key="cat_query").set_value("speculative decoding without draft model").run()
    assert any("no draft model" in c.value for c in at.caption)
    from catalog.api import load_catalog
    first = load_catalog().get(at.dataframe[0].value.iloc[0]["id"])
    assert "no-draft-model" in first.tags
    at.text_input(key="cat_query").set_value("Zorbulator").run()
    assert not at.exception and any("No close match" in w.value for w in at.warning)


def test_since_survey_filter_and_whats_new_tab_round_trip_through_the_url():
    at = new_app()
    at.query_params["new"] = "1"
    at.run()
    assert not at.exception and at.toggle(key="cat_new").value is True
    assert any("published after the survey" in m.value for m in at.markdown)
    count = int(next(m.value for m in at.markdown if "matching techniques" in m.value).split("**")[1].split()[0])
    from catalog.api import load_catalog
    assert count == sum(t.since_survey for t in load_catalog().techniques)
    assert "1" in str(at.query_params["new"])


def test_engines_table_lists_todays_engines():
    at = new_app().run()
    engines = next(d.value for d in at.dataframe if "paged KV cache" in d.value.columns)
    assert {"vLLM", "SGLang", "TensorRT-LLM", "llama.cpp", "Ollama"} <= set(engines.index)


def test_pages_import_only_the_catalogs_public_face():
    import ast

    root = Path(PAGE).parents[1]
    for page in ("pages/catalog_page.py", "pages/home.py"):
        tree = ast.parse((root / page).read_text())
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        catalog_modules = {m for m in modules if m and m.split(".")[0] == "catalog"}
        assert catalog_modules <= {"catalog", "catalog.api"}, (page, catalog_modules)
    assert len((root / "pages/catalog_page.py").read_text().splitlines()) <= 160
