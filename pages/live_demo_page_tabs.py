"""The live demo's model loading and one render function per tab (imported by live_demo_page.py, not a page).

Each tab reads its widgets, calls live_demo.api and renders the answer with live_demo.views; heavy runs go
through the process-wide gate, and errors become st.error, never a traceback.
"""

from __future__ import annotations

import gc

import streamlit as st

from common.history import HistoryError, RunHistory, flatten_rows
from live_demo import api, views
from live_demo.errors import LiveDemoError
from live_demo.runner import GATE, background_priority


@st.cache_resource(show_spinner="Loading the model (the first run converts the embedded GGUF, about 40 s)…")
def load(model_id: str, device: str):
    from live_demo.models import apply_live_threads, load_model

    apply_live_threads()  # leave a core for serving pages while a run is going (ELLM_LIVE_THREADS overrides)
    return load_model(model_id or None, device)


@st.cache_resource(show_spinner="Loading the draft model…")
def load_draft(draft_id: str, model_id: str, device: str):
    from live_demo.models import load_draft as _load_draft

    return _load_draft(draft_id, load(model_id, device))


def heavy(label: str, fn, *args, **kwargs):
    """Run fn under the process-wide gate with a progress bar; errors become st.error, never a traceback."""
    bar = st.progress(0.0, text=f"{label}…")
    try:
        with GATE.run(label, on_queued=lambda s: st.info(f"Queued behind another run ({s['running']})…")) as stop, \
                background_priority():
            out = fn(*args, stop_event=stop, **kwargs)
        bar.progress(1.0, text=f"{label}: done")
        return out
    except (LiveDemoError, ValueError, HistoryError) as exc:
        bar.empty()
        st.error(str(exc))
        return None
    finally:
        # The server skips Streamlit's full collection after every script run (.streamlit/config.toml: it cost
        # every click ~0.25 s); a heavy run leaves model copies in reference cycles, so collect once here.
        gc.collect()


def record(lm, kind: str, settings: dict, metrics: dict) -> None:
    try:
        RunHistory().record(kind, lm.model_id, lm.device, lm.device_name, lm.dtype, settings, metrics)
    except HistoryError as exc:
        st.warning(f"Result shown but not saved: {exc}")


def quantization_tab(lm) -> None:
    st.markdown("Weight quantization of a **copy** of the model ([LLM.int8](/catalog?id=llm-int8), "
                "[GPTQ](/catalog?id=gptq), [AWQ](/catalog?id=awq), [QLoRA](/catalog?id=qlora)).")
    from live_demo.quantization import available_methods

    methods = st.multiselect("Methods", available_methods(lm.device), default=available_methods(lm.device)[:3],
                             key="quant_methods")
    new_tokens = st.slider("New tokens to time", 8, 128, 32, key="quant_new_tokens")
    decode_ppl = st.checkbox(
        "Also measure decode perplexity of the dynamic int8 methods (slow: one token per call, about a minute per "
        "method on 2 CPU cores)", key="quant_decode_ppl",
        help="Dynamic int8 picks one activation scale per forward call. Perplexity in one 512-token pass shares a "
             "scale over 512 tokens; decoding quantizes each new token on its own, so its error can be far lower.")
    if st.button("Run quantization", key="quant_run", type="primary"):
        res = heavy("Quantization", api.run_quantization, lm, methods, 512, new_tokens, decode_ppl=decode_ppl)
        if res:
            st.session_state["quant_result"] = res
            for m in ["baseline", *res["methods"]]:
                record(lm, "quantization", {"method": res["baseline"]["method"] if m == "baseline" else m},
                       api.history_metrics_quant(res, m))
    res = st.session_state.get("quant_result")
    if res:
        st.dataframe(views.quant_table(res), hide_index=True, key="quant_table")
        st.plotly_chart(views.quant_bytes_figure(res), key="quant_bytes")
        st.plotly_chart(views.layer_error_figure(res), key="quant_layers")
    absmax_explainer(lm)


