"""Tiny-model fixtures for the live-demo tests: random Llama models built in milliseconds, offline."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_lm():
    from live_demo.models import load_model

    return load_model("tiny", device="cpu")


@pytest.fixture(scope="session")
def tiny_draft(tiny_lm):
    from live_demo.models import load_draft

    return load_draft("tiny", tiny_lm)


@pytest.fixture()
def history_db(tmp_path, monkeypatch):
    path = tmp_path / "history.sqlite"
    monkeypatch.setenv("ELLM_HISTORY_DB", str(path))
    return path
