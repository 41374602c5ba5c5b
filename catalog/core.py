"""Load the catalog's data files into typed records: techniques, taxonomy, frameworks and Table 1."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import yaml

from catalog.references import Reference, ReferenceIndex
from catalog.schema import validate_technique

DATA_DIR = Path(__file__).resolve().parent / "data"


class CatalogError(ValueError):
    """Raised when the catalog's data files are inconsistent."""


class UnknownTechniqueError(KeyError):
    """Raised for an id that is not in the catalog; carries the closest ids."""

    def __init__(self, technique_id: str, suggestions: list[str]):
        self.technique_id = technique_id
        self.suggestions = suggestions
        hint = f"; did you mean: {', '.join(suggestions)}?" if suggestions else ""
        shown = repr(technique_id) if len(technique_id) <= 60 else repr(technique_id[:57]) + "..."
        super().__init__(f"unknown technique id {shown}{hint}")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


@dataclass(frozen=True)
class Technique:
    id: str
    name: str
    aliases: tuple[str, ...]
    path: tuple[str, ...]
    summary: str
    year: int
    citation: str
    stages: tuple[str, ...]
    acts_on: tuple[str, ...]
    adoption_cost: str
    reference: Reference
    results: tuple[dict, ...] = ()
    relations: dict = field(default_factory=dict)
    libraries: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def area(self) -> str:
        return self.path[0]

    @property
    def category(self) -> str:
        return self.path[1] if len(self.path) > 1 else self.path[0]

    @property
    def breadcrumb(self) -> str:
        return " > ".join(self.path)

    @property
    def has_open_source(self) -> bool:
        return bool(self.libraries)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["reference"] = self.reference.to_dict()
        data["reference"].pop("raw", None)
        for name in ("aliases", "path", "stages", "acts_on", "libraries", "tags", "results"):
            data[name] = list(data[name])
        return data


@dataclass(frozen=True)
class TaxonomyNode:
    path: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Catalog:
    techniques: tuple[Technique, ...]
    taxonomy: tuple[TaxonomyNode, ...]
    frameworks: tuple[dict, ...]
    pretraining_costs: tuple[dict, ...]
    references: tuple[Reference, ...]

    def technique_ids(self) -> list[str]:
        return [t.id for t in self.techniques]

    @cached_property
    def _by_id(self) -> dict[str, Technique]:
        return {t.id: t for t in self.techniques}

    def get(self, technique_id: str) -> Technique:
        found = self._by_id.get(technique_id)
        if found is None:
            raise UnknownTechniqueError(technique_id, self.closest_ids(technique_id))
        return found

    def closest_ids(self, text: str, limit: int = 3) -> list[str]:
        from rapidfuzz import fuzz, process

        # ids are short: comparing only the first 100 characters keeps a hostile URL cheap
        matches = process.extract(text[:100].lower(), self.technique_ids(), scorer=fuzz.WRatio, limit=limit)
        return [m[0] for m in matches if m[1] >= 50]

    def categories(self) -> list[tuple[str, ...]]:
        return [n.path for n in self.taxonomy]

    def counts(self) -> dict[str, int]:
        return {
            "techniques": len(self.techniques),
            "categories": len(self.taxonomy),
            "frameworks": len(self.frameworks),
            "references": len(self.references),
        }

    def related(self, technique_id: str) -> dict[str, list[str]]:
        """Outgoing relations plus the reverse edges other techniques declare towards this one."""
        technique = self.get(technique_id)
        edges = {kind: list(ids) for kind, ids in technique.relations.items()}
        for other in self.techniques:
            for kind, ids in other.relations.items():
                if technique_id in ids:
                    edges.setdefault(f"{kind} (incoming)", []).append(other.id)
        return edges

    def often_combined_with(self, technique_id: str, limit: int = 5) -> list[tuple[str, int]]:
        """Techniques that share relation neighbours, libraries or stage with this one, by overlap count."""
        technique = self.get(technique_id)
        mine = _neighbourhood(technique)
        scores: Counter[str] = Counter()
        for other in self.techniques:
            if other.id == technique.id or other.category == technique.category:
                continue  # alternatives in the same category are competitors, not companions
            overlap = len(mine & _neighbourhood(other))
            if overlap:
                scores[other.id] = overlap
        return scores.most_common(limit)


def _neighbourhood(technique: Technique) -> set[str]:
    items = {f"lib:{lib.lower()}" for lib in technique.libraries}
    items |= {f"rel:{i}" for ids in technique.relations.values() for i in ids}
    items.add(f"rel:{technique.id}")
    return items


def _read_yaml(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise CatalogError(f"{path.name}: not valid YAML: {err}") from err


def load_references(data_dir: Path = DATA_DIR) -> list[Reference]:
    rows = json.loads((data_dir / "references.json").read_text(encoding="utf-8"))
    return [Reference(**row) for row in rows]


def _build_technique(entry: dict, index: ReferenceIndex) -> Technique:
    problems = validate_technique(entry)
    if problems:
        raise CatalogError("; ".join(problems))
    return Technique(
        id=entry["id"],
        name=entry["name"],
        aliases=tuple(entry.get("aliases") or ()),
        path=tuple(entry["path"]),
        summary=" ".join(str(entry["summary"]).split()),
        year=entry["year"],
        citation=entry["citation"],
        stages=tuple(entry["stages"]),
        acts_on=tuple(entry["acts_on"]),
        adoption_cost=entry["adoption_cost"],
        reference=index.resolve(entry["citation"], f"{entry['name']} {entry['summary']}"),
        results=tuple(entry.get("results") or ()),
        relations={k: tuple(v or ()) for k, v in (entry.get("relations") or {}).items() if v},
        libraries=tuple(entry.get("libraries") or ()),
        tags=tuple(entry.get("tags") or ()),
    )


def load_catalog_from(data_dir: Path) -> Catalog:
    """Load and cross-check every data file under `data_dir`."""
    references = load_references(data_dir)
    index = ReferenceIndex(references)
    taxonomy: dict[tuple[str, ...], TaxonomyNode] = {}
    techniques: list[Technique] = []
    for path in sorted((data_dir / "techniques").glob("*.yaml")):
        data = _read_yaml(path)
        for node in data.get("taxonomy") or []:
            key = tuple(node["path"])
            taxonomy.setdefault(key, TaxonomyNode(key, " ".join(str(node.get("description", "")).split())))
        techniques += [_build_technique(e, index) for e in data.get("techniques") or []]
    frameworks_file = data_dir / "frameworks.yaml"
    frameworks = tuple(_read_yaml(frameworks_file).get("frameworks") or ()) if frameworks_file.exists() else ()
    costs_file = data_dir / "pretraining_costs.csv"
    costs: tuple[dict, ...] = ()
    if costs_file.exists():
        with costs_file.open(encoding="utf-8", newline="") as handle:
            costs = tuple(csv.DictReader(handle))
    return Catalog(tuple(techniques), tuple(taxonomy.values()), frameworks, costs, tuple(references))


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The packaged catalog, loaded once per process."""
    return load_catalog_from(DATA_DIR)
