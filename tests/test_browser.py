"""Real-browser end-to-end tests: every page renders in headless Chromium with no exception box."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

from tests.browser_support import (
    ROOT,
    assert_no_exception,
    free_port,
    screenshot,
    wait_for_app_idle,
    wait_healthy,
)

pytestmark = pytest.mark.browser

PAGES = [
    ("", "home", "Efficient-LLM Explorer"),
    ("catalog", "catalog", "Catalog"),
    ("recommender", "recommender", "Recommender"),
    ("live_demo", "live_demo", "Live demo"),
    ("about", "about", "About and method"),
]


@pytest.mark.parametrize(("path", "name", "heading"), PAGES, ids=[p[1] for p in PAGES])
def test_page_renders_in_chromium(app_url, page, path, name, heading):
    page.goto(f"{app_url}/{path}")
    page.get_by_role("heading", name=heading).first.wait_for()
    wait_for_app_idle(page)
    assert_no_exception(page)
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Efficient-LLM Explorer").count() >= 1
    screenshot(page, name)


def test_catalog_search_and_open_technique(app_url, page):
    page.goto(f"{app_url}/catalog")
    box = page.get_by_label("Search names, aliases, summaries and tags")
    box.fill("gptq")
    box.press("Enter")
    wait_for_app_idle(page)
    page.get_by_text("matching techniques").first.wait_for()
    page.goto(f"{app_url}/catalog?q=gptq&id=gptq")
    page.get_by_role("heading", name="GPTQ").first.wait_for()
    page.get_by_role("heading", name="Citation").first.wait_for()
    wait_for_app_idle(page)
    assert_no_exception(page)
    assert "Frantar" in page.content()
    page.get_by_role("heading", name="GPTQ").first.scroll_into_view_if_needed()
    screenshot(page, "catalog_technique")


@contextlib.contextmanager
def fresh_server(data_dir):
    """A new `streamlit run app.py` that no session has visited yet (the shared app_url server is warm)."""
    port = free_port()
    env = {**os.environ, "ELLM_DEMO_MODEL": "tiny", "ELLM_CACHE_DIR": str(data_dir / "cache"),
           "ELLM_HISTORY_DB": str(data_dir / "history.sqlite"), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    with (data_dir / "streamlit.log").open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=15)


# Cause, read in Streamlit 1.67's source and seen in the websocket messages: a `pages/` folder beside the entrypoint
# sets PagesManager.uses_pages_directory, so the process's first script run goes through the MPA v1 path
# (script_runner._mpa_v1), which builds a navigation from pages/*.py (url paths catalog_page, ...), finds no
# "catalog" and sends page_not_found before app.py's st.navigation clears the flag for good. Renaming the folder
# (e.g. app_pages/) removes the dialog; no config option switches the v1 path off.
@pytest.mark.xfail(strict=True, reason="streamlit/streamlit#9992: the page folder is still named pages/")
def test_first_visitor_of_a_fresh_server_can_deep_link(browser, tmp_path):
    with fresh_server(tmp_path) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            page.goto(f"{url}/catalog")
            page.get_by_role("heading", name="Catalog").first.wait_for(timeout=60_000)
            wait_for_app_idle(page)
            assert page.get_by_text("Page not found").count() == 0
        finally:
            context.close()
