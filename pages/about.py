"""About / Method: how the estimates are computed and where the data comes from."""

import re
from pathlib import Path

import streamlit as st

DOCS = Path(__file__).resolve().parents[1] / "docs"
SECTIONS = [
    ("Recommender: method and calibration report", "recommender.md"),
    ("Live demo: method and measured results", "live_demo.md"),
    ("Benchmarks", "BENCHMARKS.md"),
    ("Reliability, security and load", "RELIABILITY.md"),
]


def doc(name: str) -> str:
    # Links between the docs files point at sibling .md files, which the app does not serve: keep their text.
    return re.sub(r"\[([^\]]+)\]\((?!https?://)[^)]*\.md\)", r"\1", (DOCS / name).read_text(encoding="utf-8"))


st.title("About and method")
st.markdown(doc("METHOD.md"))
for title, name in SECTIONS:
    with st.expander(title):
        st.markdown(doc(name))
