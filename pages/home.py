"""Home: what the product does, live counts from the data, and one way into each part."""

import streamlit as st

from catalog import load_catalog

st.title("Efficient-LLM Explorer")
st.markdown(
    "Browse every technique from the survey *Efficient Large Language Models* by Wan et al., get a costed "
    "plan of techniques that makes your model fit your GPUs and latency budget, and watch quantization, "
    "prompt compression and speculative decoding run for real on a small model."
)

catalog = load_catalog()
counts = catalog.counts()
cols = st.columns(4)
cols[0].metric("Techniques", counts["techniques"])
cols[1].metric("Taxonomy categories", counts["categories"])
cols[2].metric("Frameworks and engines", counts["frameworks"] + counts["engines"])
cols[3].metric("Papers in the reference list", counts["references"])

st.caption(f"{counts['since_survey']} of the techniques were published after the survey (December 2023).")

st.divider()
left, middle, right = st.columns(3)
with left:
    st.subheader("Catalog")
    st.write("Search and filter the survey's taxonomy, open a technique, follow its citation.")
    st.markdown("[Open the catalog →](/catalog)")
with middle:
    st.subheader("Recommender")
    st.write("Model + GPU + latency budget in, ranked technique stacks with memory and latency out.")
    st.markdown("[Plan a deployment →](/recommender)")
with right:
    st.subheader("Live demo")
    st.write("Quantize, compress a prompt and decode speculatively on SmolLM2-135M, measured live.")
    st.markdown("[Run the live demo →](/live_demo)")

st.caption("How the estimates are computed, how accurate they are, where the data comes from and what runs offline: "
           "[About](/about).")
