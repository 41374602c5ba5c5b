"""Fixtures for real-browser tests: the app as a subprocess on a free port, and headless Debian Chromium."""

from __future__ import annotations

import contextlib
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
# Tests write their screenshots to an ignored folder, so `make test` leaves the working tree clean; the README's
# screenshots in docs/screenshots/ come from `make screenshots` (scripts/take_screenshots.py), with the real model.
SCREENSHOTS = Path(os.environ.get("ELLM_TEST_SCREENSHOTS", str(ROOT / "test-results" / "screenshots")))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(port: int) -> list[str]:
    """The app as `make app` serves it (scripts/serve.py: `streamlit run app.py`, deep links right from the first
    request), on 127.0.0.1:`port`; the file watcher is off in .streamlit/config.toml and repeated here."""
    return [sys.executable, str(ROOT / "scripts" / "serve.py"), "--server.headless", "true",
            "--server.port", str(port), "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]


def app_env(data_dir: Path, real_model: bool = False) -> dict[str, str]:
    """Environment of a test server: throwaway history, no hub access, and the tiny random model with a throwaway
    cache; with `real_model`, the embedded SmolLM2 and the user's model cache (converted once, then reused)."""
    env = {**os.environ, "ELLM_HISTORY_DB": str(data_dir / "history.sqlite"), "HF_HUB_OFFLINE": "1"}
    if real_model:
        env.pop("ELLM_DEMO_MODEL", None)
    else:
        env.update(ELLM_DEMO_MODEL="tiny", ELLM_CACHE_DIR=str(data_dir / "cache"))
    return env


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


@contextlib.contextmanager
def running_app(data_dir: Path, real_model: bool = False):
    """A fresh app process on a free port (no session has visited it yet); yields its URL, stops it on exit."""
    port = free_port()
    with (data_dir / "streamlit.log").open("w") as log:
        process = subprocess.Popen(server_command(port), cwd=ROOT, env=app_env(data_dir, real_model),
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, process)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """The app served as `make app` serves it, shared by the browser tests of one pytest session."""
    with running_app(tmp_path_factory.mktemp("app-data")) as url:
        yield url


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


def screenshot(tab, name: str, folder: Path | None = None) -> Path:
    """Save the visible part of the page as `name`.png in `folder` (default: the tests' ignored folder)."""
    folder = SCREENSHOTS if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.png"
    tab.screenshot(path=str(target), full_page=False)
    return target
