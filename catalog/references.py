"""Parse the survey's reference list into bibliographic records and resolve in-text citations.

The survey cites in natbib author-year style ("Frantar et al., 2023", "Frantar & Alistarh, 2022",
"Kim et al., 2023d"). The reference list prints the same disambiguating letter after the year, so a
citation resolves by (first-author surname, second surname when there are two authors, year+letter).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field, replace

_YEAR = re.compile(r"\b((?:19|20)\d\d)([a-z]?)\b")
_ARXIV = re.compile(r"(?:arXiv:|abs/|arxiv\.org/(?:abs|pdf)/)(\d{4}\.\d{4,5})", re.IGNORECASE)
_URL = re.compile(r"<?(https?://[^\s>]+)>?")
_CITATION = re.compile(
    r"^(?P<first>[^,&]+?)(?:\s+(?:&|and)\s+(?P<second>[^,]+?)|\s+et al\.?)?,\s*(?P<year>(?:19|20)\d\d[a-z]?)$"
)


# Reference-list entries whose text the survey's PDF extraction garbled or cut, keyed by the key the parser
# derives. Each value replaces the parsed fields; titles, venues and arXiv ids come from the maintained list
# (catalog/data/maintained_list.json, AIoT-MLSys-Lab/Efficient-LLMs-Survey README) for the same paper.
CORRECTIONS: dict[str, dict] = {
    "Peng et al., 2023b": {"title": "RWKV: Reinventing RNNs for the Transformer Era"},
    "Chen et al., 2023d": {"title": "AlpaGasus: Training a better Alpaca with fewer data"},
    "Chen et al., n.d.": {
        "title": "Maybe only 0.5% data is needed: A preliminary exploration of low training data instruction tuning",
        "venue": "arXiv preprint arXiv:2305.09246", "year": 2023, "year_label": "2023c", "arxiv_id": "2305.09246",
        "url": "https://arxiv.org/abs/2305.09246", "incomplete": False,
    },
    "Luo et al., 2023": {"title": "Dr.ICL: Demonstration-retrieved in-context learning"},
    "Liu et al., 2022c": {
        "title": "What makes good in-context examples for GPT-3?",
        "venue": "Proceedings of Deep Learning Inside Out (DeeLIO 2022): The 3rd Workshop on Knowledge Extraction and "
                 "Integration for Deep Learning Architectures",
        "arxiv_id": "2101.06804", "url": "https://arxiv.org/abs/2101.06804",
    },
    "Min et al., 2022": {
        "title": "Rethinking the role of demonstrations: What makes in-context learning work?", "venue": "EMNLP",
        "url": "https://aclanthology.org/2022.emnlp-main.759.pdf",
    },
}


class CitationError(ValueError):
    """Raised when an in-text citation cannot be parsed or resolved."""


@dataclass(frozen=True)
class Reference:
    key: str
    authors: list[str]
    title: str
    venue: str
    year: int | None
    year_label: str | None
    arxiv_id: str | None = None
    url: str | None = None
    incomplete: bool = False
    raw: str = field(default="", repr=False)

    def to_dict(self) -> dict:
        return asdict(self)


def _fold(text: str) -> str:
    """Lower-case and strip accents, for tolerant surname matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower().strip()


def _surname(author: str) -> str:
    tokens = author.replace("et al.", "").split()
    return tokens[-1] if tokens else author


def _split_authors_and_rest(body: str) -> tuple[str, str]:
    """Split "A, B, and C. Title. Venue" at the first period that does not end an initial."""
    for match in re.finditer(r"\.\s", body):
        before = body[: match.start()]
        last_token = before.split()[-1] if before.split() else ""
        if len(last_token) == 1 and last_token.isalpha():
            continue  # an initial such as "P." in "David P. Woodruff"
        if re.fullmatch(r"[A-Z]\.[A-Z]", last_token):
            continue  # "J.E" style double initials
        return before, body[match.end():]
    return body, ""


def _parse_authors(author_text: str) -> list[str]:
    text = author_text.replace(", and ", ", ").replace(" and ", ", ")
    authors = [a.strip() for a in text.split(",") if a.strip()]
    return authors


def _format_key(authors: list[str], year_label: str) -> str:
    many = len(authors) >= 3 or any("et al" in a for a in authors)
    if many:
        return f"{_surname(authors[0])} et al., {year_label}"
    if len(authors) == 2:
        return f"{_surname(authors[0])} & {_surname(authors[1])}, {year_label}"
    return f"{_surname(authors[0])}, {year_label}"


