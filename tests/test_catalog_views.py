"""The catalog's figures: integer years, legends clear of axis titles, readable relation labels."""

from __future__ import annotations

import math

from catalog.api import load_catalog, views


def test_timeline_has_whole_years_and_its_legend_above_the_plot():
    catalog = load_catalog()
    one_year = [t for t in catalog.techniques if t.year == 2023][:5]
    figure = views.timeline_figure(one_year)
    layout = figure.layout
    assert layout.xaxis.dtick == 1 and layout.xaxis.tickformat == "d" and layout.xaxis.tickmode == "linear"
    assert layout.legend.y >= 1 and layout.legend.yanchor == "bottom"     # above the plot, away from the x title
    assert all(float(x).is_integer() for trace in figure.data for x in trace.x)


def test_relation_graph_labels_are_readable_and_apart():
    catalog = load_catalog()
    busiest = max(catalog.techniques, key=lambda t: sum(len(v) for v in catalog.related(t.id).values()))
    figure = views.relation_graph(catalog, busiest.id)
    assert not figure.layout.annotations            # relation kinds are in the legend, not on every edge
    nodes = [trace for trace in figure.data if trace.mode == "markers+text"]
    assert all(trace.textfont.size >= 13 for trace in nodes)
    points = [(trace.x[0], trace.y[0]) for trace in nodes]
    closest = min(math.dist(a, b) for i, a in enumerate(points) for b in points[i + 1:])
    assert closest > 0.3
    kinds = {trace.name for trace in figure.data if trace.showlegend}
    assert kinds and all(trace.mode == "lines" for trace in figure.data if trace.showlegend)


def test_whats_new_and_engine_tables():
    catalog = load_catalog()
    frame = views.whats_new_frame(list(catalog.techniques))
    assert len(frame) == sum(t.since_survey for t in catalog.techniques)
    engines = views.engines_frame(catalog)
    assert engines.loc["vLLM", "paged KV cache"] and not engines.loc["llama.cpp", "paged KV cache"]
    assert all(url.startswith("https://") for url in engines["docs"])
    assert "maintenance" in engines.loc["Text Generation Inference (TGI)", "status"]


def test_whats_new_timeline_with_entries_added_since_the_survey(tmp_path):
    from catalog.api import SearchIndex, ViewState, select
    from catalog.core import load_catalog_from
    from tests.test_catalog_data import _tmp_data

    catalog = load_catalog_from(_tmp_data(tmp_path, load_catalog()))
    frame = views.whats_new_frame(list(catalog.techniques))
    assert list(frame["id"]) == ["eagle"] and frame.loc[0, "paper"] == "https://arxiv.org/abs/2401.15077"
    figure = views.whats_new_figure(list(catalog.techniques))
    assert figure.layout.xaxis.dtick == 1 and sum(len(trace.x) for trace in figure.data) == 1
    chosen = select(catalog, SearchIndex(catalog), ViewState(since_survey=True)).techniques
    assert [t.id for t in chosen] == ["eagle"]
    found = select(catalog, SearchIndex(catalog), ViewState(query="Yuhui Li speculative sampling")).techniques
    assert found[0].id == "eagle"   # authors and title of a new-style entry are searchable
