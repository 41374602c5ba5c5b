"""Detect runs of words copied from the survey: 10 or more consecutive words in common is a defect."""

from __future__ import annotations

import re

RUN_LENGTH = 10


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def shingles(text: str, n: int = RUN_LENGTH) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def copied_runs(text: str, source_shingles: set[tuple[str, ...]], n: int = RUN_LENGTH) -> list[str]:
    """Return each n-word run of `text` that also occurs in the source."""
    tokens = words(text)
    return [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1) if tuple(tokens[i : i + n]) in source_shingles]
