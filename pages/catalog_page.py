"""Catalog: search and filter the techniques, open one (shown at the top), see what is new, compare, export."""

import streamlit as st

from catalog import api
from catalog.api import views
from common.text import escape_markdown


@st.cache_resource
def search_index() -> api.SearchIndex:
    return api.SearchIndex(api.load_catalog())


catalog = api.load_catalog()
known = set(catalog.technique_ids())
names = {t.id: t.name for t in catalog.techniques}
years = sorted({t.year for t in catalog.techniques}) or [2020, 2024]
if "cat_init" not in st.session_state:  # restore a shared view from the URL, once per session
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    st.session_state.update(cat_init=True, **api.widget_state_from_url(catalog, params, (years[0], years[-1])))
if "cat_years" not in st.session_state:  # Streamlit drops widget state on leaving the page: keep it a range
    st.session_state.cat_years = (years[0], years[-1])

counts = catalog.counts()
st.title("Catalog")
st.caption(f"{counts['techniques']} techniques ({counts['since_survey']} added since the survey), each with its "
           "citation and paper link.")
if bad := st.session_state.pop("cat_bad_id", None):
    st.warning(escape_markdown(str(api.UnknownTechniqueError(bad, catalog.closest_ids(bad)))))

chosen = st.session_state.get("cat_technique")
if chosen in known:  # the opened technique comes first, where the reader is looking
    d = api.detail(catalog, chosen)
    with st.container(border=True, key="cat_detail"):
        top, close = st.columns([6, 1])
        top.caption(d.technique.breadcrumb)
        close.button("Close ✕", key="cat_close", on_click=lambda: st.session_state.update(cat_technique=None))
        st.header(d.technique.name)
        if d.technique.aliases:
            st.caption("Also known as: " + escape_markdown(", ".join(d.technique.aliases)))
        st.markdown(escape_markdown(d.facts))
        st.write(d.technique.summary)
        links = [f"[{label} ↗]({url})" for label, url in d.links]
        links += ["**Supported by:** " + " · ".join(f"[{name}]({url})" for name, url in d.engines)] if d.engines else []
        st.markdown(" · ".join(links) or "No paper link recorded yet.")
        if d.technique.results:
            st.table([{k: r[k] for k in ("metric", "value", "setting")} for r in d.technique.results])
        if d.technique.libraries:
            st.markdown("**Open-source implementations:** " + escape_markdown(", ".join(d.technique.libraries)))
        g1, g2 = st.columns([3, 2])
        with g1:
            if d.relations:
                st.plotly_chart(views.relation_graph(catalog, chosen), key="cat_graph")
            else:
                st.caption("No relation to other entries is recorded for this technique.")
        g2.markdown("**Often combined with**\n\n" + ("\n".join(
            f"- [{escape_markdown(name)}](/catalog?id={other}) — {shared} shared links"
            for other, name, shared in d.companions) or "No companion found through shared libraries or relations."))
        st.subheader("Citation")
        st.markdown(d.citation)
        st.code(d.bibtex, language="bibtex")

query = st.text_input("Search names, aliases, summaries and tags", key="cat_query", max_chars=200,
                      placeholder="e.g. prune llama without retraining, 2306.00978, Dettmers",
                      help="Also searches paper titles, authors and arXiv ids; understands 'without retraining', "
                           "'without a draft model', 'long context'.")
with st.expander("Filters", expanded=chosen is None):
    c1, c2, c3 = st.columns(3)
    areas = c1.multiselect("Area", api.ROOTS, key="cat_areas")
    all_categories = sorted({t.category for t in catalog.techniques if not areas or t.area in areas})
    categories = c1.multiselect("Category", all_categories, key="cat_categories")
    stages = c2.multiselect("Lifecycle stage", api.STAGES, key="cat_stages")
    acts_on = c2.multiselect("Acts on", api.ACTS_ON, key="cat_acts")
    costs = c3.multiselect("Adoption cost", api.ADOPTION_COSTS, key="cat_costs")
    year_range = c3.slider("Year", years[0], years[-1], key="cat_years") if years[0] < years[-1] else None
    open_source = c3.toggle("Has an open-source implementation", key="cat_oss")
    since_survey = c3.toggle("Only techniques added since the survey", key="cat_new")

