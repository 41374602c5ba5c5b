"""Plotly figures and tables for the catalog page (no streamlit here, so they are testable on their own)."""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd
import plotly.graph_objects as go

from catalog.core import Catalog, Technique
from common.text import escape_markdown  # noqa: F401  (re-exported for the catalog page)

_EDGE_COLOURS = {"builds_on": "#1f77b4", "improves": "#2ca02c", "compared_with": "#ff7f0e"}


def taxonomy_figure(techniques: list[Technique], kind: str = "sunburst") -> go.Figure:
    """A sunburst (or treemap) of the taxonomy sized by technique count; click a wedge to drill down."""
    counts: Counter[tuple[str, ...]] = Counter()
    for technique in techniques:
        for depth in range(1, len(technique.path) + 1):
            counts[technique.path[:depth]] += 1
    ids = [" > ".join(path) for path in counts]
    parents = [" > ".join(path[:-1]) for path in counts]
    labels = [path[-1] for path in counts]
    values = list(counts.values())
    trace_type = go.Treemap if kind == "treemap" else go.Sunburst
    figure = go.Figure(
        trace_type(ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
                   hovertemplate="<b>%{label}</b><br>%{value} techniques<extra></extra>", maxdepth=3)
    )
    figure.update_layout(margin=dict(t=10, l=10, r=10, b=10), height=520)
    return figure


def results_frame(techniques: list[Technique]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "open": f"?id={t.id}",
                "name": t.name,
                "category": " > ".join(t.path[1:]),
                "year": t.year,
                "stages": ", ".join(t.stages),
                "acts on": ", ".join(t.acts_on),
                "adoption": t.adoption_cost,
                "libraries": ", ".join(t.libraries),
                "id": t.id,
            }
            for t in techniques
        ],
        columns=["open", "name", "category", "year", "stages", "acts on", "adoption", "libraries", "id"],
    )


def relation_graph(catalog: Catalog, technique_id: str) -> go.Figure:
    """The technique in the centre, its related techniques on a circle, edges coloured by relation kind."""
    centre = catalog.get(technique_id)
    edges = [(kind, other) for kind, others in catalog.related(technique_id).items() for other in others]
    neighbours = list(dict.fromkeys(other for _, other in edges))
    positions = {centre.id: (0.0, 0.0)}
    for i, other in enumerate(neighbours):
        angle = 2 * math.pi * i / max(len(neighbours), 1)
        positions[other] = (math.cos(angle), math.sin(angle))
    figure = go.Figure()
    for kind, other in edges:
        base_kind = kind.replace(" (incoming)", "")
        (x0, y0), (x1, y1) = positions[centre.id], positions[other]
        figure.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", hoverinfo="skip", showlegend=False,
                                    line=dict(color=_EDGE_COLOURS.get(base_kind, "#999"), width=2)))
        figure.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2, text=kind.replace("_", " "), showarrow=False,
                              font=dict(size=10, color=_EDGE_COLOURS.get(base_kind, "#555")))
    names = {t.id: t.name for t in catalog.techniques}
    xs, ys = zip(*positions.values(), strict=True)
    figure.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers+text", text=[names.get(i, i) for i in positions], textposition="top center",
        marker=dict(size=[26] + [16] * len(neighbours), color=["#d62728"] + ["#636efa"] * len(neighbours)),
        hovertext=list(positions), hoverinfo="text", showlegend=False,
    ))
    figure.update_layout(height=360, margin=dict(t=10, l=10, r=10, b=10),
                         xaxis=dict(visible=False, range=[-1.6, 1.6]), yaxis=dict(visible=False, range=[-1.4, 1.4]))
    return figure


def timeline_figure(techniques: list[Technique]) -> go.Figure:
    """Techniques per year, stacked by category."""
    frame = pd.DataFrame([{"year": t.year, "category": t.category} for t in techniques])
    figure = go.Figure()
    if not frame.empty:
        table = frame.groupby(["year", "category"]).size().unstack(fill_value=0).sort_index()
        for category in table.columns:
            figure.add_trace(go.Bar(x=table.index.astype(str), y=table[category], name=category))
    figure.update_layout(barmode="stack", height=420, xaxis_title="year of the cited paper",
                         yaxis_title="techniques", margin=dict(t=10, l=10, r=10, b=10),
                         legend=dict(orientation="h", y=-0.25))
    return figure


def comparison_frame(techniques: list[Technique]) -> pd.DataFrame:
    rows = {
        "path": [t.breadcrumb for t in techniques],
        "year": [t.year for t in techniques],
        "stages": [", ".join(t.stages) for t in techniques],
        "acts on": [", ".join(t.acts_on) for t in techniques],
        "adoption cost": [t.adoption_cost for t in techniques],
        "libraries": [", ".join(t.libraries) or "—" for t in techniques],
        "reported results": ["; ".join(f"{r['metric']}: {r['value']}" for r in t.results) or "—" for t in techniques],
        "summary": [t.summary for t in techniques],
        "paper": [t.reference.title for t in techniques],
    }
    # all text, so the transposed frame has one dtype per column and converts to Arrow without fix-ups
    return pd.DataFrame(rows, index=[t.name for t in techniques]).astype(str).T


def pretraining_costs_frame(catalog: Catalog) -> pd.DataFrame:
    frame = pd.DataFrame(list(catalog.pretraining_costs))
    if not frame.empty:
        frame["accelerator_days"] = pd.to_numeric(frame["accelerator_days"], errors="coerce")
    return frame


def pretraining_costs_figure(frame: pd.DataFrame) -> go.Figure:
    """Accelerator-days for the Table 1 rows where the survey gives enough to compute them."""
    known = frame.dropna(subset=["accelerator_days"]).sort_values("accelerator_days")
    figure = go.Figure(go.Bar(
        x=known["accelerator_days"], y=known["model"], orientation="h",
        text=known["accelerators"], hovertemplate="%{y}: %{x:,.0f} accelerator-days<br>%{text}<extra></extra>",
    ))
    figure.update_layout(height=460, xaxis_title="accelerator-days (count × wall-clock days)",
                         margin=dict(t=10, l=10, r=10, b=10))
    return figure


def framework_matrix(catalog: Catalog) -> pd.DataFrame:
    """Table 2 as a framework × feature matrix of booleans, with the three stage columns first."""
    features = list(dict.fromkeys(f for fw in catalog.frameworks for f in fw.get("features", [])))
    rows = []
    for fw in catalog.frameworks:
        row = {"framework": fw["name"], "training": bool(fw.get("training")),
               "fine-tuning": bool(fw.get("fine_tuning")), "inference": bool(fw.get("inference"))}
        row.update({feature: feature in fw.get("features", []) for feature in features})
        rows.append(row)
    return pd.DataFrame(rows).set_index("framework") if rows else pd.DataFrame()