def parse_reference(line: str) -> Reference:
    """Parse one reference-list entry (without the leading "- ")."""
    body = line.strip()
    author_text, rest = _split_authors_and_rest(body)
    authors = _parse_authors(author_text)
    title, _, tail = rest.partition(". ")
    if not tail and title.endswith("."):
        title = title[:-1]
    url_match = _URL.search(body)
    url = url_match.group(1).rstrip(".,") if url_match else None
    # DOIs ("10.18653/v1/2023.acl-demo.26") and access dates carry years that are not the publication year.
    tail_wo_url = re.sub(r"doi:\s*\S+|Accessed:\s*\S+", "", _URL.sub("", tail))
    years = list(_YEAR.finditer(tail_wo_url)) or list(_YEAR.finditer(_URL.sub("", rest)))
    if not years:
        # Two entries of the survey's text are cut off mid-list; keep what is there and flag them.
        return Reference(
            key=_format_key(authors, "n.d."), authors=authors, title=title.strip().strip("."), venue="",
            year=None, year_label=None, arxiv_id=None, url=url, incomplete=True, raw=body,
        )
    year_match = years[-1]
    venue_match = re.search(r"\*([^*]+)\*", tail)
    if venue_match:
        venue = venue_match.group(1).strip()
    else:
        venue = tail_wo_url[: year_match.start()].strip(" .,")
        venue = re.sub(r"\s*(URL|Accessed:.*)$", "", venue).strip(" .,")
    venue = re.sub(r"\bURL\b.*$", "", venue).strip(" .,")
    title = re.sub(r",\s*(?:19|20)\d\d[a-z]?\.?$", "", title.strip())
    arxiv = _ARXIV.search(body)
    year_label = year_match.group(1) + year_match.group(2)
    return Reference(
        key=_format_key(authors, year_label),
        authors=authors,
        title=title.strip().strip("."),
        venue=venue,
        year=int(year_match.group(1)),
        year_label=year_label,
        arxiv_id=arxiv.group(1) if arxiv else None,
        url=url or (f"https://arxiv.org/abs/{arxiv.group(1)}" if arxiv else None),
        raw=body,
    )


def parse_reference_list(survey_text: str) -> list[Reference]:
    """Parse every "- " entry after the "References" heading of the survey text."""
    _, sep, tail = survey_text.partition("\nReferences\n")
    if not sep:
        raise CitationError("the survey text has no 'References' section")
    parsed = [parse_reference(line[2:]) for line in tail.splitlines() if line.startswith("- ")]
    return [replace(ref, **CORRECTIONS[ref.key]) if ref.key in CORRECTIONS else ref for ref in parsed]


def parse_citation(citation: str) -> tuple[str, str | None, str]:
    """Split "Kim et al., 2023d" into (first surname, second surname or None, year label)."""
    match = _CITATION.match(citation.strip())
    if not match:
        raise CitationError(f"cannot parse citation {citation!r}; expected e.g. 'Frantar et al., 2023'")
    second = match.group("second")
    return match.group("first").strip(), second.strip() if second else None, match.group("year")


class ReferenceIndex:
    """Look up references by in-text citation."""

    def __init__(self, references: list[Reference]):
        self.references = references

    def resolve(self, citation: str, context: str = "") -> Reference:
        """Resolve a citation; `context` (e.g. the technique's name and summary) breaks ties between
        references that the survey itself cites identically (two "Sun et al., 2023" papers)."""
        same_key = [ref for ref in self.references if ref.key == citation]
        if len(same_key) == 1:
            return same_key[0]
        if len(same_key) > 1:
            return max(same_key, key=lambda ref: _overlap(ref.title, context))
        first, second, year_label = parse_citation(citation)
        candidates = [
            ref
            for ref in self.references
            if ref.year_label == year_label and _surname_matches(first, ref.authors[0])
        ]
        if second is not None:
            narrowed = [r for r in candidates if len(r.authors) > 1 and _surname_matches(second, r.authors[1])]
            candidates = narrowed or candidates
        if len(candidates) > 1:
            return max(candidates, key=lambda ref: _overlap(ref.title, context))
        if not candidates:
            # Fall back to a cut-off entry whose year is unknown but whose first author matches.
            candidates = [r for r in self.references if r.incomplete and _surname_matches(first, r.authors[0])]
        if not candidates:
            raise CitationError(f"citation {citation!r} matches no entry of the survey's reference list")
        return candidates[0]


def _surname_matches(cited: str, author: str) -> bool:
    cited_f, author_f = _fold(cited), _fold(author)
    return author_f == cited_f or author_f.endswith(" " + cited_f)


def _overlap(title: str, context: str) -> int:
    title_words = {w for w in re.findall(r"[a-z0-9]+", _fold(title)) if len(w) > 3}
    return len(title_words & set(re.findall(r"[a-z0-9]+", _fold(context))))
