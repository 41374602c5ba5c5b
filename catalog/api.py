"""The catalog's public face: everything the pages, the CLI and the benches use, and nothing they must not.

Pages read widgets into a `ViewState`, call `select()` once for the list and `detail()` once for an opened
technique, and render what comes back. No streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog import views
from catalog.core import Catalog, CatalogError, Technique, UnknownTechniqueError, load_catalog
from catalog.coverage import Coverage, coverage
from catalog.export import catalog_json, techniques_bibtex, techniques_csv, to_bibtex
from catalog.schema import ACTS_ON, ADOPTION_COSTS, ENGINE_FEATURES, ENGINES, ROOTS, STAGES
from catalog.search import MAX_QUERY_CHARS, Hit, SearchIndex, SearchResults, filter_techniques
from catalog.viewstate import ViewState

__all__ = [
    "ACTS_ON", "ADOPTION_COSTS", "ENGINES", "ENGINE_FEATURES", "MAX_QUERY_CHARS", "ROOTS", "STAGES", "Catalog",
    "CatalogError", "Coverage", "Detail", "Hit", "SearchIndex", "SearchResults", "Selection", "Technique",
    "UnknownTechniqueError", "ViewState", "catalog_json", "coverage", "detail", "load_catalog", "select",
    "techniques_bibtex", "techniques_csv", "to_bibtex", "views", "widget_state_from_url",
]

# Display names of the engines an entry may list (CATALOG_SCHEMA.md); the catalog's engine table may add more.
ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "tensorrt-llm": "TensorRT-LLM", "llama.cpp": "llama.cpp",
                "transformers": "Transformers"}


@dataclass(frozen=True)
class Selection:
    """The techniques a view shows, in rank order, and what the search made of the query."""
    techniques: list[Technique]
    message: str = ""             # e.g. "Understood: no draft model." or the no-close-match sentence
    no_close_match: bool = False


def select(catalog: Catalog, index: SearchIndex, state: ViewState, year_range: tuple[int, int] | None = None,
           limit: int | None = None) -> Selection:
    """Search (when the view has a query) and filter by every filter of the view. Raises ValueError for a query
    longer than MAX_QUERY_CHARS or a reversed year range."""
    if state.query.strip():
        ranked = index.search(state.query)
        techniques, message, none_close = [h.technique for h in ranked], ranked.message, ranked.no_close_match
    else:
        techniques, message, none_close = list(catalog.techniques), "", False
    kept = filter_techniques(techniques, areas=state.areas, categories=state.categories, stages=state.stages,
                             acts_on=state.acts_on, adoption_costs=state.costs, year_range=year_range,
                             open_source_only=state.open_source, since_survey_only=state.since_survey)
    return Selection(kept[:limit] if limit else kept, message, none_close)


def widget_state_from_url(catalog: Catalog, params: dict[str, list[str]], years: tuple[int, int]) -> dict:
    """The catalog page's initial widget values (keys cat_*) from URL parameters; stale values are dropped.

    An unknown technique id is returned under "cat_bad_id" so the page can say so instead of failing."""
    url = ViewState.from_query_params(params)
    known = set(catalog.technique_ids())
    state = dict(
        cat_query=url.query, cat_areas=url.areas, cat_stages=url.stages, cat_acts=url.acts_on, cat_costs=url.costs,
        cat_oss=url.open_source, cat_new=url.since_survey, cat_compare=[i for i in url.compare if i in known],
        cat_categories=[c for c in url.categories if c in {t.category for t in catalog.techniques}],
        cat_years=url.year_range_within(*years), cat_technique=url.technique if url.technique in known else None)
    if url.technique and url.technique not in known:
        state["cat_bad_id"] = url.technique
    return state


@dataclass(frozen=True)
class Detail:
    """What the page shows for one technique: text lines and (label, url) links, all ready to render."""
    technique: Technique
    facts: str                          # "2023 · ICLR 2023 · inference · acts on weights · needs-calibration"
    links: list[tuple[str, str]]        # paper, code
    engines: list[tuple[str, str]]      # (engine name, documentation URL)
    citation: str
    bibtex: str
    relations: dict[str, list[str]]
    companions: list[tuple[str, str, int]]   # (id, name, shared links)


def detail(catalog: Catalog, technique_id: str) -> Detail:
    """Everything the detail view needs for `technique_id`. Raises UnknownTechniqueError (with suggestions)."""
    t = catalog.get(technique_id)
    ref = t.reference
    venue = t.venue or ref.venue
    facts = " · ".join(x for x in (str(t.year), venue, ", ".join(t.stages), "acts on " + ", ".join(t.acts_on),
                                   t.adoption_cost, "added since the survey" if t.since_survey else "") if x)
    links = [(label, url) for label, url in (("Paper", t.paper_link), ("Code", t.code_url)) if url]
    engines = [(ENGINE_NAMES.get(e, e), url) for e, url in t.engines.items()]
    authors = ", ".join(ref.authors[:6]) + (" et al." if len(ref.authors) > 6 else "")
    citation = f"{authors}. *{ref.title}*. {ref.venue} {ref.year_label or ''}".strip()
    names = {x.id: x.name for x in catalog.techniques}
    companions = [(other, names[other], shared) for other, shared in catalog.often_combined_with(t.id)]
    return Detail(t, facts, links, engines, citation, to_bibtex(ref), catalog.related(t.id), companions)
