"""Shared test fixtures: the repository root and the pages list."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Property and fuzz tests draw the same examples on every run, so CI cannot fail on a lucky draw that a
# developer never saw; set HYPOTHESIS_PROFILE=explore to draw fresh examples locally.
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

ROOT = Path(__file__).resolve().parents[1]
SURVEY = ROOT.parent / "shared" / "seed" / "efficient_llms_survey.txt"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def survey_text() -> str:
    if not SURVEY.exists():
        pytest.skip(f"the survey text is not beside the checkout ({SURVEY})")
    return SURVEY.read_text(encoding="utf-8")

from tests.browser_support import app_url, browser, page  # noqa: E402,F401  (shared browser fixtures)
