"""Exceptions raised at the recommender's package boundary."""

from __future__ import annotations

import difflib
import math


class RecommenderInputError(ValueError):
    """Bad user input: the message says what was wrong and how to fix it."""


def closest_ids(name: str, known: list[str], n: int = 3) -> list[str]:
    """Return up to n known ids that look like `name` (for 'did you mean' hints)."""
    lowered = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.4)
    if not hits:
        hits = [k for k in lowered if name.lower() in k or k in name.lower()][:n]
    return [lowered[h] for h in hits]


def shorten(value, limit: int = 60) -> str:
    """repr() of a user value, cut to `limit` characters so a hostile input cannot flood a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# kinds of id that a `python -m recommender <command>` lists; other kinds list their values in the message
LISTING_COMMANDS = {"gpu": "gpus", "model": "models", "framework": "frameworks", "technique": "techniques"}


def unknown_id_error(kind: str, name: str, known: list[str]) -> RecommenderInputError:
    """Build an 'unknown id' error that suggests the closest ids and names a real command that lists them all."""
    hint = closest_ids(str(name)[:200], known)
    suggestion = f" Did you mean: {', '.join(hint)}?" if hint else ""
    command = LISTING_COMMANDS.get(kind)
    listing = (f" Run `python -m recommender {command}` to list them." if command
               else f" Known: {', '.join(known)}.")
    return RecommenderInputError(f"unknown {kind} {shorten(name)}.{suggestion}{listing}")


def check_number(name: str, value, *, low: float, high: float, integer: bool = False) -> float:
    """Validate a user-supplied number: finite, within [low, high]; return it as float or int."""
    if isinstance(value, bool) or value is None:
        raise RecommenderInputError(f"{name} must be a number, got {shorten(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise RecommenderInputError(f"{name} must be a number, got {shorten(value)}") from None
    if math.isnan(number) or math.isinf(number):
        raise RecommenderInputError(f"{name} must be a finite number, got {shorten(value)}")
    if number < low or number > high:
        raise RecommenderInputError(f"{name} must be between {low:g} and {high:g}, got {number:g}")
    if integer:
        if number != int(number):
            raise RecommenderInputError(f"{name} must be a whole number, got {number:g}")
        return int(number)
    return number