view = api.ViewState(query=query, areas=areas, categories=categories, stages=stages, acts_on=acts_on, costs=costs,
                     year_from=year_range[0] if year_range and year_range[0] != years[0] else None,
                     year_to=year_range[1] if year_range and year_range[1] != years[-1] else None,
                     open_source=open_source, since_survey=since_survey, technique=chosen,
                     compare=st.session_state.get("cat_compare", []))
selection = api.select(catalog, search_index(), view, year_range)
results = selection.techniques
st.query_params.from_dict(view.to_query_params())
if selection.no_close_match:
    st.warning(escape_markdown(selection.message))
elif selection.message:
    st.caption(escape_markdown(selection.message))

browse, new_tab, compare_tab, timeline, table1, table2 = st.tabs(
    ["Browse", "What's new", "Compare", "Timeline", "Pre-training costs (Table 1)", "Frameworks and engines"])
with browse:
    st.markdown(f"**{len(results)} matching techniques** — pick a row to open it at the top of the page")
    if not results:
        st.info("Nothing matches this search and these filters: try fewer or shorter words, or clear a filter.")
    frame = views.results_frame(results)
    picked = st.dataframe(
        frame, key="cat_table", on_select="rerun", selection_mode="single-row", hide_index=True, height=420,
        column_config={"name": st.column_config.TextColumn("name", width="large"), "id": None, "path": None,
                       "paper": st.column_config.LinkColumn("paper", display_text="paper ↗"),
                       "code": st.column_config.LinkColumn("code", display_text="code ↗")})
    rows = picked.selection.rows if picked else []
    if rows and frame.iloc[rows[0]]["id"] != chosen:
        st.session_state.cat_technique = frame.iloc[rows[0]]["id"]
        st.rerun()
    options = list(dict.fromkeys([t.id for t in results] + ([chosen] if chosen else [])))
    st.selectbox("Open a technique", options, key="cat_technique", index=None,
                 format_func=lambda i: f"{names.get(i, i)} ({i})", placeholder="Choose a technique")
    e1, e2, e3 = st.columns(3)
    e1.download_button("Export CSV", api.techniques_csv(results), "techniques.csv", "text/csv", key="cat_csv")
    e2.download_button("Export JSON", api.catalog_json(catalog, results), "techniques.json", key="cat_json")
    e3.download_button("Export BibTeX", api.techniques_bibtex(results), "techniques.bib", key="cat_bib")
    kind = st.radio("Overview", ["sunburst", "treemap"], horizontal=True, key="cat_overview")
    st.plotly_chart(views.taxonomy_figure(results, kind), key="cat_tree")
with new_tab:
    new_results = [t for t in results if t.since_survey]
    st.markdown(f"**{len(new_results)} techniques published after the survey** (December 2023) in this view; "
                "narrow them with the year and category filters above.")
    if new_results:
        st.plotly_chart(views.whats_new_figure(new_results), key="cat_new_chart")
        st.dataframe(views.whats_new_frame(new_results), key="cat_new_table", hide_index=True,
                     column_config={"paper": st.column_config.LinkColumn(display_text="paper ↗"),
                                    "code": st.column_config.LinkColumn(display_text="code ↗"), "id": None})
    else:
        st.info("No technique added since the survey matches this view.")
with compare_tab:
    picked_ids = st.multiselect("Pick 2 to 4 techniques", catalog.technique_ids(), key="cat_compare",
                                max_selections=4, format_func=lambda i: names.get(i, i))
    if len(picked_ids) >= 2:
        st.dataframe(views.comparison_frame([catalog.get(i) for i in picked_ids]), key="cat_cmp_table")
    else:
        st.info("Choose at least two techniques to compare them side by side.")
with timeline:
    st.plotly_chart(views.timeline_figure(results), key="cat_timeline")
with table1:
    costs_frame = views.pretraining_costs_frame(catalog)
    st.dataframe(costs_frame, hide_index=True, key="cat_t1")
    st.plotly_chart(views.pretraining_costs_figure(costs_frame), key="cat_t1_chart")
    st.caption("Accelerator-days = accelerator count × wall-clock days, computed where Table 1 gives both "
               "(LLaMA-2 is given directly in GPU-days). TPU and Ascend days are not A100-equivalent.")
with table2:
    st.markdown("**Inference engines in use today** (features as each project documents them)")
    st.dataframe(views.engines_frame(catalog), key="cat_engines",
                 column_config={"docs": st.column_config.LinkColumn(display_text="docs ↗")})
    st.markdown("**The survey's Table 2** (frameworks as of December 2023)")
    st.dataframe(views.framework_matrix(catalog), key="cat_t2")
