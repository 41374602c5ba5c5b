"""Live demo: quantization, prompt compression and speculative decoding measured on a real small LM."""

import streamlit as st

from live_demo import api
from live_demo.api import views
from pages.live_demo_page_tabs import (
    compression_tab,
    heavy,
    history_tab,
    load,
    load_draft,
    quantization_tab,
    record,
)
from recommender import api as recommender


def speculative_tab(lm, model_id: str, device: str) -> None:
    st.markdown("Draft-and-verify on the target's KV cache ([speculative decoding](/catalog?id=speculative-decoding),"
                " [LLMA](/catalog?id=llma), [Medusa](/catalog?id=medusa)).")
    preset = st.selectbox("Prompt", list(api.SPEC_PROMPTS), key="live_spec_preset")
    prompt = st.text_area("Prompt text", api.SPEC_PROMPTS[preset], height=120, key=f"live_spec_prompt_{preset}")
    c1, c2, c3, c4 = st.columns(4)
    drafter = c1.selectbox("Drafter", api.DRAFTERS, key="live_spec_drafter")
    k = c2.slider("Draft length k", 1, 8, 3, key="live_spec_k")
    n_new = c3.slider("New tokens", 8, 128, 48, key="live_spec_new")
    temp = c4.slider("Temperature (0 = greedy)", 0.0, 1.5, 0.0, 0.1, key="live_spec_temp")
    draft_id = st.text_input("Draft model id (for draft-model; same tokenizer)", "", key="live_spec_draft_id")
    note = api.prompt_suits(preset if prompt == api.SPEC_PROMPTS[preset] else None, drafter)
    if note:
        st.caption(note)
    if st.button("Generate", key="live_spec_run", type="primary"):
        try:
            draft = load_draft(draft_id.strip(), model_id, device) if drafter == "draft-model" else None
            sr = heavy("Speculative decoding", api.run_speculative, lm, prompt, drafter, k, n_new, temp, draft)
        except (api.LiveDemoError, ValueError) as exc:
            st.error(str(exc))
            sr = None
        if sr:
            st.session_state["live_spec_result"] = sr
            record(sr)
    sr = st.session_state.get("live_spec_result")
    if sr:
        st.markdown(views.speculative_markdown(sr.tokens, sr.from_draft))
        for col, (label, value) in zip(st.columns(4), views.speculative_metrics(sr), strict=True):
            col.metric(label, value)
        st.plotly_chart(views.speed_figure(sr), key="live_spec_speed")
        st.caption(f"Decode path: {sr.decode_path}" + (f" ({sr.decode_note})" if sr.decode_note else ""))
        facts = api.benchmark_facts()
        measured = (f" In our CPU benchmark ({facts['device']}) prompt lookup ran "
                    f"{facts['prompt_lookup_copy_speedup']:.2f}× plain decoding on the copy-heavy prompt and the "
                    f"int8 self-draft {facts['int8_self_speedup']:.2f}× on average.") if facts else ""
        st.info("On a 2-core CPU verifying several drafted tokens costs more than one decode step, so a wall-clock "
                "speedup needs a draft that is both cheap and usually right: prompt lookup on copy-heavy prompts, "
                f"or the int8 self-draft.{measured} See docs/BENCHMARKS.md.")
        gpu_projection(lm, sr)


def gpu_projection(lm, sr) -> None:
    """The measured acceptance combined with the recommender's GPU cost model (a projection, labelled)."""
    gpus = {g["id"]: g.get("name", g["id"]) for g in recommender.list_gpus()}
    gpu = st.selectbox("Project on a GPU", list(gpus), format_func=gpus.get, key="live_spec_gpu")
    params_b, stats = lm.num_params / 1e9, sr.stats
    try:
        if sr.draft_params == 0:  # prompt lookup reads no weights: no draft model to price
            one = recommender.decode_ms_per_token(gpu, params_b, batch=1)
            verify = recommender.decode_ms_per_token(gpu, params_b, batch=sr.draft_len + 1)
            proj = api.draft_free_speedup(one, verify, 1 / max(stats["target_calls_per_token"], 1e-9))
            how = "target step and (k+1)-token verification from the recommender, draft cost taken as zero"
        else:
            proj = recommender.project_speculative_speedup(gpu, params_b, sr.draft_params / 1e9,
                                                           stats["acceptance_rate"], sr.draft_len, weights="fp16")
            how = "recommender cost model"
        st.metric(f"Projected speedup on {gpus[gpu]} (projection, {how})", f"{proj['speedup']:.2f}×")
    except ValueError as exc:
        st.warning(f"No GPU projection for this model: {exc}")


