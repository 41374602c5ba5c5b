"""Load the catalog's data files into typed records: techniques, taxonomy, frameworks and Table 1."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path

import yaml

from catalog.references import Reference, ReferenceIndex
from catalog.schema import LINK_FIELDS, validate_links, validate_technique

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
    venue: str | None = None
    arxiv: str | None = None
    paper_url: str | None = None
    code_url: str | None = None
    since_survey: bool = False
    title: str | None = None
    authors: tuple[str, ...] = ()
    engines: dict = field(default_factory=dict)

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
        return bool(self.libraries or self.code_url)

    @property
    def paper_link(self) -> str | None:
        """The entry's paper URL, else the survey reference's URL, else None."""
        return self.paper_url or self.reference.url

    def to_dict(self) -> dict:
        data = asdict(self)
        data["reference"] = self.reference.to_dict()
        data["reference"].pop("raw", None)
        for name in ("aliases", "path", "stages", "acts_on", "libraries", "tags", "results", "authors"):
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


def _own_reference(entry: dict) -> Reference:
    """The bibliographic record of an entry whose paper is outside the survey's reference list."""
    return Reference(
        key=entry["citation"], authors=list(entry["authors"]), title=" ".join(entry["title"].split()),
        venue=entry["venue"], year=entry["year"], year_label=str(entry["year"]), arxiv_id=entry.get("arxiv"),
        url=entry["paper_url"],
    )


def _build_technique(entry: dict, index: ReferenceIndex) -> Technique:
    problems = validate_technique(entry)
    if problems:
        raise CatalogError("; ".join(problems))
    if entry.get("title"):
        reference = _own_reference(entry)
    else:
        reference = index.resolve(entry["citation"], f"{entry['name']} {entry['summary']}")
        # a survey reference without a link borrows the entry's own (from the entry or a links file)
        if not reference.url and entry.get("paper_url"):
            reference = replace(reference, url=entry["paper_url"], arxiv_id=reference.arxiv_id or entry.get("arxiv"))
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
        reference=reference,
        results=tuple(entry.get("results") or ()),
        relations={k: tuple(v or ()) for k, v in (entry.get("relations") or {}).items() if v},
        libraries=tuple(entry.get("libraries") or ()),
        tags=tuple(entry.get("tags") or ()),
        venue=entry.get("venue"),
        arxiv=entry.get("arxiv") or reference.arxiv_id,
        paper_url=entry.get("paper_url"),
        code_url=entry.get("code_url"),
        since_survey=bool(entry.get("since_survey", False)),
        title=entry.get("title"),
        authors=tuple(entry.get("authors") or ()),
        engines=dict(entry.get("engines") or {}),
    )


def load_links(data_dir: Path) -> dict[str, dict]:
    """Merge every links file (data_dir/links/*.yaml, a mapping id -> link fields) in name order.

    Returns {id: {field: value}} plus, under each id, the file each field came from (key "_files").
    Raises CatalogError naming the file and id for an unknown field, a bad value, or two files that
    give one id different values for the same field.
    """
    merged: dict[str, dict] = {}
    for path in sorted((data_dir / "links").glob("*.yaml")):
        data = _read_yaml(path)
        if not isinstance(data, dict):
            raise CatalogError(f"links/{path.name}: expected a mapping of technique id -> link fields")
        for ident, fields in data.items():
            where = f"links/{path.name}: {ident}"
            if not isinstance(fields, dict):
                raise CatalogError(f"{where}: expected a mapping of link fields, got {type(fields).__name__}")
            unknown = sorted(set(fields) - set(LINK_FIELDS))
            if unknown:
                raise CatalogError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(LINK_FIELDS)}")
            problems = validate_links(where, fields)
            if problems:
                raise CatalogError("; ".join(problems))
            record = merged.setdefault(str(ident), {"_files": {}})
            for name, value in fields.items():
                if name in record and record[name] != value:
                    raise CatalogError(f"{where}: {name} conflicts with links/{record['_files'][name]} "
                                       f"({record[name]!r} vs {value!r})")
                record[name] = value
                record["_files"][name] = path.name
    return merged


def _merge_links(entries: list[dict], links: dict[str, dict]) -> list[dict]:
    ids = {e.get("id") for e in entries}
    for ident, record in links.items():
        if ident not in ids:
            files = sorted(set(record["_files"].values()))
            raise CatalogError(f"links/{', links/'.join(files)}: id {ident!r} is not a technique entry")
    merged = []
    for entry in entries:
        record = links.get(entry.get("id"))
        if record:
            # the entry's own value wins over a links file
            entry = {**{k: v for k, v in record.items() if k != "_files"}, **entry}
        merged.append(entry)
    return merged


def load_catalog_from(data_dir: Path) -> Catalog:
    """Load and cross-check every data file under `data_dir`."""
    references = load_references(data_dir)
    index = ReferenceIndex(references)
    taxonomy: dict[tuple[str, ...], TaxonomyNode] = {}
    entries: list[dict] = []
    for path in sorted((data_dir / "techniques").glob("*.yaml")):
        data = _read_yaml(path)
        for node in data.get("taxonomy") or []:
            key = tuple(node["path"])
            taxonomy.setdefault(key, TaxonomyNode(key, " ".join(str(node.get("description", "")).split())))
        for entry in data.get("techniques") or []:
            if not isinstance(entry, dict):
                raise CatalogError(f"{path.name}: each technique must be a mapping, got {entry!r:.80}")
            entries.append(entry)
    techniques = [_build_technique(e, index) for e in _merge_links(entries, load_links(data_dir))]
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
