"""The catalog's data schema: allowed values and validators used by the loader and the tests.

The field contract (which fields an entry may carry, and the links files) is described in CATALOG_SCHEMA.md
at the workspace root and summarised in docs/METHOD.md ("Catalog").
"""

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
# Inference engines whose support for a technique an entry may record, each with a documentation URL.
ENGINES = ("vllm", "sglang", "tensorrt-llm", "llama.cpp", "transformers")
# The survey appeared in December 2023 (arXiv 2312.03863); entries added after it are dated 2024 or later.
SURVEY_YEAR = 2023

REQUIRED_FIELDS = ("id", "name", "aliases", "path", "summary", "year", "citation", "stages", "acts_on", "adoption_cost")
# Fields a links file (catalog/data/links/*.yaml) may set on an existing entry.
LINK_FIELDS = ("venue", "arxiv", "paper_url", "code_url", "engines")
# An entry that carries its own bibliographic record (a paper outside the survey's reference list) needs all four.
OWN_REFERENCE_FIELDS = ("title", "authors", "venue", "paper_url")
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# New-style arXiv ids: YYMM.NNNNN since 2015, YYMM.NNNN before; no version suffix.
ARXIV_ID = re.compile(r"^\d{4}\.\d{4,5}$")


def sentence_count(text: str) -> int:
    """Count sentences, ignoring periods inside abbreviations, numbers and names like 'LLM.int8'."""
    return len(re.findall(r"[.!?](?=\s+[A-Z(\"']|\s*$)", text.strip()))


def _is_https(value: object) -> bool:
    return isinstance(value, str) and value.startswith("https://") and len(value) > len("https://") and " " not in value


def validate_links(ident: str, fields: dict) -> list[str]:
    """Problems with the link fields (venue, arxiv, paper_url, code_url, engines) of one entry or links record."""
    problems: list[str] = []
    if "venue" in fields and (not isinstance(fields["venue"], str) or not fields["venue"].strip()):
        problems.append(f"{ident}: venue must be non-empty text such as 'ICML 2024' or 'arXiv 2024'")
    if "arxiv" in fields and not (isinstance(fields["arxiv"], str) and ARXIV_ID.match(fields["arxiv"])):
        problems.append(f"{ident}: arxiv must be a bare arXiv id such as '2401.15077' (no URL, no version), "
                        f"got {fields['arxiv']!r}")
    for name in ("paper_url", "code_url"):
        if name in fields and not _is_https(fields[name]):
            problems.append(f"{ident}: {name} must be a URL starting with https://, got {fields[name]!r}")
    if "engines" in fields:
        engines = fields["engines"]
        if not isinstance(engines, dict) or not engines:
            problems.append(f"{ident}: engines must be a mapping engine -> documentation URL")
        else:
            for engine, url in engines.items():
                if engine not in ENGINES:
                    problems.append(f"{ident}: engine {engine!r} is not one of {ENGINES}")
                elif not _is_https(url):
                    problems.append(f"{ident}: engines.{engine} must be a documentation URL starting with https://")
    return problems


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
    problems += validate_links(ident, entry)
    problems += _validate_own_reference(ident, entry)
    return problems


def _validate_own_reference(ident: str, entry: dict) -> list[str]:
    problems: list[str] = []
    if "title" in entry and (not isinstance(entry["title"], str) or not entry["title"].strip()):
        problems.append(f"{ident}: title must be the paper's exact title")
    authors = entry.get("authors")
    if authors is not None and (not isinstance(authors, list) or not authors
                                or not all(isinstance(a, str) and a.strip() for a in authors)):
        problems.append(f"{ident}: authors must be a non-empty list of names (up to 6, then 'et al.')")
    if entry.get("title"):
        missing = [name for name in OWN_REFERENCE_FIELDS if not entry.get(name)]
        if missing:
            problems.append(f"{ident}: an entry with its own title also needs {', '.join(missing)}")
    since = entry.get("since_survey", False)
    if not isinstance(since, bool):
        problems.append(f"{ident}: since_survey must be true or false")
    elif since:
        if isinstance(entry["year"], int) and entry["year"] <= SURVEY_YEAR:
            problems.append(f"{ident}: since_survey entries are dated after {SURVEY_YEAR}, got {entry['year']}")
        if not entry.get("title"):
            problems.append(f"{ident}: since_survey entries need title, authors, venue and paper_url")
    if entry.get("engines") and "inference" not in (entry.get("stages") or []):
        problems.append(f"{ident}: engines are recorded only for inference techniques")
    return problems
