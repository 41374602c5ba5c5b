"""Check one or more catalog section files: schema, citations, originality, duplicate ids.

Usage: python scripts/check_catalog_section.py catalog/data/techniques/*.yaml
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catalog.originality import copied_runs, shingles  # noqa: E402
from catalog.references import CitationError, ReferenceIndex, parse_reference_list  # noqa: E402
from catalog.schema import validate_technique  # noqa: E402

SURVEY = ROOT.parent / "shared" / "seed" / "efficient_llms_survey.txt"


def main(paths: list[str]) -> int:
    survey = SURVEY.read_text(encoding="utf-8")
    index = ReferenceIndex(parse_reference_list(survey))
    source = shingles(survey)
    problems: list[str] = []
    ids: Counter[str] = Counter()
    taxonomy_paths = set()
    entries = []
    for path in paths:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        for node in data.get("taxonomy", []):
            taxonomy_paths.add(tuple(node["path"]))
            for run in copied_runs(node.get("description", ""), source):
                problems.append(f"{path}: taxonomy {node['path'][-1]}: copied run: {run!r}")
        for entry in data.get("techniques", []):
            entries.append(entry)
            ids[entry.get("id")] += 1
            problems += validate_technique(entry)
            try:
                index.resolve(str(entry.get("citation", "")))
            except CitationError as err:
                problems.append(f"{entry.get('id')}: {err}")
            for run in copied_runs(str(entry.get("summary", "")), source):
                problems.append(f"{entry.get('id')}: summary copies the survey: {run!r}")
    for entry in entries:
        path = tuple(entry.get("path", []))
        if path and path not in taxonomy_paths:
            problems.append(f"{entry.get('id')}: path {list(path)} is not declared in any taxonomy list given")
        for kind, targets in (entry.get("relations") or {}).items():
            for target in targets or []:
                if target not in ids:
                    problems.append(f"{entry.get('id')}: {kind} -> {target!r} is not an id in the files given")
    problems += [f"duplicate id {i!r} ({n} times)" for i, n in ids.items() if n > 1]
    for line in problems:
        print(line)
    print(f"{len(entries)} techniques, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
