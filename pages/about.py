"""About: what each part does, how the estimates are computed, how accurate they are (measured when the app
starts), where the data comes from and what runs offline. The prose is docs/METHOD.md; the figures are computed."""

import math
from pathlib import Path

import streamlit as st

from catalog import load_catalog
from recommender import api as recommender_api

METHOD = Path(__file__).resolve().parents[1] / "docs" / "METHOD.md"
ACCURACY_MARKER = "<!-- measured-accuracy -->"
FAMILIES = [("decode", "Decode speed (time per generated token)"),
            ("prefill", "Prefill (time to first token)"),
            ("memory", "Memory")]


@st.cache_data(show_spinner="Measuring the cost model's accuracy on the published measurements ...")
def accuracy() -> dict:
    """The recommender's leave-one-source-out accuracy report (about 2 s, once per server process)."""
    return recommender_api.calibration_report()


def pct(block: dict, key: str) -> str:
    value = block.get(key)
    return "—" if value is None else f"{value:g}%"


def accuracy_rows(report: dict) -> list[dict]:
    """One row per estimated quantity: held-out measurements, error of the roofline alone and after calibration."""
    rows = []
    for family, label in FAMILIES:
        if family not in report:
            continue
        block = report[family]
        alone = block.get("roofline") or block.get("analytic", {})
        fitted = block.get("calibrated_loso") or block.get("analytic", {})
        rows.append({"Estimate": label, "Measurements": alone.get("n", 0),
                     "Roofline alone: median error": pct(alone, "median_abs_pct_error"),
                     "With calibration: median error": pct(fitted, "median_abs_pct_error"),
                     "With calibration: 9 in 10 within": pct(fitted, "p90_abs_pct_error")})
    return rows


def render_accuracy(report: dict) -> None:
    st.dataframe(accuracy_rows(report), hide_index=True, width="stretch")
    st.caption(f"{report['rows']} published measurements from {report['sources']} sources. Median error: half of "
               "the estimates are closer to the measurement than this. Memory has no fitted part, so the roofline "
               "and calibrated columns are the same count.")
    for family, label in FAMILIES[:2]:
        band = report.get(family, {}).get("band_log")
        if band:
            low, high = (math.exp(v) for v in band)
            st.markdown(f"- **{label}**: the uncertainty band shown with a plan's details runs from ×{low:.2f} to "
                        f"×{high:.2f} of it, and held {report[family]['band_coverage_pct']:g}% of the held-out "
                        "measurements.")


st.title("About")
counts = load_catalog().counts()
cols = st.columns(5)
cols[0].metric("Techniques", counts["techniques"], help="Techniques in the catalog")
cols[1].metric("Survey references", counts["references"], help="Papers in the survey's reference list")
cols[2].metric("GPU presets", len(recommender_api.list_gpus()))
cols[3].metric("Model presets", len(recommender_api.list_models()))
report = accuracy()
cols[4].metric("Measurements", report["rows"], help="Published measurements the cost model is checked against")

text = METHOD.read_text(encoding="utf-8").split("\n", 1)[1]   # the page has its own title
before, after = text.split(ACCURACY_MARKER, 1) if ACCURACY_MARKER in text else (text, "")
st.markdown(before)
render_accuracy(report)
st.markdown(after)
