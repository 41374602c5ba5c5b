"""Plotly figures, token markdown and table rows for the live-demo page (no streamlit, no torch)."""

from __future__ import annotations

from common.text import escape_markdown  # the one escaper for user text in markdown

# Streamlit markdown directives (https://docs.streamlit.io/develop/api-reference/text/st.markdown).
DROPPED = "gray"
FROM_DRAFT = "green-background"
FROM_TARGET = "orange-background"
NEWLINE_MARK = "↵"  # shown where a token holds a line break, followed by a real (hard) line break
_NBSP = "\u00a0"  # keeps a run of spaces, or a space at the start of a line, visible
_HARD_BREAK = "\\\n"  # CommonMark: a backslash at the end of a line
# Streamlit's directive parser gives up on a label with more than 999 escaped brackets/backslashes.
_MAX_ESCAPES_PER_LABEL = 500


def compression_markdown(pieces: list[str], keep: list[bool]) -> str:
    """The context with dropped tokens in grey, as inert Streamlit markdown, and a legend."""
    body = tokens_markdown(pieces, [None if k else DROPPED for k in keep])
    return f"{body}\n\nLegend: kept tokens in normal text, :{DROPPED}[dropped tokens in grey]."


def speculative_markdown(tokens: list[str], from_draft: list[bool]) -> str:
    """Generated text with tokens accepted from the draft and tokens produced by the target marked apart."""
    body = tokens_markdown(tokens, [FROM_DRAFT if d else FROM_TARGET for d in from_draft])
    return f"{body}\n\nLegend: :{FROM_DRAFT}[accepted from draft] :{FROM_TARGET}[produced by the target]"


def tokens_markdown(tokens: list[str], directives: list[str | None]) -> str:
    """Each token escaped and wrapped in its Streamlit directive (None = plain), whitespace kept visible.

    Every ASCII punctuation mark of a token is backslash-escaped, so no link, emphasis, HTML, LaTeX, emoji or
    colour directive in it survives; a newline shows as ↵ plus a line break, and no line is blank or indented.
    """
    out: list[str] = []
    after_space = True  # a space at the start of a line must be a non-breaking one
    for directive, text in _runs(tokens, directives):
        if text == "\n":
            out.append(_wrap(NEWLINE_MARK, directive) + _HARD_BREAK)
            after_space = True
            continue
        for chunk in _label_chunks(text):
            escaped, after_space = _escape_line(chunk, after_space)
            out.append(_wrap(escaped, directive))
    # a hard break at the end of a paragraph would show as a literal backslash
    return "".join(out).removesuffix(_HARD_BREAK)


def _runs(tokens: list[str], directives: list[str | None]) -> list[tuple[str | None, str]]:
    """Consecutive tokens with the same directive joined; every newline is a run of its own."""
    runs: list[tuple[str | None, str]] = []
    for token, directive in zip(tokens, directives, strict=False):
        for number, line in enumerate(_normalise_whitespace(token).split("\n")):
            if number:
                runs.append((directive, "\n"))
            if not line:
                continue
            if runs and runs[-1][0] == directive and runs[-1][1] != "\n":
                runs[-1] = (directive, runs[-1][1] + line)
            else:
                runs.append((directive, line))
    return runs


def _normalise_whitespace(text: str) -> str:
    """Line breaks become \\n, a tab four spaces, any other whitespace or control character one space."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return "".join(c if c == "\n" or not (c.isspace() or ord(c) < 32) else " " for c in text)


def _label_chunks(text: str):
    """Pieces of text with at most _MAX_ESCAPES_PER_LABEL brackets and backslashes each."""
    start, count = 0, 0
    for i, char in enumerate(text):
        if char in "[]\\":
            count += 1
            if count > _MAX_ESCAPES_PER_LABEL:
                yield text[start:i]
                start, count = i, 1
    yield text[start:]


def _escape_line(text: str, after_space: bool) -> tuple[str, bool]:
    """One line of text escaped; repeated and line-leading spaces become non-breaking so they stay visible."""
    out = []
    for char in text:
        if char == " ":
            out.append(_NBSP if after_space else " ")
            after_space = True
        else:
            out.append(escape_markdown(char))
            after_space = False
    return "".join(out), after_space


def _wrap(escaped: str, directive: str | None) -> str:
    return f":{directive}[{escaped}]" if directive else escaped


def quant_table(result) -> list[dict]:
    """One row per model variant of a reports.QuantizationReport, baseline first."""
    base = result.baseline
    rows = [_quant_row(base["method"] + " (baseline)", base, base)]
    rows += [_quant_row(name, m, base) for name, m in result.methods.items() if "error" not in m]
    return rows


def _quant_row(name: str, m: dict, base: dict) -> dict:
    row = {
        "method": name,
        "weights MB": round(m["weight_bytes"] / 1e6, 1),
        "linear-layer MB": round(m["linear_weight_bytes"] / 1e6, 1),
        "perplexity": round(m["perplexity"], 2),
        "Δ perplexity %": round(100 * (m["perplexity"] / base["perplexity"] - 1), 1),
    }
    if "decode_perplexity" in base:  # measured when asked for; only dynamic methods have their own value
        ppl = m.get("decode_perplexity")
        row["Δ decode perplexity %"] = round(100 * (ppl / base["decode_perplexity"] - 1), 1) if ppl else None
    row.update({
        "decode tok/s (median)": round(m["decode_tokens_per_s"], 1),
        "min–max tok/s": f"{m.get('decode_tokens_per_s_min', m['decode_tokens_per_s']):.1f}–"
                         f"{m.get('decode_tokens_per_s_max', m['decode_tokens_per_s']):.1f}",
        "runs": m.get("timing_runs", 1),
        "speedup ×": round(m["decode_tokens_per_s"] / base["decode_tokens_per_s"], 2),
        "decode path": m.get("decode_path", "eager"),
        "compile s": round(m.get("compile_seconds", 0.0), 1),
        "answer": m["answer"],
    })
    return row


def quant_bytes_figure(result):
    import plotly.graph_objects as go

    rows = quant_table(result)
    fig = go.Figure(go.Bar(x=[r["method"] for r in rows], y=[r["weights MB"] for r in rows],
                           text=[r["weights MB"] for r in rows]))
    fig.update_layout(title="Bytes of the weights (MB, measured from the tensors)", yaxis_title="MB", height=320,
                      margin=dict(t=40, b=10))
    return fig


def layer_error_figure(result):
    """Per-layer relative error ||W - Q(W)|| / ||W||, one line per method."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, m in result.methods.items():
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


