"""Real-browser test: open the live demo, run speculative decoding end to end on the tiny model."""

from __future__ import annotations

import pytest

from tests.browser_support import assert_no_exception, screenshot, wait_for_app_idle

pytestmark = pytest.mark.browser


def _dismiss_dialogs(page) -> None:
    """A fresh server can greet its first deep-linked session with a transient "Page not found" dialog."""
    if page.get_by_role("dialog").count():
        page.keyboard.press("Escape")
        page.get_by_role("dialog").first.wait_for(state="hidden")


def _open_live_demo(app_url, page) -> None:
    page.goto(f"{app_url}/live_demo")
    page.get_by_role("heading", name="Live demo").first.wait_for()
    wait_for_app_idle(page, timeout_ms=120_000)
    _dismiss_dialogs(page)


def test_live_demo_speculative_end_to_end(app_url, page):
    _open_live_demo(app_url, page)
    page.get_by_role("tab", name="Speculative decoding").click()
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("accepted from draft").first.wait_for(timeout=120_000)
    wait_for_app_idle(page, timeout_ms=120_000)
    page.get_by_text("Identical to greedy").first.wait_for()
    assert_no_exception(page)
    screenshot(page, "live_demo_speculative")


HOSTILE_CONTEXT = ("Hostile context <script>alert(1)</script> with :red[x] and **bold** and `code` and $x^2$ "
                   "and [link](javascript:alert(1)) and ] and <img src=x onerror=alert(1)> end.")


def test_compression_view_shows_hostile_context_as_typed(app_url, page):
    """The token view is Streamlit markdown: every token escaped, dropped tokens in grey, nothing active."""
    _open_live_demo(app_url, page)
    page.get_by_role("tab", name="Prompt compression").click()
    context = page.get_by_label("Context")
    context.fill(HOSTILE_CONTEXT)
    context.press("Control+Enter")
    wait_for_app_idle(page, timeout_ms=120_000)
    page.get_by_role("button", name="Compress", exact=True).click()
    view = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="Legend: kept tokens").first
    view.wait_for(timeout=120_000)
    wait_for_app_idle(page, timeout_ms=120_000)
    assert_no_exception(page)
    text = view.inner_text().replace("\u00a0", " ")
    assert HOSTILE_CONTEXT in text, text
    assert view.locator("script, img, a, strong, code, .katex").count() == 0
    assert view.locator("span[style*='color']").count() >= 2  # dropped tokens and the legend are grey
