"""Technique effects (data/techniques.yaml): categories, catalog links, requirements, quality risk."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from .errors import unknown_id_error

DATA_FILE = Path(__file__).parent / "data" / "techniques.yaml"


@dataclass(frozen=True)
class Technique:
    id: str
    name: str
    category: str
    catalog_id: str | None
    source: str
    quality_tier: str
    quality_delta_pct: float | None
    quality_note: str = ""
    requires: dict = field(default_factory=dict)
    engines: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)   # category-specific effect fields

    @property
    def quality_risk(self) -> float:
        """Published % perplexity change when known, else the tier's ordinal score."""
        if self.quality_delta_pct is not None:
            return float(self.quality_delta_pct)
        return quality_tiers()[self.quality_tier]

def _technique_from_row(row: dict) -> Technique:
    quality = row.get("quality", {})
    known = {"id", "name", "category", "catalog_id", "source", "quality", "requires", "engines", "speed_note"}
    params = {k: v for k, v in row.items() if k not in known}
    if "speed_note" in row:
        params["speed_note"] = row["speed_note"]
    note = quality.get("measured_on") or quality.get("note") or ""
    return Technique(id=row["id"], name=row["name"], category=row["category"], catalog_id=row.get("catalog_id"),
                     source=row["source"], quality_tier=quality.get("tier", "low"),
                     quality_delta_pct=quality.get("delta_pct"), quality_note=note,
                     requires=row.get("requires") or {}, engines=tuple(row.get("engines") or ()), params=params)


@lru_cache(maxsize=1)
def _raw() -> dict:
    return yaml.safe_load(DATA_FILE.read_text())


@lru_cache(maxsize=1)
def techniques() -> dict[str, Technique]:
    """All techniques keyed by id."""
    return {row["id"]: _technique_from_row(row) for row in _raw()["techniques"]}


def technique(tid: str) -> Technique:
    table = techniques()
    if tid in table:
        return table[tid]
    raise unknown_id_error("technique", tid, list(table))


def native_weights_technique(model) -> Technique | None:
    """The technique for the model's own low-precision release (ModelSpec.native_weights, e.g. fp8 or mxfp4), or
    None for a model released in 16 bits or in a format with no such entry."""
    fmt = getattr(model, "native_weights", "")
    for t in techniques().values():
        if fmt and t.params.get("native") and t.params["weights"]["format"] == fmt:
            return t
    return None


def quality_tiers() -> dict[str, float]:
    return dict(_raw()["quality_tiers"])


def quality_tolerance(level: str) -> float:
    """Max total quality_risk allowed for 'lossless' | 'small' | 'aggressive'."""
    table = _raw()["quality_tolerance"]
    if level not in table:
        raise unknown_id_error("quality level", level, list(table))
    return float(table[level])


def catalog_ids(tids) -> list[str]:
    """Distinct non-null catalog ids for technique ids, in order."""
    out: list[str] = []
    for tid in tids:
        cid = techniques()[tid].catalog_id
        if cid and cid not in out:
            out.append(cid)
    return out
