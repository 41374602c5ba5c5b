"""Plotly figures and display rows built from planner results (no streamlit here)."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from common.text import escape_markdown  # noqa: F401  (one escaper for every page's user text)

from .techniques import techniques

MEMORY_COLORS = {"weights": "#4C78A8", "kv_cache": "#F58518", "activations": "#54A24B", "runtime": "#B279A2",
                 "gradients": "#E45756", "optimizer": "#72B7B2", "optimizer_step": "#9D755D"}


def card_markdown(plan: dict) -> str:
    """Markdown for the recommended-stack card: each technique linked to its catalog entry, with its reason."""
    table = techniques()
    lines = []
    reasons = list(plan.get("reasons", []))
    for i, tid in enumerate(plan["stack"]):
        t = table[tid]
        link = f"[{t.name}](/catalog?id={t.catalog_id})" if t.catalog_id else f"**{t.name}**"
        why = reasons[i].split(": ", 1)[-1] if i < len(reasons) else ""
        lines.append(f"- {link}: {why}")
    for extra in reasons[len(plan["stack"]):]:
        lines.append(f"- {extra}")
    return "\n".join(lines)


def memory_bar(breakdown: dict[str, float], capacity_gib: float, title: str = "Memory per GPU") -> go.Figure:
    """Stacked horizontal bar of memory components against the GPU's usable capacity."""
    fig = go.Figure()
    for name, gib in breakdown.items():
        if gib <= 0:
            continue
        fig.add_trace(go.Bar(y=["per GPU"], x=[gib], name=name.replace("_", " "), orientation="h",
                             marker_color=MEMORY_COLORS.get(name), hovertemplate=f"{name}: %{{x:.2f}} GiB"))
    fig.add_vline(x=capacity_gib, line_dash="dash", line_color="red",
                  annotation_text=f"capacity {capacity_gib:.1f} GiB", annotation_position="top")
    fig.update_layout(barmode="stack", height=220, title=title, xaxis_title="GiB", margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", y=-0.4))
    return fig


def latency_bar(breakdown_ms: dict[str, float], ttft_ms: float | None = None) -> go.Figure:
    """Per-token decode time split into weight reads, KV reads, communication, offload, other."""
    fig = go.Figure()
    for name, ms in breakdown_ms.items():
        if ms <= 1e-6:
            continue
        fig.add_trace(go.Bar(y=["decode / token"], x=[ms], name=name.replace("_", " "), orientation="h",
                             hovertemplate=f"{name}: %{{x:.2f}} ms"))
    title = "Decode latency per token" + (f" (TTFT {ttft_ms:.0f} ms)" if ttft_ms else "")
    fig.update_layout(barmode="stack", height=200, title=title, xaxis_title="ms",
                      margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.5))
    return fig


def pareto_scatter(plans: list[dict], latency_budget_ms: float | None, capacity_gib: float) -> go.Figure:
    """Latency x memory scatter coloured by quality risk, with the budget lines.

    The x range spans the plans (and the budget, when it is within a decade of them), so one far-off budget or
    stack cannot stretch the axis; the two budget labels sit at opposite corners so they never overlap.
    """
    pts = [p for p in plans if p.get("decode_ms_per_token") and math.isfinite(p["decode_ms_per_token"])]
    fig = go.Figure(go.Scatter(
        x=[p["decode_ms_per_token"] for p in pts], y=[p["per_gpu_memory_gib"] for p in pts], mode="markers",
        marker=dict(size=10, color=[p["quality_risk"] for p in pts], colorscale="Viridis", showscale=True,
                    colorbar=dict(title="quality risk")),
        text=[" + ".join(p["stack"]) + f" ({p['engine']}, {p['num_gpus']} GPU)" for p in pts],
        hovertemplate="%{text}<br>%{x:.1f} ms/token, %{y:.1f} GiB<extra></extra>"))
    xs = [p["decode_ms_per_token"] for p in pts] or [1.0]
    low, high = min(xs), max(xs)
    if latency_budget_ms and low / 10 <= latency_budget_ms <= high * 10:
        low, high = min(low, latency_budget_ms), max(high, latency_budget_ms)
        fig.add_vline(x=latency_budget_ms, line_dash="dash", line_color="red", annotation_text="latency budget",
                      annotation_position="top left")
    fig.add_hline(y=capacity_gib, line_dash="dash", line_color="orange", annotation_text="GPU memory",
                  annotation_position="bottom right")
    fig.update_layout(title="Pareto set: latency x memory x quality risk", xaxis_title="decode ms/token (log)",
                      yaxis_title="GiB per GPU", xaxis_type="log", height=420, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis_range=[math.log10(low) - 0.1, math.log10(high) + 0.1])
    return fig


