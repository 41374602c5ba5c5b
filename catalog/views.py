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


RESULT_COLUMNS = ["name", "year", "category", "adoption", "stages", "acts on", "venue", "paper", "code", "engines",
                  "new", "path", "id"]


def results_frame(techniques: list[Technique]) -> pd.DataFrame:
    """One row per technique, the columns a reader scans first on the left (name, year, leaf category, cost)."""
    return pd.DataFrame(
        [
            {
                "name": t.name,
                "year": t.year,
                "category": t.path[-1],
                "adoption": t.adoption_cost,
                "stages": ", ".join(t.stages),
                "acts on": ", ".join(t.acts_on),
                "venue": t.venue or "",
                "paper": t.paper_link or "",
                "code": t.code_url or "",
                "engines": ", ".join(t.engines),
                "new": "since survey" if t.since_survey else "",
                "path": " > ".join(t.path[1:]),
                "id": t.id,
            }
            for t in techniques
        ],
        columns=RESULT_COLUMNS,
    )


def _label_position(x: float, y: float) -> str:
    """Put a node's label on the side away from the centre, so labels around the circle do not collide."""
    if abs(x) > 0.3:   # on the sides: label beside the node, so neighbouring labels stack vertically
        return "middle right" if x > 0 else "middle left"
    return "top center" if y >= 0 else "bottom center"


def relation_graph(catalog: Catalog, technique_id: str) -> go.Figure:
    """The technique in the centre, its related techniques on one or two rings, edges coloured by relation kind.

    Relation kinds appear once each in the legend instead of as labels on every edge, and each label sits on
    the outer side of its node, so labels stay readable and apart.
    """
    centre = catalog.get(technique_id)
    edges = [(kind, other) for kind, others in catalog.related(technique_id).items() for other in others]
    neighbours = list(dict.fromkeys(other for _, other in edges))
    positions = {centre.id: (0.0, 0.0)}
    rings = [neighbours[:10], neighbours[10:]] if len(neighbours) > 10 else [neighbours]
    for ring, members in enumerate(rings):
        radius = 1.0 + 0.6 * ring
        for i, other in enumerate(members):
            angle = 2 * math.pi * i / max(len(members), 1) + (math.pi / max(len(members), 1)) * ring + math.pi / 2
            positions[other] = (radius * math.cos(angle), radius * math.sin(angle))
    figure = go.Figure()
    shown_kinds: set[str] = set()
    for kind, other in edges:
        label = kind.replace("_", " ")
        colour = _EDGE_COLOURS.get(kind.replace(" (incoming)", ""), "#999")
        (x0, y0), (x1, y1) = positions[centre.id], positions[other]
        figure.add_trace(go.Scatter(
            x=[x0, x1], y=[y0, y1], mode="lines", hoverinfo="skip", name=label, legendgroup=label,
            showlegend=label not in shown_kinds,
            line=dict(color=colour, width=2, dash="dot" if "incoming" in kind else "solid")))
        shown_kinds.add(label)
    names = {t.id: t.name for t in catalog.techniques}
    for node, (x, y) in positions.items():
        is_centre = node == centre.id
        figure.add_trace(go.Scatter(
            x=[x], y=[y], mode="markers+text", text=[names.get(node, node)], showlegend=False,
            textposition="bottom center" if is_centre else _label_position(x, y),
            textfont=dict(size=15 if is_centre else 13), hovertext=[node], hoverinfo="text",
            marker=dict(size=26 if is_centre else 16, color="#d62728" if is_centre else "#636efa")))
    extent = 1.0 + 0.6 * (len(rings) - 1)
    figure.update_layout(
        height=420 + 60 * (len(rings) - 1), margin=dict(t=40, l=10, r=10, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, title_text="relation"),
        xaxis=dict(visible=False, range=[-extent - 1.1, extent + 1.1]),
        yaxis=dict(visible=False, range=[-extent - 0.45, extent + 0.45]))
    return figure


