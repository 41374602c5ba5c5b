"""Rebuild the data files that are parsed mechanically from the survey text (references and Table 1)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from catalog.core import DATA_DIR
from catalog.references import parse_reference_list

# Table 1 columns as the survey prints them, tab-separated.
_TABLE1_HEADER = "Model\tParameter Size\tData Scale\tGPUs Cost\tTraining Time"
_HOURS_PER_DAY = 24


def _accelerator_count_and_type(cost: str) -> tuple[int | None, str]:
    match = re.match(r"^\s*(\d[\d,]*)\s+(.+?)\s*$", cost)
    if not match:
        return None, cost.strip() if cost.strip() != "-" else ""
    return int(match.group(1).replace(",", "")), match.group(2)


def _time_in_days(text: str) -> tuple[float | None, str]:
    """Return (days, kind): kind 'wall' for wall-clock days, 'device' when the survey gives device-days."""
    match = re.match(r"^\s*([\d,.]+)\s*(days|hours|GPU days)\s*$", text)
    if not match:
        return None, ""
    value = float(match.group(1).replace(",", ""))
    unit = match.group(2)
    if unit == "GPU days":
        return value, "device"
    return (value / _HOURS_PER_DAY if unit == "hours" else value), "wall"


def parse_table1(survey_text: str) -> list[dict]:
    """Parse the survey's Table 1 and compute accelerator-days (count x wall-clock days) where both are given."""
    start = survey_text.index(_TABLE1_HEADER) + len(_TABLE1_HEADER)
    rows = []
    for line in survey_text[start:].lstrip("\n").splitlines():
        if not line.strip():
            break
        model_cell, size, data_scale, cost, time = line.split("\t")
        model_match = re.match(r"^(.*?)\s*\((.+)\)\s*$", model_cell)
        model, citation = (model_match.group(1), model_match.group(2)) if model_match else (model_cell, "")
        count, accelerator = _accelerator_count_and_type(cost)
        days, kind = _time_in_days(time)
        if kind == "device":
            device_days = days
        elif count is not None and days is not None:
            device_days = round(count * days, 1)
        else:
            device_days = None
        rows.append(
            {
                "model": model.strip(),
                "citation": citation.strip(),
                "parameters": size.strip(),
                "data_scale": data_scale.strip(),
                "accelerators": cost.strip(),
                "accelerator_count": count if count is not None else "",
                "accelerator_type": accelerator,
                "training_time": time.strip(),
                "accelerator_days": device_days if device_days is not None else "",
            }
        )
    return rows


def write_references(survey_text: str, data_dir: Path = DATA_DIR) -> int:
    references = [ref.to_dict() for ref in parse_reference_list(survey_text)]
    target = data_dir / "references.json"
    target.write_text(json.dumps(references, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(references)


def write_table1(survey_text: str, data_dir: Path = DATA_DIR) -> int:
    rows = parse_table1(survey_text)
    with (data_dir / "pretraining_costs.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
