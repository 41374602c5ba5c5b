"""Fuzzing the catalog: the search box, the filters and the shareable URL through AppTest, and the package
boundary (search, filters, view state) with raw hostile values.

Page examples assert: no exception box, a clear message where nothing can be shown, user text echoed back only
in escaped form, and that the next normal search still finds GPTQ.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from catalog import UnknownTechniqueError, load_catalog
from catalog.schema import ACTS_ON, ADOPTION_COSTS, ROOTS, STAGES
from catalog.search import MAX_QUERY_CHARS, SearchIndex, filter_techniques
from catalog.viewstate import ViewState
from common.text import escape_markdown

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "catalog_page.py")
FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

HOSTILE_TEXT = [
    "", " ", "\x00\x01\x02\x1b[31m", "<script>alert(1)</script>", "**x**", "[x](javascript:alert(1))",
    "$\\frac{1}{0}$", ":red[alarm]", "# h\n- l", "\u202e\u200b\ufeff", "x" * 1_000_000, "🙂" * 300,
    "a " * 400, "%00%0a", "'; DROP TABLE techniques; --",
]
hostile_text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=300))


def inert(markdown: str) -> bool:
    bare = re.sub(r"\\.", "", markdown)
    return not any(c in bare for c in "[]()<>*_`$~|#\\")


def assert_clean(at) -> None:
    assert not at.exception, [e.message for e in at.exception]


def count_line(at) -> str:
    return next(m.value for m in at.markdown if "matching techniques" in m.value)


def assert_normal_search_works(at) -> None:
    """After whatever came before, clearing the filters and searching still finds GPTQ first."""
    for key in ("cat_areas", "cat_categories", "cat_stages", "cat_acts", "cat_costs"):
        at.multiselect(key=key).set_value([])
    at.toggle(key="cat_oss").set_value(False)
    years = sorted({t.year for t in load_catalog().techniques})
    at.slider(key="cat_years").set_value((years[0], years[-1]))
    at.text_input(key="cat_query").set_value("gptq").run()
    assert_clean(at)
    assert at.dataframe and at.dataframe[0].value.iloc[0]["name"] == "GPTQ"


@pytest.fixture(scope="module")
def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    return at


def test_search_box_fuzzed(page):
    at = page

    @FUZZ
    @given(query=hostile_text)
    def check(query):
        at.text_input(key="cat_query").set_value(query).run()
        assert_clean(at)
        n = int(re.search(r"\*\*(\d+) matching", count_line(at)).group(1))
        if n == 0:
            assert any("Nothing matches" in i.value for i in at.info)
        assert len(at.text_input(key="cat_query").value) <= 200   # the widget caps what reaches search
        assert_normal_search_works(at)

    check()


def test_filters_fuzzed(page):
    at = page
    years = sorted({t.year for t in load_catalog().techniques})

    @FUZZ
    @given(stages=st.lists(st.sampled_from(STAGES), unique=True), acts=st.lists(st.sampled_from(ACTS_ON), unique=True),
           costs=st.lists(st.sampled_from(ADOPTION_COSTS), unique=True),
           areas=st.lists(st.sampled_from(ROOTS), unique=True), oss=st.booleans(),
           span=st.tuples(st.sampled_from(years), st.sampled_from(years)).map(sorted).map(tuple))
    def check(stages, acts, costs, areas, oss, span):
        at.multiselect(key="cat_stages").set_value(stages)
        at.multiselect(key="cat_acts").set_value(acts)
        at.multiselect(key="cat_costs").set_value(costs)
        at.multiselect(key="cat_areas").set_value(areas)
        at.toggle(key="cat_oss").set_value(oss)
        at.slider(key="cat_years").set_value(span).run()
        assert_clean(at)
        if count_line(at).startswith("**0 "):
            assert any("Nothing matches" in i.value for i in at.info)
        for key in ("cat_stages", "cat_acts", "cat_costs", "cat_areas"):
            at.multiselect(key=key).set_value([])
        at.toggle(key="cat_oss").set_value(False)
        at.slider(key="cat_years").set_value((years[0], years[-1]))
        assert_normal_search_works(at)

    check()


url_values = st.one_of(st.sampled_from([t for t in HOSTILE_TEXT if len(t) < 10_000] + ["y" * 100_000]),
                       st.text(max_size=60),
                       st.sampled_from(["gptq,gptq,gptq,awq", "2099", "1901", "0", "-5", "2024", "2019", "lora",
                                        "prompting", "fine-tuning,bogus", "1", "true", ",,,"]))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(params=st.dictionaries(st.sampled_from(["q", "id", "year_from", "year_to", "compare", "stages", "areas",
                                                "categories", "acts_on", "costs", "open_source"]),
                              url_values, min_size=1, max_size=5))
def test_shared_url_fuzzed(params):
    """A hand-edited or stale URL never breaks the page; an unknown id is reported escaped."""
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert_clean(at)
    unknown = [w.value for w in at.warning if "unknown technique id" in w.value]
    assert all(inert(w) for w in unknown), unknown   # the id is echoed, so the whole warning is escaped
    wanted = ViewState.from_query_params({k: [v] for k, v in params.items()}).technique
    if wanted and wanted not in load_catalog().technique_ids():
        assert unknown
    assert_normal_search_works(at)


# ------------------------------------------------------------------ the package boundary, raw values
@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex(load_catalog())


@settings(max_examples=200, deadline=None, database=None)
@given(query=st.one_of(st.text(max_size=MAX_QUERY_CHARS), st.sampled_from(HOSTILE_TEXT)),
       limit=st.one_of(st.none(), st.integers(-5, 50)))
def test_search_returns_hits_or_raises_value_error(index, query, limit):
    try:
        hits = index.search(query, limit=limit)
    except ValueError as exc:
        assert len(query) > MAX_QUERY_CHARS or (limit is not None and limit < 1), exc
        return
    assert limit is None or len(hits) <= limit
    assert all(h.score >= 0 for h in hits)


@settings(max_examples=100, deadline=None, database=None)
@given(year_range=st.tuples(st.integers(-10**9, 10**9), st.integers(-10**9, 10**9)))
def test_filter_years_in_order_or_value_error(year_range):
    techniques = list(load_catalog().techniques)
    try:
        kept = filter_techniques(techniques, year_range=year_range)
    except ValueError as exc:
        assert "reversed" in str(exc) and year_range[0] > year_range[1]
        return
    assert all(year_range[0] <= t.year <= year_range[1] for t in kept)


@settings(max_examples=200, deadline=None, database=None)
@given(params=st.dictionaries(st.text(max_size=12), st.lists(st.text(max_size=40), max_size=4), max_size=8),
       first=st.integers(1990, 2030), width=st.integers(0, 20))
def test_view_state_from_any_url_is_valid(params, first, width):
    state = ViewState.from_query_params(params)
    assert len(state.query) <= 200 and len(state.compare) <= 4 and len(set(state.compare)) == len(state.compare)
    assert set(state.stages) <= set(STAGES) and set(state.areas) <= set(ROOTS)
    lo, hi = state.year_range_within(first, first + width)
    assert first <= lo <= hi <= first + width
    again = ViewState.from_query_params({k: [v] for k, v in state.to_query_params().items()})
    assert again.query == state.query.strip() or again.query == state.query


@settings(max_examples=100, deadline=None, database=None)
@given(technique_id=st.one_of(st.text(), st.sampled_from(HOSTILE_TEXT)))
def test_unknown_id_is_a_short_specific_error(technique_id):
    catalog = load_catalog()
    if technique_id in catalog.technique_ids():
        return
    with pytest.raises(UnknownTechniqueError) as err:
        catalog.get(technique_id)
    assert len(str(err.value)) < 300


@settings(max_examples=100, deadline=None, database=None)
@given(text=st.text())
def test_escape_markdown_leaves_nothing_active(text):
    escaped = escape_markdown(text)
    assert inert(escaped) and "\n" not in escaped
    assert re.sub(r"\\(.)", r"\1", escaped) == " ".join(text.split())


def test_leaving_and_returning_to_the_catalog_keeps_working():
    """Found by bench/load_test.py: Streamlit drops a page's widget state when another page runs, and the year
    slider came back as a single year (TypeError in filter_techniques) on the second visit."""
    app = AppTest.from_file(str(Path(PAGE).parents[1] / "app.py"), default_timeout=120).run()
    for page in ["catalog_page", "recommender_page", "catalog_page", "home", "catalog_page"]:
        app.switch_page(f"pages/{page}.py").run()
        assert not app.exception, (page, [e.message for e in app.exception])
    assert any("matching techniques" in m.value for m in app.markdown)
    assert_normal_search_works(app)
