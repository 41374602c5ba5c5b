"""Plotly figures, HTML snippets and table rows for the live-demo page (no streamlit, no torch)."""

from __future__ import annotations

import html

KEPT_STYLE = "color:inherit"
DROPPED_STYLE = "color:#9aa0a6;text-decoration:line-through;opacity:0.55"
DRAFT_STYLE = "background:#c8f7c5;color:#111;border-radius:3px"
TARGET_STYLE = "background:#ffe0b2;color:#111;border-radius:3px"


def _span(text: str, style: str, title: str = "") -> str:
    safe = html.escape(text).replace("\n", "↵<br>")
    tip = f' title="{html.escape(title)}"' if title else ""
    return f'<span style="{style}"{tip}>{safe}</span>'


def compression_html(pieces: list[str], keep: list[bool]) -> str:
    """The context with dropped tokens greyed out and struck through."""
    body = "".join(_span(p, KEPT_STYLE if k else DROPPED_STYLE) for p, k in zip(pieces, keep, strict=False))
    return f'<div style="line-height:1.7;font-family:monospace;white-space:pre-wrap">{body}</div>'


def speculative_html(tokens: list[str], from_draft: list[bool]) -> str:
    """Generated text with accepted draft tokens in green and target-produced tokens in orange."""
    body = "".join(_span(t, DRAFT_STYLE if d else TARGET_STYLE, "accepted from draft" if d else "from target")
                   for t, d in zip(tokens, from_draft, strict=False))
    legend = (_span(" accepted from draft ", DRAFT_STYLE) + " " + _span(" produced by the target ", TARGET_STYLE))
    return f'<div style="line-height:1.9;white-space:pre-wrap">{body}</div><div style="margin-top:6px">{legend}</div>'


def quant_table(result: dict) -> list[dict]:
    """One row per model variant, baseline first."""
    base = result["baseline"]
    rows = [_quant_row(base["method"] + " (baseline)", base, base)]
    rows += [_quant_row(name, m, base) for name, m in result["methods"].items()]
    return rows


def _quant_row(name: str, m: dict, base: dict) -> dict:
    return {
        "method": name,
        "weights MB": round(m["weight_bytes"] / 1e6, 1),
        "linear-layer MB": round(m["linear_weight_bytes"] / 1e6, 1),
        "perplexity": round(m["perplexity"], 2),
        "Δ perplexity %": round(100 * (m["perplexity"] / base["perplexity"] - 1), 1),
        "decode tok/s": round(m["decode_tokens_per_s"], 1),
        "speedup ×": round(m["decode_tokens_per_s"] / base["decode_tokens_per_s"], 2),
        "answer": m["answer"],
    }


def quant_bytes_figure(result: dict):
    import plotly.graph_objects as go

    rows = quant_table(result)
    fig = go.Figure(go.Bar(x=[r["method"] for r in rows], y=[r["weights MB"] for r in rows],
                           text=[r["weights MB"] for r in rows]))
    fig.update_layout(title="Bytes of the weights (MB, measured from the tensors)", yaxis_title="MB", height=320,
                      margin=dict(t=40, b=10))
    return fig


def layer_error_figure(result: dict):
    """Per-layer relative error ||W - Q(W)|| / ||W||, one line per method."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, m in result["methods"].items():
        rows = m.get("per_layer_error", [])
        fig.add_trace(go.Scatter(x=list(range(len(rows))), y=[r["relative_error"] for r in rows], mode="lines",
                                 name=name, text=[r["layer"] for r in rows],
                                 hovertemplate="%{text}<br>rel. error %{y:.4f}<extra>" + name + "</extra>"))
    fig.update_layout(title="Per-layer quantization error (relative Frobenius norm)", xaxis_title="Linear layer "
                      "(model order)", yaxis_title="relative error", yaxis_type="log", height=340,
                      margin=dict(t=40, b=10))
    return fig


def histogram_figure(explain: dict):
    """Histogram of one weight matrix with the quantization grid of the largest scale marked."""
    import plotly.graph_objects as go

    edges = explain["hist_edges"]
    centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=False)]
    fig = go.Figure(go.Bar(x=centers, y=explain["hist_counts"], name="weights"))
    q_max = 2 ** (explain["bits"] - 1) - 1
    step = explain["absmax"] / q_max
    for level in (-q_max, q_max):
        fig.add_vline(x=level * step, line_dash="dash", line_color="red")
    fig.update_layout(title=f"Weights of one matrix {tuple(explain['shape'])}; red = ±absmax clip range",
                      xaxis_title="weight value", yaxis_title="count", yaxis_type="log", height=320,
                      margin=dict(t=40, b=10), showlegend=False)
    return fig


def speed_figure(result: dict):
    import plotly.graph_objects as go

    names = ["plain greedy (ours)", "speculative (ours)"]
    values = [result.get("plain_tokens_per_s", 0.0), result["stats"]["tokens_per_s"]]
    if "transformers_assisted_tokens_per_s" in result:
        names.append("transformers assisted")
        values.append(result["transformers_assisted_tokens_per_s"])
    fig = go.Figure(go.Bar(x=names, y=values, text=[f"{v:.1f}" for v in values]))
    fig.update_layout(title="Tokens per second, measured in this run", yaxis_title="tokens/s", height=300,
                      margin=dict(t=40, b=10))
    return fig


def compression_eval_rows(methods: dict) -> list[dict]:
    return [{"method": name, "ratio": round(r["ratio"], 2), "quality kept": round(r["quality_kept"], 3),
             "compress s/item": round(r["seconds"], 3),
             "prefill s full": round(r["prefill_seconds_full"], 3),
             "prefill s compressed": round(r["prefill_seconds_compressed"], 3)} for name, r in methods.items()]


def history_figure(rows: list[dict]):
    """Decode tokens/s of quantization runs over time, one trace per method."""
    import plotly.graph_objects as go

    fig = go.Figure()
    by_method: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("kind") == "quantization" and r.get("metrics.decode_tokens_per_s") is not None:
            by_method.setdefault(str(r.get("settings.method")), []).append(r)
    for method, rs in by_method.items():
        fig.add_trace(go.Scatter(x=[r["created_at"] for r in rs], y=[r["metrics.decode_tokens_per_s"] for r in rs],
                                 mode="markers+lines", name=method))
    fig.update_layout(title="Quantization runs: decode tokens/s", yaxis_title="tokens/s", height=320,
                      margin=dict(t=40, b=10))
    return fig
