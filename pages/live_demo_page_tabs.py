"""The live demo's tabs (imported by live_demo_page.py, not a page): read widgets, make one call, render.

Heavy runs go through live_demo.api's process-wide gate with a progress bar that moves method by method and
token by token; errors become st.error, never a traceback. Widget keys start with `live_`.
"""

from __future__ import annotations

import gc

import streamlit as st

from common.history import HistoryError, RunHistory, flatten_rows
from live_demo import api
from live_demo.api import views


@st.cache_resource(show_spinner="Loading the model (the first run converts the embedded GGUF, about 40 s)…")
def load(model_id: str, device: str):
    api.apply_live_threads()  # leave a core for serving pages while a run is going (ELLM_LIVE_THREADS overrides)
    return api.load_model(model_id or None, device)


@st.cache_resource(show_spinner="Loading the draft model…")
def load_draft(draft_id: str, model_id: str, device: str):
    return api.load_draft(draft_id, load(model_id, device))


def heavy(label: str, fn, *args, progress: bool = True, **kwargs):
    """Run fn under the gate; the bar follows fn's progress(fraction, message) calls. Errors become st.error."""
    bar = st.progress(0.0, text=f"{label}…")
    if progress:
        kwargs["progress"] = lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=f"{label}: {m}")
    try:
        with api.GATE.run(label, on_queued=lambda s: st.info(f"Queued behind another run ({s['running']})…")) \
                as stop, api.background_priority():
            out = fn(*args, stop_event=stop, **kwargs)
        bar.progress(1.0, text=f"{label}: done")
        return out
    except (api.LiveDemoError, ValueError, HistoryError) as exc:
        bar.empty()
        st.error(str(exc))
        return None
    finally:
        gc.collect()  # a heavy run leaves model copies in reference cycles (the server skips the full collection)


def record(report) -> None:
    try:
        report.record(RunHistory())
    except HistoryError as exc:
        st.warning(f"Result shown but not saved: {exc}")


def quantization_tab(lm) -> None:
    st.markdown("Weight quantization of a **copy** of the model ([LLM.int8](/catalog?id=llm-int8), "
                "[GPTQ](/catalog?id=gptq), [AWQ](/catalog?id=awq), [QLoRA](/catalog?id=qlora)).")
    offered = api.quantization_methods(lm.device)
    methods = st.multiselect("Methods", offered, default=offered[:3], key="live_quant_methods")
    c1, c2 = st.columns(2)
    new_tokens = c1.slider("New tokens to time", 8, 128, 32, key="live_quant_new_tokens")
    repeats = c2.slider("Timed runs per method (median and range shown)", 1, 5, 3, key="live_quant_repeats")
    decode_ppl = st.checkbox("Also measure decode perplexity of the dynamic int8 methods (slow: one token per "
                             "call)", key="live_quant_decode_ppl", help="Dynamic int8 picks one activation scale "
                             "per call; decoding quantizes each new token on its own, so its error can be lower.")
    if st.button("Run quantization", key="live_quant_run", type="primary"):
        res = heavy("Quantization", api.run_quantization, lm, methods, 512, new_tokens, repeats=repeats,
                    decode_ppl=decode_ppl)
        if res:
            st.session_state["live_quant_result"] = res
            record(res)
    res = st.session_state.get("live_quant_result")
    if res:
        st.dataframe(views.quant_table(res), hide_index=True, key="live_quant_table")
        st.plotly_chart(views.quant_bytes_figure(res), key="live_quant_bytes")
        st.plotly_chart(views.layer_error_figure(res), key="live_quant_layers")
    st.subheader("Explainer: absmax quantization of one real weight matrix")
    st.latex(r"X^{\text{int}} = \mathrm{Round}\left(\frac{q_{\max}}{\mathrm{absmax}(X)}\,X\right),\quad "
             r"q_{\max} = 2^{b-1}-1 \quad\text{(survey Eq. 1)}")
    c1, c2, c3 = st.columns(3)
    layer = c1.selectbox("Weight matrix", api.linear_layer_names(lm), key="live_absmax_layer")
    bits = c2.slider("Bits", 2, 8, 4, key="live_absmax_bits")
    gran = c3.radio("One scale per", api.GRANULARITIES, index=2, key="live_absmax_gran", horizontal=True)
    try:
        ex = api.absmax_explainer(lm, layer, bits, gran, 32)
        st.plotly_chart(views.histogram_figure(ex), key="live_absmax_hist")
        for col, (label, value) in zip(st.columns(3), views.explainer_metrics(ex), strict=True):
            col.metric(label, value)
    except ValueError as exc:
        st.error(str(exc))


def compression_tab(lm) -> None:
    st.markdown("LLMLingua-style compression by the small LM itself ([LLMLingua](/catalog?id=llmlingua), "
                "[LongLLMLingua](/catalog?id=longllmlingua)); instruction and question are kept verbatim.")
    qa = api.load_qa_set()
    item = st.selectbox("QA item", qa["items"], format_func=lambda i: f"{i['id']}: {i['question']}",
                        key="live_comp_item")
    context = st.text_area("Context", item["context"], height=150, key=f"live_comp_context_{item['id']}")
    question = st.text_input("Question", item["question"], key=f"live_comp_question_{item['id']}")
    c1, c2 = st.columns(2)
    method = c1.selectbox("Method", api.COMPRESSION_PRESETS, key="live_comp_method",
                          help="ours = question-aware (LongLLMLingua idea)")
    ratio = c2.slider("Target compression ratio", 1.0, 5.0, 2.0, 0.25, key="live_comp_ratio")
    if st.button("Compress", key="live_comp_run", type="primary"):
        ref = item["answer"] if context == item["context"] and question == item["question"] else None
        out = heavy("Compression", api.run_compression, lm, context, question, qa["instruction"], method, ratio,
                    ref, item_id=item["id"], progress=False)
        if out:
            st.session_state["live_comp_result"] = out
            record(out)
    out = st.session_state.get("live_comp_result")
    if out:
        st.markdown(views.compression_markdown(out.result.pieces, out.result.keep))
        for col, (label, value, delta) in zip(st.columns(3), views.compression_metrics(out), strict=False):
            col.metric(label, value, delta, delta_color="off")
    limit = st.slider("QA items to evaluate", 2, len(qa["items"]), 6, key="live_comp_eval_items")
    if st.button("Evaluate on the QA set (ours vs random drop vs llmlingua)", key="live_comp_eval"):
        ev = heavy("QA evaluation", api.run_compression_eval, lm, ratio, limit)
        if ev:
            st.session_state["live_comp_eval_rows"] = views.compression_eval_rows(ev.methods)
            record(ev)
    if st.session_state.get("live_comp_eval_rows"):
        st.dataframe(st.session_state["live_comp_eval_rows"], hide_index=True, key="live_comp_eval_table")


def history_tab() -> None:
    try:
        history = RunHistory()
        rows = flatten_rows(history.rows())
        st.caption(f"{len(rows)} runs stored in {history.path}")
        if rows:
            st.dataframe(rows, hide_index=True, key="live_history_table")
            st.plotly_chart(views.history_figure(rows), key="live_history_chart")
            st.download_button("Download CSV", history.to_csv(), "live_demo_runs.csv", "text/csv",
                               key="live_history_csv")
    except HistoryError as exc:
        st.error(str(exc))
