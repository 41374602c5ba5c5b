"""Real-browser end-to-end tests: every page renders in headless Chromium with no exception box."""

from __future__ import annotations

import re

import pytest

from tests.browser_support import (
    assert_no_exception,
    running_app,
    screenshot,
    wait_for_app_idle,
)

pytestmark = pytest.mark.browser

PAGES = [
    ("", "home", "Efficient-LLM Explorer"),
    ("catalog", "catalog", "Catalog"),
    ("recommender", "recommender", "Recommender"),
    ("live_demo", "live_demo", "Live demo"),
    ("about", "about", "About"),
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
    box = page.locator(".st-key-cat_query input")
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


# A fresh server's first session used to get "Page not found" over the right page: Streamlit's legacy pages-folder
# routing (a folder named pages/ beside app.py) handles the process's first script run; scripts/serve.py, the
# launcher of `make app` and of these tests, switches it off before the server starts (its docstring has the detail).
def test_first_visitor_of_a_fresh_server_can_deep_link(browser, tmp_path):
    with running_app(tmp_path) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            page.goto(f"{url}/catalog?id=gptq")
            page.get_by_role("heading", name="Catalog").first.wait_for(timeout=60_000)
            page.get_by_role("heading", name="GPTQ").first.wait_for(timeout=60_000)
            wait_for_app_idle(page)
            assert page.get_by_text("Page not found").count() == 0
            assert page.get_by_role("dialog").count() == 0
            assert_no_exception(page)
        finally:
            context.close()


def _nav(page, title: str) -> None:
    """Click a page's entry in the sidebar navigation (the st.Page titles of app.py), in the same session."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()


def _settled(page, heading, timeout_ms: int = 60_000) -> None:
    page.get_by_role("heading", name=heading).first.wait_for(timeout=timeout_ms)
    wait_for_app_idle(page, timeout_ms=timeout_ms)
    assert page.get_by_role("dialog").count() == 0, "a dialog (e.g. Page not found) is open"
    assert_no_exception(page)


def test_a_newcomer_walks_through_the_three_parts(browser, tmp_path):
    """Issue 12's first hour in one browser session on a fresh server: a shared deep link into the catalog, home,
    a catalog search, the recommender's default plan and its export, the live demo's quickest default action (on
    the tiny model), and the About page; no exception box or dialog anywhere. Anchors are page titles and headings
    so that the pages' widgets can change."""
    with running_app(tmp_path) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{url}/catalog?id=gptq")   # the first request this server sees
            _settled(page, "GPTQ")

            _nav(page, "Home")
            _settled(page, "Efficient-LLM Explorer")

            _nav(page, "Catalog")
            _settled(page, "Catalog")
            search = page.locator('[data-testid="stMain"]').get_by_role("textbox").first
            search.fill("speculative decoding")
            search.press("Enter")
            _settled(page, "Catalog")
            page.get_by_text("matching techniques").first.wait_for()   # the result count above the table

            _nav(page, "Recommender")
            _settled(page, "Recommender")
            submit = page.locator('[data-testid="stFormSubmitButton"] button')
            if submit.count():
                submit.first.click()
            _settled(page, re.compile(r"recommended", re.I))
            page.locator('[data-testid="stCode"]').first.wait_for()   # the plan's export
            # a 70B model on one 24 GB GPU: one verdict (the offload fallback) and an export that implements it
            for key, value in (("rec_model_id", "llama-2-70b"), ("rec_gpu_id", "rtx-4090")):
                box = page.locator(f".st-key-{key} input")
                box.click()
                box.fill(value)
                page.get_by_role("option", name=value, exact=True).click()
                wait_for_app_idle(page)
            page.get_by_text("the best fallback offloads", exact=False).first.wait_for()
            assert page.get_by_text("Recommended stack: fits", exact=False).count() == 0
            page.get_by_text("max_memory=", exact=False).first.wait_for()

            _nav(page, "Live demo")
            _settled(page, "Live demo", timeout_ms=120_000)
            page.get_by_role("tab", name="Prompt compression").click()
            page.get_by_role("button", name="Compress", exact=True).click()
            _settled(page, "Live demo", timeout_ms=120_000)

            _nav(page, "About")
            _settled(page, "About")
            page.get_by_text("How accurate the estimates are").first.wait_for()
            screenshot(page, "walk_about")
        finally:
            context.close()
