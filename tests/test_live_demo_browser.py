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


def test_live_demo_speculative_end_to_end(app_url, page):
    page.goto(f"{app_url}/live_demo")
    page.get_by_role("heading", name="Live demo").first.wait_for()
    wait_for_app_idle(page, timeout_ms=120_000)
    _dismiss_dialogs(page)
    page.get_by_role("tab", name="Speculative decoding").click()
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("accepted from draft").first.wait_for(timeout=120_000)
    wait_for_app_idle(page, timeout_ms=120_000)
    page.get_by_text("Identical to greedy").first.wait_for()
    assert_no_exception(page)
    screenshot(page, "live_demo_speculative")
