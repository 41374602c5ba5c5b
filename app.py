"""Efficient-LLM Explorer: the router. Page config, the shared sidebar and the navigation; nothing else."""

import pandas  # noqa: F401  (imported whole before any page: concurrent first sessions saw it half-imported)
import streamlit as st

st.set_page_config(page_title="Efficient-LLM Explorer", page_icon="⚡", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/catalog_page.py", title="Catalog", icon=":material/menu_book:", url_path="catalog"),
    st.Page("pages/recommender_page.py", title="Recommender", icon=":material/tune:", url_path="recommender"),
    st.Page("pages/live_demo_page.py", title="Live demo", icon=":material/science:", url_path="live_demo"),
    st.Page("pages/about.py", title="About / Method", icon=":material/info:", url_path="about"),
]

navigation = st.navigation(PAGES)

with st.sidebar:
    st.markdown("### Efficient-LLM Explorer")
    st.caption(
        "An interactive guide to making LLMs efficient, built on *Efficient Large Language Models: A Survey* "
        "(Wan et al., TMLR 2024)."
    )
    st.markdown("[The survey on arXiv](https://arxiv.org/abs/2312.03863)")
    st.divider()

navigation.run()
