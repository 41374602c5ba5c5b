"""Check the recommender's data files: required fields present, every row sourced, ids consistent.

Usage: python scripts/check_recommender_data.py   (exit status 1 and one line per problem when a check fails)

Rules: every CSV row has an https source URL, except field_cases rows whose notes start with "[U" (a case the
project tracks whose primary source was not located); every new YAML preset names a URL or a file under
tests/data/field_cases, or is marked unverified ("[U" in its source or confidence U); weight formats named by engines.yaml
exist in recommender/formats.py; the two weight-format vocabularies agree.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "recommender" / "data"
sys.path.insert(0, str(ROOT))

from common.formats import WEIGHT_FORMAT_IDS  # noqa: E402
from recommender.formats import FORMATS  # noqa: E402

MODEL_KEYS = {"id", "name", "params_b", "layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab",
              "context", "source"}
GPU_KEYS = {"id", "name", "memory_gib", "bandwidth_gbps", "fp16_tflops", "confidence", "source"}
CSV_COLUMNS = {
    "measurements.csv": {"id", "source_id", "source_url", "model", "gpu", "engine", "weights", "metric", "value",
                         "unit"},
    "measurements_2025.csv": {"id", "source_id", "source_url", "model", "gpu", "engine", "weights", "metric",
                              "value", "unit"},
    "field_cases.csv": {"case_id", "kind", "inputs_json", "quantity", "expected", "unit", "source_url", "notes"},
    "finetune_measurements.csv": {"id", "source_id", "source_url", "model", "method", "metric", "value", "unit"},
    "quality_deltas.csv": {"id", "format_id", "model", "benchmark", "delta", "source_url", "confidence"},
}


def sourced(text: str) -> bool:
    return "http" in text or "tests/data/field_cases/" in text or "[U" in text


def check() -> list[str]:
    problems: list[str] = []
    if tuple(FORMATS) != WEIGHT_FORMAT_IDS:
        problems.append("recommender/formats.py FORMATS and common/formats.py WEIGHT_FORMAT_IDS differ")
    for name in ("models.yaml", "models_2025.yaml"):
        seen = set()
        for row in yaml.safe_load((DATA / name).read_text()):
            missing = MODEL_KEYS - set(row)
            if missing:
                problems.append(f"{name} {row.get('id')}: missing {sorted(missing)}")
            if row.get("id") in seen:
                problems.append(f"{name}: duplicate id {row['id']}")
            seen.add(row.get("id"))
            if not str(row.get("source", "")).strip():
                problems.append(f"{name} {row.get('id')}: empty source")
    gpu_ids = set()
    for row in yaml.safe_load((DATA / "gpus.yaml").read_text()):
        missing = GPU_KEYS - set(row)
        if missing:
            problems.append(f"gpus.yaml {row.get('id')}: missing {sorted(missing)}")
        if row.get("confidence") not in ("V", "V2", "U"):
            problems.append(f"gpus.yaml {row.get('id')}: confidence must be V, V2 or U")
        gpu_ids.add(row["id"])
    for row in yaml.safe_load((DATA / "gpu_flags.yaml").read_text()):
        if row["id"] not in gpu_ids:
            problems.append(f"gpu_flags.yaml: {row['id']} is not a gpus.yaml id")
        if not sourced(row.get("source", "")):
            problems.append(f"gpu_flags.yaml {row['id']}: no source URL")
    for row in yaml.safe_load((DATA / "engines.yaml").read_text()):
        if not str(row.get("docs_url", "")).startswith("https://"):
            problems.append(f"engines.yaml {row.get('id')}: docs_url must be an https URL")
        unknown = [f for f in row.get("weight_formats", []) if f not in FORMATS]
        if unknown:
            problems.append(f"engines.yaml {row['id']}: unknown weight formats {unknown}")
    for entry, spec in yaml.safe_load((DATA / "engine_options.yaml").read_text()).items():
        if not str(spec.get("docs", "")).startswith("https://"):
            problems.append(f"engine_options.yaml {entry}: docs must be an https URL")
        for opt in spec.get("options", []):
            if "name" not in opt or not isinstance(opt.get("takes_value"), bool):
                problems.append(f"engine_options.yaml {entry}: option {opt} needs name and boolean takes_value")
    for name, columns in CSV_COLUMNS.items():
        with open(DATA / name, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = columns - set(reader.fieldnames or [])
            if missing:
                problems.append(f"{name}: missing columns {sorted(missing)}")
                continue
            for row in reader:
                url = row["source_url"].strip()
                exempt = name == "field_cases.csv" and row["notes"].startswith("[U")
                if not url.startswith("https://") and not exempt:
                    problems.append(f"{name} row {row.get('id') or row.get('case_id')}: source_url must be https")
    return problems


if __name__ == "__main__":
    found = check()
    for line in found:
        print(line)
    print(f"{len(found)} problem(s)")
    sys.exit(1 if found else 0)
