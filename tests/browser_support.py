"""Fixtures for real-browser tests: the app as a subprocess on a free port, and headless Debian Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 90.0) -> None:
    """Poll Streamlit's health endpoint until it answers ok (shared with bench/load_test.py)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the app at {url} was not healthy within {timeout_s} s")


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """Start `streamlit run app.py` on a free port and stop it cleanly after the session."""
    port = free_port()
    data = tmp_path_factory.mktemp("app-data")
    env = {
        **os.environ,
        "ELLM_DEMO_MODEL": "tiny",
        "ELLM_CACHE_DIR": str(data / "cache"),
        "ELLM_HISTORY_DB": str(data / "history.sqlite"),
        "HF_HUB_OFFLINE": "1",
    }
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    log = (data / "streamlit.log").open("w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/ensure_chromium.sh` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


def assert_no_exception(tab) -> None:
    """Fail when Streamlit rendered an exception box or a traceback."""
    assert tab.locator('[data-testid="stException"]').count() == 0, "an exception box is rendered"
    assert "Traceback (most recent call last)" not in tab.content()


_SCRIPT_DONE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app && app.getAttribute('data-test-script-state') === 'notRunning'
    && document.querySelectorAll('[data-testid="stSkeleton"], [data-stale="true"]').length === 0;
}"""


def wait_for_app_idle(tab, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished the script run and no placeholder or stale element is left."""
    tab.wait_for_load_state("networkidle")
    tab.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout_ms)
    tab.wait_for_function(_SCRIPT_DONE, timeout=timeout_ms)
    tab.wait_for_timeout(300)  # let plotly finish drawing before a screenshot


def screenshot(tab, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(target), full_page=False)
    return target
