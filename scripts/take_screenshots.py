"""Regenerate the README's screenshots in docs/screenshots/ (`make screenshots`).

Starts the app as `make app` does, with the real embedded SmolLM2-135M-Instruct (not the tiny random model the tests
use), drives headless Debian Chromium through every page, runs speculative decoding once for the live-demo shot, and
fails when any page shows an exception box. The first run converts the model once into the user cache directory.
Usage: .venv/bin/python scripts/take_screenshots.py [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser_support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    assert_no_exception,
    running_app,
    screenshot,
    wait_for_app_idle,
)

# (URL path, file name, a heading the page shows once rendered)
PAGES = [
    ("", "home", "Efficient-LLM Explorer"),
    ("catalog", "catalog", "Catalog"),
    ("catalog?id=gptq", "catalog_technique", "GPTQ"),
    ("recommender", "recommender", "Recommender"),
    ("live_demo", "live_demo", "Live demo"),
    ("about", "about", "About"),
]
MODEL_TIMEOUT_MS = 900_000   # the first load converts the GGUF file (minutes on a slow CPU)


def take(url: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        tab.set_default_timeout(120_000)
        for path, name, heading in PAGES:
            tab.goto(f"{url}/{path}")
            tab.get_by_role("heading", name=heading).first.wait_for(timeout=MODEL_TIMEOUT_MS)
            wait_for_app_idle(tab, timeout_ms=MODEL_TIMEOUT_MS)
            assert_no_exception(tab)
            if name == "catalog_technique":
                tab.get_by_role("heading", name=heading).first.scroll_into_view_if_needed()
            shots.append(screenshot(tab, name, out))
            print(f"  {shots[-1].relative_to(ROOT) if shots[-1].is_relative_to(ROOT) else shots[-1]}", flush=True)
        tab.goto(f"{url}/live_demo")
        tab.get_by_role("heading", name="Live demo").first.wait_for(timeout=MODEL_TIMEOUT_MS)
        wait_for_app_idle(tab, timeout_ms=MODEL_TIMEOUT_MS)
        tab.get_by_role("tab", name="Speculative decoding").click()
        tab.get_by_role("button", name="Generate").click()
        result = tab.get_by_text("accepted from draft").first
        result.wait_for(timeout=MODEL_TIMEOUT_MS)
        wait_for_app_idle(tab, timeout_ms=MODEL_TIMEOUT_MS)
        assert_no_exception(tab)
        result.scroll_into_view_if_needed()
        shots.append(screenshot(tab, "live_demo_speculative", out))
        print(f"  {shots[-1]}", flush=True)
        browser.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where the PNG files go")
    args = parser.parse_args(argv)
    print(f"Taking screenshots with the real model into {args.out} ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="ellm-screenshots-") as data, \
            running_app(Path(data), real_model=True) as url:
        take(url, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
