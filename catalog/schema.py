"""The catalog's data schema: allowed values and a validator used by the loader and the tests."""

from __future__ import annotations

import re

STAGES = ("pre-training", "fine-tuning", "inference", "prompting")
ACTS_ON = (
    "weights",
    "activations",
    "kv-cache",
    "attention",
    "architecture",
    "optimizer-state",
    "gradients",
    "prompt",
    "training-data",
    "system",
)
ADOPTION_COSTS = ("training-free", "needs-calibration", "needs-fine-tuning", "needs-pre-training")
RELATION_KINDS = ("builds_on", "improves", "compared_with")
ROOTS = ("Model-Centric", "Data-Centric", "LLM Frameworks")

REQUIRED_FIELDS = ("id", "name", "aliases", "path", "summary", "year", "citation", "stages", "acts_on", "adoption_cost")
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def sentence_count(text: str) -> int:
    """Count sentences, ignoring periods inside abbreviations, numbers and names like 'LLM.int8'."""
    return len(re.findall(r"[.!?](?=\s+[A-Z(\"']|\s*$)", text.strip()))


def validate_technique(entry: dict) -> list[str]:
    """Return human-readable problems with one technique entry (empty when it is valid)."""
    problems: list[str] = []
    ident = entry.get("id", "<missing id>")
    for name in REQUIRED_FIELDS:
        if name not in entry or entry[name] in (None, ""):
            problems.append(f"{ident}: missing field {name!r}")
    if problems:
        return problems
    if not _ID.match(str(entry["id"])):
        problems.append(f"{ident}: id must be lowercase kebab-case")
    path = entry["path"]
    if not isinstance(path, list) or len(path) < 2 or path[0] not in ROOTS:
        problems.append(f"{ident}: path must be a list starting with one of {ROOTS}")
    if not isinstance(entry["aliases"], list):
        problems.append(f"{ident}: aliases must be a list")
    summary = str(entry["summary"]).strip()
    if not summary:
        problems.append(f"{ident}: empty summary")
    elif not 2 <= sentence_count(summary) <= 4:
        problems.append(f"{ident}: summary has {sentence_count(summary)} sentences, want 2-4")
    if not isinstance(entry["year"], int) or not 1990 <= entry["year"] <= 2030:
        problems.append(f"{ident}: year must be an integer year")
    for name, allowed in (("stages", STAGES), ("acts_on", ACTS_ON)):
        values = entry[name]
        if not isinstance(values, list) or not values or any(v not in allowed for v in values):
            problems.append(f"{ident}: {name} must be a non-empty list drawn from {allowed}, got {values!r}")
    if entry["adoption_cost"] not in ADOPTION_COSTS:
        problems.append(f"{ident}: adoption_cost must be one of {ADOPTION_COSTS}")
    for result in entry.get("results") or []:
        if not isinstance(result, dict) or not {"metric", "value", "setting"} <= set(result):
            problems.append(f"{ident}: each result needs metric, value and setting")
    relations = entry.get("relations") or {}
    if not isinstance(relations, dict) or any(k not in RELATION_KINDS for k in relations):
        problems.append(f"{ident}: relations keys must be among {RELATION_KINDS}")
    if not isinstance(entry.get("libraries") or [], list):
        problems.append(f"{ident}: libraries must be a list")
    return problems