def timeline_figure(techniques: list[Technique]) -> go.Figure:
    """Techniques per year, stacked by category; whole years on the axis, legend above the plot."""
    frame = pd.DataFrame([{"year": t.year, "category": t.category} for t in techniques])
    figure = go.Figure()
    if not frame.empty:
        table = frame.groupby(["year", "category"]).size().unstack(fill_value=0).sort_index()
        for category in table.columns:
            figure.add_trace(go.Bar(x=table.index.astype(int), y=table[category], name=category))
    figure.update_layout(
        barmode="stack", height=480, yaxis_title="techniques", margin=dict(t=110, l=10, r=10, b=50),
        xaxis=dict(title=dict(text="year of the cited paper", standoff=12), tickmode="linear", dtick=1,
                   tickformat="d"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return figure


def whats_new_frame(techniques: list[Technique]) -> pd.DataFrame:
    """The since-the-survey entries, newest first, with their branch, venue and links."""
    rows = [{"year": t.year, "name": t.name, "branch": t.category, "venue": t.venue or "",
             "paper": t.paper_link or "", "code": t.code_url or "", "engines": ", ".join(t.engines), "id": t.id}
            for t in techniques if t.since_survey]
    frame = pd.DataFrame(rows, columns=["year", "name", "branch", "venue", "paper", "code", "engines", "id"])
    return frame.sort_values(["year", "branch", "name"], ascending=[False, True, True]).reset_index(drop=True)


def whats_new_figure(techniques: list[Technique]) -> go.Figure:
    """A timeline of since-the-survey entries: one marker per technique, years across, branches down."""
    frame = whats_new_frame(techniques)
    figure = go.Figure()
    for branch, group in frame.groupby("branch"):
        offsets = group.groupby("year").cumcount()   # spread same-year entries of a branch apart
        figure.add_trace(go.Scatter(
            x=group["year"] + (offsets % 5 - 2) * 0.12, y=[branch] * len(group), mode="markers", name=branch,
            text=group["name"], hovertemplate="<b>%{text}</b><br>" + str(branch) + "<extra></extra>",
            marker=dict(size=11), showlegend=False))
    figure.update_layout(
        height=max(260, 40 * frame["branch"].nunique() + 120), margin=dict(t=20, l=10, r=10, b=50),
        xaxis=dict(title="year", tickmode="linear", dtick=1, tickformat="d"), yaxis=dict(title=""))
    return figure


def engines_frame(catalog: Catalog) -> pd.DataFrame:
    """Today's inference engines × features (booleans), with kind, quantization formats, status and docs link."""
    from catalog.schema import ENGINE_FEATURES

    rows = []
    for engine in catalog.engines:
        row = {"engine": engine["name"], "kind": engine.get("kind", ""), "docs": engine["docs_url"]}
        row.update({label: key in engine["features"] for key, label in ENGINE_FEATURES.items()})
        row["quantization formats"] = ", ".join(engine.get("quantization") or [])
        row["status"] = engine.get("status", "maintained")
        rows.append(row)
    return pd.DataFrame(rows).set_index("engine") if rows else pd.DataFrame()


def comparison_frame(techniques: list[Technique]) -> pd.DataFrame:
    rows = {
        "path": [t.breadcrumb for t in techniques],
        "year": [t.year for t in techniques],
        "stages": [", ".join(t.stages) for t in techniques],
        "acts on": [", ".join(t.acts_on) for t in techniques],
        "adoption cost": [t.adoption_cost for t in techniques],
        "libraries": [", ".join(t.libraries) or "—" for t in techniques],
        "reported results": ["; ".join(f"{r['metric']}: {r['value']}" for r in t.results) or "—" for t in techniques],
        "engines": [", ".join(t.engines) or "—" for t in techniques],
        "summary": [t.summary for t in techniques],
        "paper": [t.reference.title for t in techniques],
        "venue": [t.venue or t.reference.venue or "—" for t in techniques],
        "paper link": [t.paper_link or "—" for t in techniques],
        "code": [t.code_url or "—" for t in techniques],
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
