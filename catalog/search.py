"""Full-text search over the catalog, ranked so that an exact name comes first and tolerant of typos.

Scoring: an exact name or alias match wins outright; then name/alias prefixes; then a weighted sum over
query words, where each word is matched to the index vocabulary with a typo-tolerant ratio (rapidfuzz).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from catalog.core import Catalog, Technique

# Common shorthands users type; expanded before matching.
_SYNONYMS = {
    "attn": "attention",
    "quant": "quantization",
    "quantisation": "quantization",
    "kd": "distillation",
    "moe": "mixture experts",
    "peft": "parameter efficient fine tuning",
    "spec": "speculative",
    "kv": "kv",
}
MAX_QUERY_CHARS = 500
_STOPWORDS = {"a", "an", "and", "the", "of", "for", "in", "on", "to", "with", "via", "by", "is", "its", "it"}
_FIELD_WEIGHTS = {"name": 4.0, "alias": 3.5, "tag": 2.0, "path": 1.5, "summary": 1.0}


def _max_edits(word: str) -> int:
    """Typos tolerated: one edit (a transposition counts as one) up to 5 letters, then more."""
    return 1 if len(word) <= 5 else 2 if len(word) <= 9 else 3


def normalize(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def compact(text: str) -> str:
    return normalize(text).replace(" ", "")


def _tokens(text: str) -> list[str]:
    # "FlashAttention" also yields "flash" and "attention", so word queries reach camel-case names.
    split_camel = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    words = normalize(text).split() + [w for w in normalize(split_camel).split()]
    return list(dict.fromkeys(w for w in words if w not in _STOPWORDS))


@dataclass(frozen=True)
class Hit:
    technique: Technique
    score: float


class SearchIndex:
    """An inverted index with per-field weights; build once per catalog and reuse."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._postings: dict[str, dict[int, float]] = defaultdict(dict)
        self._names: list[list[str]] = []
        for position, technique in enumerate(catalog.techniques):
            fields = [("name", technique.name), ("summary", technique.summary), ("path", " ".join(technique.path))]
            fields += [("alias", a) for a in technique.aliases] + [("tag", t) for t in technique.tags]
            fields += [("tag", a) for a in technique.acts_on + technique.stages]
            for field_name, text in fields:
                for word in _tokens(text):
                    weight = _FIELD_WEIGHTS[field_name]
                    if self._postings[word].get(position, 0.0) < weight:
                        self._postings[word][position] = weight
            self._names.append([compact(n) for n in (technique.name, technique.id, *technique.aliases)])
        self._vocabulary = list(self._postings)

    def _expand(self, word: str) -> list[tuple[str, float]]:
        """Vocabulary words close to `word`, with a similarity in [0, 1]."""
        if word in self._postings:
            matches = [(word, 1.0)]
        else:
            matches = []
        if len(word) >= 4:
            edits = _max_edits(word)
            found = process.extract(word, self._vocabulary, scorer=OSA.distance, score_cutoff=edits, limit=5)
            matches += [(m[0], 1.0 - 0.5 * m[1] / edits) for m in found if m[0] != word]
            # prefixes: "quantiz" -> "quantization"
            matches += [(v, 0.9) for v in self._vocabulary if v.startswith(word) and v != word][:10]
        return matches

    def _name_score(self, query_compact: str, position: int) -> float:
        names = self._names[position]
        if query_compact in names:
            return 1000.0
        if len(query_compact) >= 3 and any(
            n.startswith(query_compact) and len(query_compact) >= 0.5 * len(n) for n in names
        ):
            return 500.0
        if len(query_compact) >= 4:
            edits = min(OSA.distance(query_compact, n) for n in names)
            if edits <= _max_edits(query_compact):
                return 300.0 - 50.0 * edits
        best = max(fuzz.ratio(query_compact, n) for n in names)
        return 200.0 * best / 100.0 if best >= 90 else 0.0

    def search(self, query: str, limit: int | None = None) -> list[Hit]:
        if not isinstance(query, str):
            raise ValueError(f"search query must be text, got {type(query).__name__}")
        if len(query) > MAX_QUERY_CHARS:
            raise ValueError(f"search query is too long ({len(query)} characters); keep it under {MAX_QUERY_CHARS}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive whole number of results, got {limit!r}")
        words = []
        for word in _tokens(query):
            words += _SYNONYMS.get(word, word).split()
        if not words:
            return [Hit(t, 0.0) for t in self.catalog.techniques][:limit]
        scores: dict[int, float] = defaultdict(float)
        matched: dict[int, int] = defaultdict(int)
        for word in words:
            per_doc: dict[int, float] = {}
            for vocab_word, similarity in self._expand(word):
                for position, weight in self._postings[vocab_word].items():
                    per_doc[position] = max(per_doc.get(position, 0.0), weight * similarity)
            for position, value in per_doc.items():
                scores[position] += value
                matched[position] += 1
        query_compact = compact(query)
        expanded_compact = "".join(words)
        candidates = set(scores) | {i for i in range(len(self._names)) if query_compact in self._names[i]}
        hits = []
        for position in candidates:
            coverage = matched[position] / len(words)
            name_score = max(self._name_score(query_compact, position), self._name_score(expanded_compact, position))
            score = scores[position] * coverage + name_score
            if score > 0:
                hits.append(Hit(self.catalog.techniques[position], round(score, 3)))
        hits.sort(key=lambda h: (-h.score, h.technique.name.lower()))
        return hits[:limit] if limit else hits


def filter_techniques(
    techniques: list[Technique],
    *,
    areas: list[str] | None = None,
    categories: list[str] | None = None,
    stages: list[str] | None = None,
    acts_on: list[str] | None = None,
    adoption_costs: list[str] | None = None,
    year_range: tuple[int, int] | None = None,
    open_source_only: bool = False,
) -> list[Technique]:
    """Keep techniques that match every given filter (each list filter matches any of its values)."""
    if year_range is not None and year_range[0] > year_range[1]:
        raise ValueError(f"year range is reversed: {year_range[0]} > {year_range[1]}")

    def keep(t: Technique) -> bool:
        return (
            (not areas or t.area in areas)
            and (not categories or t.category in categories)
            and (not stages or bool(set(stages) & set(t.stages)))
            and (not acts_on or bool(set(acts_on) & set(t.acts_on)))
            and (not adoption_costs or t.adoption_cost in adoption_costs)
            and (year_range is None or year_range[0] <= t.year <= year_range[1])
            and (not open_source_only or t.has_open_source)
        )

    return [t for t in techniques if keep(t)]
