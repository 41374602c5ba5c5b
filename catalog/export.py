"""Export techniques as JSON, CSV or BibTeX."""

from __future__ import annotations

import csv
import io
import json
import re

from catalog.core import Catalog, Technique
from catalog.references import Reference

_LIST_SEPARATOR = "; "


def bibtex_key(reference: Reference) -> str:
    surname = re.sub(r"[^A-Za-z]", "", reference.authors[0].split()[-1]) if reference.authors else "anon"
    first_word = next((w for w in re.findall(r"[A-Za-z0-9]+", reference.title)), "untitled")
    return f"{surname.lower()}{reference.year_label or 'nd'}{first_word.lower()}"


def _bibtex_escape(text: str) -> str:
    return text.replace("\\", "").replace("{", "").replace("}", "").replace("&", r"\&")


def to_bibtex(reference: Reference) -> str:
    """One BibTeX entry for a reference, typed by its venue."""
    venue = reference.venue or ""
    if re.search(r"conference|proceedings|symposium|workshop|neurips|icml|iclr|acl|emnlp", venue, re.I):
        kind, venue_field = "inproceedings", "booktitle"
    elif venue:
        kind, venue_field = "article", "journal"
    else:
        kind, venue_field = "misc", "howpublished"
    fields = [
        ("author", " and ".join(reference.authors)),
        ("title", "{" + _bibtex_escape(reference.title) + "}"),
        (venue_field, _bibtex_escape(venue)),
        ("year", str(reference.year) if reference.year else ""),
        ("eprint", reference.arxiv_id or ""),
        ("archivePrefix", "arXiv" if reference.arxiv_id else ""),
        ("url", reference.url or ""),
    ]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@{kind}{{{bibtex_key(reference)},\n{body}\n}}\n"


def techniques_bibtex(techniques: list[Technique]) -> str:
    seen, entries = set(), []
    for technique in techniques:
        key = bibtex_key(technique.reference)
        if key not in seen:
            seen.add(key)
            entries.append(to_bibtex(technique.reference))
    return "\n".join(entries)


def techniques_csv(techniques: list[Technique]) -> str:
    buffer = io.StringIO()
    columns = ["id", "name", "aliases", "path", "year", "citation", "stages", "acts_on", "adoption_cost",
               "libraries", "summary", "title", "url", "venue", "arxiv", "code_url", "since_survey", "engines"]
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for t in techniques:
        writer.writerow({
            "id": t.id, "name": t.name, "aliases": _LIST_SEPARATOR.join(t.aliases), "path": t.breadcrumb,
            "year": t.year, "citation": t.citation, "stages": _LIST_SEPARATOR.join(t.stages),
            "acts_on": _LIST_SEPARATOR.join(t.acts_on), "adoption_cost": t.adoption_cost,
            "libraries": _LIST_SEPARATOR.join(t.libraries), "summary": t.summary,
            "title": t.reference.title, "url": t.paper_link or "", "venue": t.venue or "", "arxiv": t.arxiv or "",
            "code_url": t.code_url or "", "since_survey": "yes" if t.since_survey else "no",
            "engines": _LIST_SEPARATOR.join(t.engines),
        })
    return buffer.getvalue()


def catalog_json(catalog: Catalog, techniques: list[Technique] | None = None) -> str:
    """The whole catalog (or a selection of techniques) as one JSON object."""
    chosen = catalog.techniques if techniques is None else techniques
    payload = {
        "techniques": [t.to_dict() for t in chosen],
        "frameworks": list(catalog.frameworks),
        "pretraining_costs": list(catalog.pretraining_costs),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)
