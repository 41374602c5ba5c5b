"""Live demo: quantization, prompt compression and speculative decoding measured on a real small LM."""

import streamlit as st

from live_demo.errors import LiveDemoError
from live_demo.models import model_summary
from live_demo.runner import GATE
from pages.live_demo_page_tabs import compression_tab, history_tab, load, quantization_tab, speculative_tab

st.title("Live demo")
st.caption("Every number below is measured in this run on this machine, unless it is labelled as a projection.")

with st.expander("Model and device", expanded=False):
    model_id = st.text_input("Target model (Hugging Face id or local path; empty = embedded SmolLM2-135M)",
                             value="", key="model_id").strip()
    device = st.selectbox("Device", ["auto", "cpu", "cuda"], key="device")
    if st.button("Stop the current run", key="stop"):
        GATE.stop()
try:
    lm = load(model_id, device)
except (LiveDemoError, ValueError) as exc:
    st.error(str(exc))
    st.stop()

info = model_summary(lm)
cols = st.columns(4)
cols[0].metric("Model", info["model_id"])
cols[1].metric("Device", f"{info['device']} · {info['dtype']}", help=info["device_name"])
cols[2].metric("Parameters", f"{info['num_params'] / 1e6:.1f} M")
cols[3].metric("Memory in use", f"{info['memory_bytes'] / 2**30:.2f} GiB")
busy_notice = st.empty()  # always present, so the tabs below keep their place in the page between reruns
if GATE.is_busy():
    busy_notice.info(f"A heavy run is in progress ({GATE.status()['running']}); yours will queue behind it.")

tab_q, tab_c, tab_s, tab_h = st.tabs(["Quantization", "Prompt compression", "Speculative decoding", "History"])
with tab_q:
    quantization_tab(lm)
with tab_c:
    compression_tab(lm)
with tab_s:
    speculative_tab(lm, model_id, device)
with tab_h:
    history_tab()
