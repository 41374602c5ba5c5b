"""About / Method: how the estimates are computed and where the data comes from."""

from pathlib import Path

import streamlit as st

DOCS = Path(__file__).resolve().parents[1] / "docs"

st.title("About and method")
st.markdown((DOCS / "METHOD.md").read_text(encoding="utf-8"))
