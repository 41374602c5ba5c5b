"""How much of the survey's maintained paper list (catalog/data/maintained_list.json) the catalog covers.

A list paper is covered when some technique entry matches it by arXiv id (the entry's own id or its survey
reference's), or by normalised title: the list title equals the entry's paper title, its survey reference's
title, or (for "Name: subtitle" titles) the name before the colon equals the entry's name or an alias, or the
subtitle equals the reference title. Normalising folds case and accents and keeps only letters and digits.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from catalog.core import DATA_DIR, Catalog, CatalogError

MAINTAINED_LIST = DATA_DIR / "maintained_list.json"


def normalise_title(text: str) -> str:
    """Lower-case, accents folded, punctuation dropped, single spaces: 'LLM.int8()' -> 'llm int8'."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return " ".join(re.findall(r"[a-z0-9]+", folded))


@dataclass(frozen=True)
class ListPaper:
    title: str
    sections: tuple[tuple[str, ...], ...]
    year: int | None
    venue: str | None
    url: str
    arxiv: str | None


@dataclass(frozen=True)
class Coverage:
    total: int
    matched: dict[str, str]          # list title -> technique id
    unmatched: tuple[ListPaper, ...]
    source_commit: str

    @property
    def fraction(self) -> float:
        return len(self.matched) / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {
            "total": self.total, "matched": len(self.matched), "fraction": round(self.fraction, 4),
            "source_commit": self.source_commit,
            "unmatched": [{"title": p.title, "section": " > ".join(p.sections[0]), "year": p.year,
                           "arxiv": p.arxiv, "url": p.url} for p in self.unmatched],
        }


def load_maintained_list(path: Path = MAINTAINED_LIST) -> tuple[list[ListPaper], str]:
    """The snapshot's papers and the README commit it was taken from. Raises CatalogError if unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        papers = [ListPaper(p["title"], tuple(tuple(s) for s in p["sections"]), p.get("year"), p.get("venue"),
                            p["url"], p.get("arxiv")) for p in data["papers"]]
        return papers, data["source"]["commit"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CatalogError(f"{path.name}: cannot read the maintained-list snapshot ({err})") from err


def _split_name(title: str) -> tuple[str, str]:
    name, sep, rest = title.partition(":")
    return (normalise_title(name), normalise_title(rest)) if sep else ("", normalise_title(title))


def coverage(catalog: Catalog, path: Path = MAINTAINED_LIST) -> Coverage:
    """Match every paper of the maintained list to a technique entry (see the module docstring)."""
    papers, commit = load_maintained_list(path)
    by_arxiv: dict[str, str] = {}
    by_title: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for t in catalog.techniques:
        for arxiv in (t.arxiv, t.reference.arxiv_id):
            if arxiv:
                by_arxiv.setdefault(arxiv, t.id)
        for title in (t.title, t.reference.title):
            if title:
                by_title.setdefault(normalise_title(title), t.id)
        for name in (t.name, *t.aliases):
            if len(normalise_title(name)) >= 3:
                by_name.setdefault(normalise_title(name), t.id)
    matched: dict[str, str] = {}
    unmatched: list[ListPaper] = []
    for paper in papers:
        name, subtitle = _split_name(paper.title)
        hit = (by_arxiv.get(paper.arxiv or "") or by_title.get(normalise_title(paper.title))
               or by_title.get(subtitle) or (by_name.get(name) if name else None))
        if hit:
            matched[paper.title] = hit
        else:
            unmatched.append(paper)
    return Coverage(len(papers), matched, tuple(unmatched), commit)
