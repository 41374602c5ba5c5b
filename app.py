"""Efficient-LLM Explorer: the router. Page config, a one-time background warm-up, the shared sidebar, the
navigation and an opt-in timing log of each script run; nothing else."""

import json
import os
import threading
import time

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
    st.Page("pages/about.py", title="About", icon=":material/info:", url_path="about"),
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


def log_run_time(path: str, page: str, wall_start: float, cpu_start: float) -> None:
    """Append one JSON line per script run: the page, its wall time and its thread's CPU time (ms). Opt-in through
    ELLM_RUN_TIMES, for load tests and capacity planning; a write that fails is skipped, never shown to users."""
    line = json.dumps({"page": page, "wall_ms": round((time.perf_counter() - wall_start) * 1000, 1),
                       "cpu_ms": round((time.thread_time() - cpu_start) * 1000, 1), "at": time.time()})
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
    except OSError:
        pass


wall_start, cpu_start = time.perf_counter(), time.thread_time()
try:
    navigation.run()
finally:
    if os.environ.get("ELLM_RUN_TIMES"):
        log_run_time(os.environ["ELLM_RUN_TIMES"], navigation.title, wall_start, cpu_start)
