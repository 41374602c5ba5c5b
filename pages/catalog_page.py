"""Catalog: search, filter and explore the survey's taxonomy; open a technique; compare; export."""

import streamlit as st

from catalog import UnknownTechniqueError, load_catalog, views
from catalog.export import catalog_json, techniques_bibtex, techniques_csv, to_bibtex
from catalog.schema import ACTS_ON, ADOPTION_COSTS, ROOTS, STAGES
from catalog.search import SearchIndex, filter_techniques
from catalog.viewstate import ViewState


@st.cache_resource
def search_index() -> SearchIndex:
    return SearchIndex(load_catalog())


catalog = load_catalog()
years = sorted({t.year for t in catalog.techniques}) or [2020, 2024]
if "cat_init" not in st.session_state:  # restore a shared view from the URL, once per session
    state = ViewState.from_query_params({k: st.query_params.get_all(k) for k in st.query_params})
    known = set(catalog.technique_ids())
    st.session_state.update(
        cat_init=True, cat_query=state.query, cat_areas=state.areas, cat_stages=state.stages,
        cat_acts=state.acts_on, cat_costs=state.costs, cat_oss=state.open_source,
        cat_compare=[i for i in state.compare if i in known],
        cat_categories=[c for c in state.categories if c in {t.category for t in catalog.techniques}],
        cat_years=state.year_range_within(years[0], years[-1]),
        cat_technique=state.technique if state.technique in known else None,
    )
    if state.technique and state.technique not in known:
        st.session_state.cat_bad_id = state.technique
if "cat_years" not in st.session_state:  # Streamlit drops widget state on leaving the page: keep it a range
    st.session_state.cat_years = (years[0], years[-1])

st.title("Catalog")
st.caption(f"{len(catalog.techniques)} techniques from the survey, each with its citation.")
if bad := st.session_state.pop("cat_bad_id", None):
    st.warning(views.escape_markdown(str(UnknownTechniqueError(bad, catalog.closest_ids(bad)))))

query = st.text_input("Search names, aliases, summaries and tags", key="cat_query", max_chars=200,
                      placeholder="e.g. gptq, flash attn, kv cache, lora")
with st.expander("Filters", expanded=True):
    c1, c2, c3 = st.columns(3)
    areas = c1.multiselect("Area", ROOTS, key="cat_areas")
    all_categories = sorted({t.category for t in catalog.techniques if not areas or t.area in areas})
    categories = c1.multiselect("Category", all_categories, key="cat_categories")
    stages = c2.multiselect("Lifecycle stage", STAGES, key="cat_stages")
    acts_on = c2.multiselect("Acts on", ACTS_ON, key="cat_acts")
    costs = c3.multiselect("Adoption cost", ADOPTION_COSTS, key="cat_costs")
    year_range = c3.slider("Year", years[0], years[-1], key="cat_years") if years[0] < years[-1] else None
    open_source = c3.toggle("Has an open-source implementation", key="cat_oss")

ranked = [h.technique for h in search_index().search(query)] if query.strip() else list(catalog.techniques)
results = filter_techniques(ranked, areas=areas, categories=categories, stages=stages, acts_on=acts_on,
                            adoption_costs=costs, year_range=year_range, open_source_only=open_source)
view = ViewState(query=query, areas=areas, categories=categories, stages=stages, acts_on=acts_on, costs=costs,
                 year_from=year_range[0] if year_range and year_range[0] != years[0] else None,
                 year_to=year_range[1] if year_range and year_range[1] != years[-1] else None,
                 open_source=open_source, technique=st.session_state.get("cat_technique"),
                 compare=st.session_state.get("cat_compare", []))
st.query_params.from_dict(view.to_query_params())

browse, compare_tab, timeline, table1, table2 = st.tabs(
    ["Browse", "Compare", "Timeline", "Pre-training costs (Table 1)", "Frameworks (Table 2)"])
with browse:
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"**{len(results)} matching techniques** — pick a row to open it")
        if not results:
            st.info("Nothing matches this search and these filters: try fewer or shorter words, or clear a filter.")
        frame = views.results_frame(results)
        picked = st.dataframe(
            frame, key="cat_table", on_select="rerun", selection_mode="single-row", hide_index=True, height=420,
            column_config={"open": st.column_config.LinkColumn("link", display_text="open ↗"), "id": None})
        rows = picked.selection.rows if picked else []
        if rows:
            st.session_state.cat_technique = frame.iloc[rows[0]]["id"]
        e1, e2, e3 = st.columns(3)
        e1.download_button("Export CSV", techniques_csv(results), "techniques.csv", "text/csv", key="cat_csv")
        e2.download_button("Export JSON", catalog_json(catalog, results), "techniques.json", key="cat_json")
        e3.download_button("Export BibTeX", techniques_bibtex(results), "techniques.bib", key="cat_bib")
    with right:
        kind = st.radio("Overview", ["sunburst", "treemap"], horizontal=True, key="cat_overview")
        st.plotly_chart(views.taxonomy_figure(results, kind), key="cat_tree")

    options = list(dict.fromkeys([t.id for t in results] + ([view.technique] if view.technique else [])))
    names = {t.id: t.name for t in catalog.techniques}
    chosen = st.selectbox("Open a technique", options, key="cat_technique", index=None,
                          format_func=lambda i: f"{names.get(i, i)} ({i})", placeholder="Choose a technique")
    if chosen:
        technique = catalog.get(chosen)
        st.caption(technique.breadcrumb)
        st.header(technique.name)
        if technique.aliases:
            st.caption("Also known as: " + ", ".join(technique.aliases))
        st.write(technique.summary)
        m1, m2, m3 = st.columns(3)
        m1.markdown(f"**Stages:** {', '.join(technique.stages)}")
        m2.markdown(f"**Acts on:** {', '.join(technique.acts_on)}")
        m3.markdown(f"**Adoption:** {technique.adoption_cost}")
        if technique.results:
            st.subheader("Reported results")
            st.table([{k: r[k] for k in ("metric", "value", "setting")} for r in technique.results])
        if technique.libraries:
            st.markdown("**Open-source implementations:** " + ", ".join(technique.libraries))
        g1, g2 = st.columns(2)
        with g1:
            st.subheader("Relations")
            if catalog.related(chosen):
                st.plotly_chart(views.relation_graph(catalog, chosen), key="cat_graph")
            else:
                st.caption("The survey states no relation for this technique.")
        with g2:
            st.subheader("Often combined with")
            companions = catalog.often_combined_with(chosen)
            for other, shared in companions:
                st.markdown(f"- [{names[other]}](/catalog?id={other}) — {shared} shared links")
            if not companions:
                st.caption("No companion found through shared libraries or relations.")
        st.subheader("Citation")
        ref = technique.reference
        st.markdown(f"{', '.join(ref.authors[:6])}{' et al.' if len(ref.authors) > 6 else ''}. "
                    f"*{ref.title}*. {ref.venue} {ref.year_label or ''}")
        if ref.url:
            st.link_button("Open the paper", ref.url)
        st.code(to_bibtex(ref), language="bibtex")

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
    st.dataframe(views.framework_matrix(catalog), key="cat_t2")