def sweep_section(lm) -> None:
    """Decode tokens/s against batch size (measured) beside the recommender's prediction for the same GPU."""
    st.subheader("When quantization pays: decode speed against batch size")
    st.caption(api.decode_path_note(lm.device))
    offered = ["baseline", *api.quantization_methods(lm.device)]
    c1, c2 = st.columns(2)
    methods = c1.multiselect("Methods", offered, default=offered[:1] + ["int8-weight-only"], key="live_sweep_methods")
    top = c2.select_slider("Largest batch", api.BATCHES, value=8 if lm.device == "cpu" else 64, key="live_sweep_max")
    if st.button("Run the batch sweep", key="live_sweep_run"):
        rep = heavy("Batch sweep", api.run_sweep, lm, methods, tuple(b for b in api.BATCHES if b <= top),
                    8 if lm.device == "cpu" else 32)
        if rep:
            st.session_state["live_sweep_result"] = rep
            record(rep)
    rep = st.session_state.get("live_sweep_result")
    if rep:
        predicted = {}
        if lm.device == "cuda":
            gpus = {g["id"]: g.get("name", g["id"]) for g in recommender.list_gpus()}
            gpu = st.selectbox("Recommender prediction for", list(gpus), format_func=gpus.get, key="live_sweep_gpu")
            try:
                predicted = {(r["method"], r["batch"]): r["batch"] * 1000 / recommender.decode_ms_per_token(
                    gpu, lm.num_params / 1e9, weights=r["weight_format"], batch=r["batch"])
                    for r in rep.rows if "error" not in r}
            except ValueError as exc:
                st.caption(f"No prediction for this model: {exc}")
        st.plotly_chart(views.sweep_figure(rep, predicted), key="live_sweep_chart")
        st.dataframe(views.sweep_rows(rep), hide_index=True, key="live_sweep_table")


st.title("Live demo")
st.caption("Every number below is measured in this run on this machine, unless it is labelled as a projection.")

with st.expander("Model and device", expanded=False):
    model_id = st.text_input("Target model (Hugging Face id or local path; empty = embedded SmolLM2-135M)",
                             value="", key="live_model_id").strip()
    device = st.selectbox("Device", api.DEVICES, key="live_device")
    if st.button("Stop the current run", key="live_stop"):
        api.GATE.stop()
try:
    lm = load(model_id, device)
except (api.LiveDemoError, ValueError) as exc:
    st.error(str(exc))
    st.stop()

info = api.model_summary(lm)
cols = st.columns(4)
cols[0].metric("Model", info["model_id"])
cols[1].metric("Device", f"{info['device']} · {info['dtype']}", help=info["device_name"])
cols[2].metric("Parameters", f"{info['num_params'] / 1e6:.1f} M")
cols[3].metric("Memory in use", f"{info['memory_bytes'] / 2**30:.2f} GiB")
busy_notice = st.empty()  # always present, so the tabs below keep their place in the page between reruns
if api.GATE.is_busy():
    busy_notice.info(f"A heavy run is in progress ({api.GATE.status()['running']}); yours will queue behind it.")

tab_q, tab_c, tab_s, tab_h = st.tabs(["Quantization", "Prompt compression", "Speculative decoding", "History"])
with tab_q:
    quantization_tab(lm)
    sweep_section(lm)
with tab_c:
    compression_tab(lm)
with tab_s:
    speculative_tab(lm, model_id, device)
with tab_h:
    history_tab()