def alternatives_rows(plans: list[dict]) -> list[dict]:
    """One flat row per plan for a table."""
    rows = []
    for i, p in enumerate(plans):
        rows.append({"#": i + 1, "stack": " + ".join(p["stack"]), "engine": p["engine"], "GPUs": p["num_gpus"],
                     "GiB/GPU": p["per_gpu_memory_gib"], "ms/token": _cell(p["decode_ms_per_token"]),
                     "TTFT ms": _cell(p["ttft_ms"]), "step s": _cell(p.get("step_time_s")),
                     "quality risk": p["quality_risk"],
                     "fits": p["fits"], "meets latency": p["meets_latency"], "Pareto": p["pareto"]})
    return rows


def compare_rows(a: dict, b: dict) -> list[dict]:
    """Side-by-side 'what if' rows for two plans."""
    keys = [("stack", lambda p: " + ".join(p["stack"])), ("engine", lambda p: p["engine"]),
            ("GPUs", lambda p: p["num_gpus"]), ("GiB per GPU", lambda p: p["per_gpu_memory_gib"]),
            ("decode ms/token", lambda p: p["decode_ms_per_token"]), ("tokens/s", lambda p: p["decode_tokens_per_s"]),
            ("TTFT ms", lambda p: p["ttft_ms"]), ("quality risk", lambda p: p["quality_risk"]),
            ("fits", lambda p: p["fits"]), ("meets latency", lambda p: p["meets_latency"])]
    return [{"": name, "A": _cell(f(a)), "B": _cell(f(b))} for name, f in keys]


def _cell(value) -> str:
    """A table cell: '—' for what does not apply, rounded numbers, yes/no for flags."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)




def error_table(family_report: dict) -> list[dict]:
    """Rows of held-out median / p90 absolute % error per engine and per precision (kernel family)."""
    rows = []
    for label, key in (("engine", "per_engine"), ("precision", "per_precision")):
        for name, summary in (family_report.get(key) or {}).items():
            rows.append({"by": label, "group": name, "rows": summary.get("n", 0),
                         "median abs % error": summary.get("median_abs_pct_error"),
                         "p90 abs % error": summary.get("p90_abs_pct_error")})
    return rows


def saturated_note(est, report: dict | None = None) -> str:
    """One sentence on the saturated-server throughput of an estimate (docs/cost_model.md §3.8), or '' when the
    engine has none: output tokens/s when requests never run out, with the concurrent sequences it assumes, and
    (given the calibration report) the held-out median error this estimate has shown on published servers."""
    tps, seqs = getattr(est, "saturated_throughput_tokens_per_s", None), getattr(est, "saturated_sequences", None)
    if tps is None or seqs is None:
        return ""
    held = ((report or {}).get("throughput") or {}).get("calibrated_loso") or {}
    accuracy = (f" (uncertain: against {held['n']} published server measurements held out of the fit its median "
                f"error is {held['median_abs_pct_error']}%)") if held.get("n") else ""
    return (f" A saturated server (requests never run out) would reach about {tps:,.0f} output tokens/s with "
            f"{seqs:,} sequences in flight{accuracy}.")