def absmax_explainer(lm) -> None:
    st.subheader("Explainer: absmax quantization of one real weight matrix")
    st.latex(r"X^{\text{int}} = \mathrm{Round}\left(\frac{q_{\max}}{\mathrm{absmax}(X)}\,X\right),\quad "
             r"q_{\max} = 2^{b-1}-1 \quad\text{(survey Eq. 1)}")
    layers = api.linear_layer_names(lm)
    c1, c2, c3 = st.columns(3)
    layer = c1.selectbox("Weight matrix", layers, key="absmax_layer")
    bits = c2.slider("Bits", 2, 8, 4, key="absmax_bits")
    gran = c3.radio("One scale per", ["tensor", "channel", "group"], index=2, key="absmax_gran", horizontal=True)
    try:
        ex = api.absmax_explainer(lm, layer, bits, gran, 32)
        st.plotly_chart(views.histogram_figure(ex), key="absmax_hist")
        e1, e2, e3 = st.columns(3)
        e1.metric("Relative error", f"{ex['relative_error']:.4f}")
        e2.metric("SQNR", f"{ex['sqnr_db']:.1f} dB")
        e3.metric("Levels used", f"{ex['levels_used']} of {ex['levels_available']}")
    except ValueError as exc:
        st.error(str(exc))


def compression_tab(lm) -> None:
    st.markdown("LLMLingua-style compression by the small LM itself ([LLMLingua](/catalog?id=llmlingua), "
                "[LongLLMLingua](/catalog?id=longllmlingua)); instruction and question are kept verbatim.")
    from live_demo.compression import load_qa_set

    qa = load_qa_set()
    item = st.selectbox("QA item", qa["items"], format_func=lambda i: f"{i['id']}: {i['question']}", key="comp_item")
    context = st.text_area("Context", item["context"], height=150, key=f"comp_context_{item['id']}")
    question = st.text_input("Question", item["question"], key=f"comp_question_{item['id']}")
    c1, c2 = st.columns(2)
    method = c1.selectbox("Method", ["ours", "lingua", "selective-word", "selective-phrase", "random"],
                          key="comp_method", help="ours = question-aware (LongLLMLingua idea)")
    ratio = c2.slider("Target compression ratio", 1.0, 5.0, 2.0, 0.25, key="comp_ratio")
    if st.button("Compress", key="comp_run", type="primary"):
        ref = item["answer"] if context == item["context"] and question == item["question"] else None
        out = heavy("Compression", api.run_compression, lm, context, question, qa["instruction"], method, ratio, ref)
        if out:
            st.session_state["comp_result"] = out
            record(lm, "compression", {"method": method, "ratio": ratio, "item": item["id"]},
                   {k: v for k, v in out.items() if isinstance(v, (int, float))})
    out = st.session_state.get("comp_result")
    if out:
        st.markdown(views.compression_markdown(out["result"].pieces, out["result"].keep))
        m1, m2, m3 = st.columns(3)
        m1.metric("Compression ratio", f"{out['ratio']:.2f}×", f"{out['original_tokens']} → {out['compressed_tokens']}"
                  " tokens", delta_color="off")
        m2.metric("Prefill time saved", f"{1000 * (out['prefill_seconds_full'] - out['prefill_seconds_compressed']):.1f}"
                  " ms")
        if "quality_kept" in out:
            m3.metric("Quality kept (answer probability)", f"{100 * out['quality_kept']:.0f}%")
    limit = st.slider("QA items to evaluate", 2, len(qa["items"]), 6, key="comp_eval_items")
    if st.button("Evaluate on the QA set (ours vs random drop vs llmlingua)", key="comp_eval"):
        ev = heavy("QA evaluation", api.run_compression_eval, lm, ratio, limit)
        if ev:
            st.session_state["comp_eval_rows"] = views.compression_eval_rows(ev["methods"])
    if st.session_state.get("comp_eval_rows"):
        st.dataframe(st.session_state["comp_eval_rows"], hide_index=True, key="comp_eval_table")


