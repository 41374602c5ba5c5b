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
# The survey's plain text is not in the repository (it is the authors' text). Four checks need it: the reference
# list and Table 1 parse (tests/test_references.py) and the no-copied-sentences check of the catalog summaries
# (tests/test_catalog_data.py). They read ELLM_SURVEY_TEXT, else ../shared/seed/ beside the checkout.
SURVEY = Path(os.environ.get("ELLM_SURVEY_TEXT") or ROOT.parent / "shared" / "seed" / "efficient_llms_survey.txt")
SURVEY_HOWTO = ("needs the survey as plain text (arXiv:2312.03863; not shipped in the repository) at {path}; "
                "set ELLM_SURVEY_TEXT=/path/to/efficient_llms_survey.txt to run this check")
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
        pytest.skip(SURVEY_HOWTO.format(path=SURVEY))
    return SURVEY.read_text(encoding="utf-8")

from tests.browser_support import app_url, browser, page  # noqa: E402,F401  (shared browser fixtures)
