"""Every page renders under AppTest without an exception."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
# The pages the router registers; other modules in pages/ (live_demo_page_tabs.py) are helpers, not pages.
PAGE_FILES = [ROOT / p for p in re.findall(r'st\.Page\("(pages/[\w/]+\.py)"', (ROOT / "app.py").read_text())]


@pytest.fixture(autouse=True)
def isolated_demo(monkeypatch, tmp_path):
    # The live demo page gets a tiny random model and throwaway cache/history locations.
    monkeypatch.setenv("ELLM_DEMO_MODEL", "tiny")
    monkeypatch.setenv("ELLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ELLM_HISTORY_DB", str(tmp_path / "history.sqlite"))


def test_every_design_card_page_exists():
    names = {p.stem for p in PAGE_FILES if p.is_file()}
    assert {"home", "catalog_page", "recommender_page", "live_demo_page", "about"} <= names


@pytest.mark.parametrize("page", PAGE_FILES, ids=[p.stem for p in PAGE_FILES])
def test_page_renders_without_exception(page):
    at = AppTest.from_file(str(page), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page.name} renders no title"


def test_router_renders_home():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("Efficient-LLM Explorer" in t.value for t in at.title)
    assert len(at.metric) >= 3


def test_router_switches_to_every_page():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    for page in ("pages/catalog_page.py", "pages/recommender_page.py", "pages/about.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])


def test_streamlit_config_turns_off_the_full_collection_after_every_run():
    # Streamlit's default (runner.postScriptGC) walks every live object after each script run: ~140 ms of CPU
    # holding the GIL per click with torch and sklearn loaded. `streamlit run` reads this file from the repo root.
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False


def test_streamlit_config_has_the_safe_defaults_for_a_shared_box():
    import tomllib

    from streamlit import config as streamlit_config

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"] == {"address": "127.0.0.1", "enableXsrfProtection": True, "maxUploadSize": 1,
                                "fileWatcherType": "none", "runOnSave": False}
    assert config["browser"]["gatherUsageStats"] is False and config["client"]["toolbarMode"] == "viewer"
    for section, options in config.items():   # every key is a real Streamlit option (a typo would be ignored):
        for name in options:                   # get_option raises on an unknown key
            streamlit_config.get_option(f"{section}.{name}")


def test_the_product_defaults_are_the_fast_ones():
    """No file watcher (issue 12: the watcher over the whole checkout made live runs 6-8x slower), and `make app`
    starts the same launcher as the tests, with no flag that turns the watcher back on."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none" and config["server"]["runOnSave"] is False
    makefile = (ROOT / "Makefile").read_text()
    app_recipe = makefile.split("\napp:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/serve.py" in app_recipe
    assert "fileWatcherType" not in app_recipe or "fileWatcherType none" in app_recipe
    assert "runOnSave true" not in makefile


def test_about_page_shows_the_measured_accuracy_for_users():
    """The About page's error figures are the calibration report's, computed at render time, and the page holds
    user-facing text only (the engineering notes stay in docs/RELIABILITY.md and docs/BENCHMARKS.md)."""
    from recommender.report import calibration_report

    report = calibration_report()
    at = AppTest.from_file(str(ROOT / "pages" / "about.py"), default_timeout=120).run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("Estimate")
    decode = report["decode"]["calibrated_loso"]
    assert table.loc["Decode speed (time per generated token)", "With calibration: median error"] == \
        f"{decode['median_abs_pct_error']:g}%"
    assert table.loc["Memory", "Measurements"] == report["memory"]["analytic"]["n"]
    text = " ".join(m.value for m in at.markdown)
    for part in ("What each part does", "How the estimates are computed", "How accurate", "Where the data comes from",
                 "What runs offline", "https://github.com/pytorch-labs/gpt-fast"):
        assert part in text, part
    for internal in ("py-spy", "GIL", "postScriptGC", "load test", "RELIABILITY"):
        assert internal not in text, internal
    assert len((ROOT / "pages" / "about.py").read_text().splitlines()) < 150


def test_router_logs_one_timing_line_per_run_when_asked(monkeypatch, tmp_path):
    import json

    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv("ELLM_RUN_TIMES", str(log))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/recommender_page.py").run()
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["page"] for r in runs] == ["Home", "Recommender"]
    assert all(0 < r["cpu_ms"] <= r["wall_ms"] + 1 for r in runs)   # the script thread's CPU fits in its wall time
    assert runs[1]["wall_ms"] > runs[0]["wall_ms"]   # planning costs more than the home page


def test_router_keeps_serving_when_the_timing_log_cannot_be_written(monkeypatch, tmp_path):
    monkeypatch.setenv("ELLM_RUN_TIMES", str(tmp_path / "missing-dir" / "runs.jsonl"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