def speculative_tab(lm, model_id: str, device: str) -> None:
    st.markdown("Draft-and-verify on the target's KV cache ([speculative decoding](/catalog?id=speculative-decoding),"
                " [LLMA](/catalog?id=llma), [Medusa](/catalog?id=medusa)).")
    preset = st.selectbox("Prompt", list(api.SPEC_PROMPTS), key="spec_preset")
    prompt = st.text_area("Prompt text", api.SPEC_PROMPTS[preset], height=120, key=f"spec_prompt_{preset}")
    c1, c2, c3, c4 = st.columns(4)
    drafter = c1.selectbox("Drafter", ["prompt-lookup", "int8-self", "early-exit", "draft-model"], key="spec_drafter")
    k = c2.slider("Draft length k", 1, 8, 3, key="spec_k")
    n_new = c3.slider("New tokens", 8, 128, 48, key="spec_new")
    temp = c4.slider("Temperature (0 = greedy)", 0.0, 1.5, 0.0, 0.1, key="spec_temp")
    draft_id = st.text_input("Draft model id (for draft-model; same tokenizer)", "", key="draft_model_id")
    if st.button("Generate", key="spec_run", type="primary"):
        try:
            draft = load_draft(draft_id.strip(), model_id, device) if drafter == "draft-model" else None
            sr = heavy("Speculative decoding", api.run_speculative, lm, prompt, drafter, k, n_new, temp, draft)
        except (LiveDemoError, ValueError) as exc:
            st.error(str(exc))
            sr, draft = None, None
        if sr:
            sr["draft_params"] = api.drafter_params(lm, drafter, draft)
            st.session_state["spec_result"] = sr
            record(lm, "speculative", {"drafter": drafter, "draft_len": k, "temperature": temp},
                   {**sr["stats"], **{x: sr.get(x) for x in ("plain_tokens_per_s", "identical_to_greedy",
                                                            "transformers_assisted_tokens_per_s")}})
    sr = st.session_state.get("spec_result")
    if sr:
        st.markdown(views.speculative_markdown(sr["tokens"], sr["spec"].from_draft))
        s = sr["stats"]
        m = st.columns(4)
        m[0].metric("Acceptance rate", f"{100 * s['acceptance_rate']:.0f}%")
        m[1].metric("Mean accepted length", f"{s['mean_accepted_len']:.2f}")
        m[2].metric("Target passes / token", f"{s['target_calls_per_token']:.2f}")
        m[3].metric("Identical to greedy", {True: "yes", False: "NO", None: "n/a (sampling)"}[
            sr.get("identical_to_greedy")])
        st.plotly_chart(views.speed_figure(sr), key="spec_speed")
        st.info("On a 2-core CPU a verification pass over 4 drafted tokens costs about 1.5× one decode step "
                "(measured with SmolLM2-135M), so a wall-clock speedup needs a draft that is both cheap and usually "
                "right. Expect it from prompt lookup on copy-heavy prompts (2.25× in our benchmark) and, on this "
                "CPU, from the int8 self-draft (1.3-1.6×); the untrained early-exit draft is slower than plain "
                "decoding. Other prompts and drafters are not expected to be faster here. See docs/BENCHMARKS.md.")
        gpu_projection(lm, sr)


def gpu_projection(lm, sr: dict) -> None:
    """The measured acceptance rate projected onto a GPU with the recommender's cost model."""
    try:
        from recommender.api import list_gpus

        gpus = {g["id"]: g.get("name", g["id"]) for g in list_gpus()}
        gpu = st.selectbox("Project on a GPU", list(gpus), format_func=gpus.get, key="spec_gpu")
        proj = api.project_on_gpu(gpu, lm.num_params, sr["draft_params"], sr["stats"]["acceptance_rate"],
                                  sr["draft_len"])
        st.metric(f"Projected speedup on {gpus[gpu]} (projection, recommender cost model)", f"{proj['speedup']:.2f}×")
    except (ImportError, AttributeError):
        st.info("GPU projection unavailable: the recommender's project_speculative_speedup is not installed.")
    except ValueError as exc:
        st.warning(f"No GPU projection for this model: {exc}")


def history_tab() -> None:
    try:
        history = RunHistory()
        rows = flatten_rows(history.rows())
        st.caption(f"{len(rows)} runs stored in {history.path}")
        if rows:
            st.dataframe(rows, hide_index=True, key="history_table")
            st.plotly_chart(views.history_figure(rows), key="history_chart")
            st.download_button("Download CSV", history.to_csv(), "live_demo_runs.csv", "text/csv",
                               key="history_csv")
    except HistoryError as exc:
        st.error(str(exc))
