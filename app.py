"""Efficient-LLM Explorer: the router. Page config, a one-time background warm-up, the shared sidebar and the
navigation; nothing else."""

import threading

# Imported whole, in this order, before any page can run: libraries that peek into sys.modules for another one
# (plotly for pandas, scipy for torch) failed on a half-imported module when two first sessions overlapped.
import pandas  # noqa: F401
import sklearn.linear_model  # noqa: F401  (pulls in scipy; ~0.5 s once per server process)
import streamlit as st

st.set_page_config(page_title="Efficient-LLM Explorer", page_icon="⚡", layout="wide")


@st.cache_resource(show_spinner=False)
def warm_up_once() -> threading.Thread:
    """Load the catalog and fit the recommender's calibration in the background, once per server process, so
    the first visitor of those pages does not wait for them (about 1 s on a 2-core machine)."""
    from catalog import load_catalog
    from recommender.api import warm_up

    thread = threading.Thread(target=lambda: (load_catalog(), warm_up()), name="ellm-warm-up", daemon=True)
    thread.start()
    return thread


warm_up_once()

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