def speed_figure(result):
    """Median tokens/s of a reports.SpeculativeReport's runs, with min-max error bars."""
    import plotly.graph_objects as go

    labels = {"plain": "plain greedy (ours)", "speculative": "speculative (ours)",
              "transformers": "transformers generate" + ("" if result.drafter == "prompt-lookup" else " (assisted)")}
    names = [n for n in ("plain", "speculative", "transformers") if n in result.timings]
    med = [result.timings[n]["median"] for n in names]
    fig = go.Figure(go.Bar(x=[labels[n] for n in names], y=med, text=[f"{v:.1f}" for v in med],
                           error_y=dict(type="data", symmetric=False,
                                        array=[result.timings[n]["max"] - m for n, m in zip(names, med, strict=True)],
                                        arrayminus=[m - result.timings[n]["min"]
                                                    for n, m in zip(names, med, strict=True)])))
    runs = result.timings["speculative"]["n"]
    fig.update_layout(title=f"Tokens per second, median of {runs} run(s) in this run (bars: min–max)",
                      yaxis_title="tokens/s", height=300, margin=dict(t=40, b=10))
    return fig


def speculative_metrics(result) -> list[tuple[str, str]]:
    """(label, value) of the four headline numbers of a speculative run."""
    s = result.stats
    identical = {True: "yes", False: "NO", None: "n/a (sampling)"}[result.identical_to_greedy]
    return [("Acceptance rate", f"{100 * s['acceptance_rate']:.0f}%"),
            ("Mean accepted length", f"{s['mean_accepted_len']:.2f}"),
            ("Target passes / token", f"{s['target_calls_per_token']:.2f}"),
            ("Identical to greedy", identical)]


def compression_metrics(result) -> list[tuple[str, str, str | None]]:
    """(label, value, delta) of a compression run: ratio, prefill time saved and (when known) quality kept."""
    out = [("Compression ratio", f"{result.ratio:.2f}×",
            f"{result.original_tokens} → {result.compressed_tokens} tokens"),
           ("Prefill time saved", f"{1000 * (result.prefill_seconds_full - result.prefill_seconds_compressed):.1f} ms",
            None)]
    if result.quality_kept is not None:
        out.append(("Quality kept (answer probability)", f"{100 * result.quality_kept:.0f}%", None))
    return out


def explainer_metrics(explain: dict) -> list[tuple[str, str]]:
    """(label, value) of the absmax explainer: relative error, SQNR and levels used."""
    return [("Relative error", f"{explain['relative_error']:.4f}"), ("SQNR", f"{explain['sqnr_db']:.1f} dB"),
            ("Levels used", f"{explain['levels_used']} of {explain['levels_available']}")]


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


def sweep_rows(report) -> list[dict]:
    """Table rows of a reports.SweepReport: tokens/s (median, min-max), achieved GB/s and % of measured peak."""
    return [{"method": r["method"], "batch": r["batch"], "error": r["error"]} if "error" in r else
            {"method": r["method"], "batch": r["batch"], "tok/s (median)": round(r["tokens_per_s"], 1),
             "min–max tok/s": f"{r['tokens_per_s_min']:.1f}–{r['tokens_per_s_max']:.1f}",
             "weights GB/s": round(r["weights_gbps"], 2), "weights + KV GB/s": round(r["achieved_gbps"], 2),
             "% of peak": round(r["pct_of_peak"], 2)}
            for r in report.rows]


def sweep_figure(report, predicted: dict | None = None):
    """Measured decode tokens/s against batch (log axes), one line per method; dashed: predicted (method, batch)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    methods = dict.fromkeys(r["method"] for r in report.rows if "error" not in r)
    for method in methods:
        rows = [r for r in report.rows if r["method"] == method and "error" not in r]
        fig.add_trace(go.Scatter(x=[r["batch"] for r in rows], y=[r["tokens_per_s"] for r in rows],
                                 mode="lines+markers", name=f"{method} (measured)",
                                 customdata=[[r["achieved_gbps"], r["pct_of_peak"]] for r in rows],
                                 hovertemplate="batch %{x}: %{y:.1f} tok/s, %{customdata[0]:.1f} GB/s "
                                               "(%{customdata[1]:.1f}% of peak)<extra></extra>"))
        pred = [(r["batch"], predicted[(method, r["batch"])]) for r in rows if (method, r["batch"]) in (predicted or {})]
        if pred:
            fig.add_trace(go.Scatter(x=[b for b, _ in pred], y=[v for _, v in pred], mode="lines",
                                     line=dict(dash="dash"), name=f"{method} (recommender prediction)"))
    fig.update_layout(title=f"Decode tokens/s against batch ({report.decode_path} path; peak "
                            f"{report.peak_gbps:.0f} GB/s measured)", xaxis_title="batch", yaxis_title="tokens/s",
                      xaxis_type="log", yaxis_type="log", height=360, margin=dict(t=40, b=10))
    return fig
