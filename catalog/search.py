"""Search over the catalog: SQLite FTS5 (porter stemming, BM25) for words, rapidfuzz for typos and near-names.

How a query is answered (each step is a small function below):
1. An exact id, name, alias or arXiv id ("2306.00978") comes first.
2. Filter phrases are recognised and removed from the words (`INTENTS`): "without retraining" prefers
   training-free and calibration-only techniques, "without a draft model" prefers draft-free speculative
   decoding, "long context" prefers KV-cache/attention/long-context entries, stage words prefer that stage.
3. Each remaining word is looked up in an in-memory FTS5 table over name, aliases, paper title, authors, arXiv
   id, summary, tags and taxonomy path; BM25 (Robertson & Zaragoza, "The Probabilistic Relevance Framework:
   BM25 and Beyond", 2009, as implemented by SQLite's fts5 `bm25()`) scores it, with per-column weights
   (`COLUMN_WEIGHTS`). Porter stemming (Porter, 1980) lets "prune" meet "pruning". Model-family words
   ("llama", "gpt") count for little, so they do not outweigh what the user asks for.
4. A word no document contains is corrected to a close vocabulary word (rapidfuzz OSA distance), and the
   whole query is compared with every name for typos such as "gtpq".
5. When the query's distinctive words match nothing and no name is close, the answer is an empty result with
   `no_close_match` set, rather than the nearest unrelated entry.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import OSA

from catalog.core import Catalog, Technique

MAX_QUERY_CHARS = 500
# Shorthands users type, expanded before matching.
_SYNONYMS = {
    "attn": "attention", "quant": "quantization", "quantisation": "quantization", "quantise": "quantize",
    "kd": "distillation", "moe": "mixture experts", "peft": "parameter efficient fine tuning",
    "spec": "speculative", "finetune": "fine tune", "finetuning": "fine tuning", "pretraining": "pre training",
    "sparsify": "sparsity", "ssm": "state space model", "rag": "retrieval", "llm": "", "llms": "",
}
_STOPWORDS = {
    "a", "an", "and", "the", "of", "for", "in", "on", "to", "with", "via", "by", "is", "its", "it", "how", "what",
    "which", "do", "does", "i", "my", "can", "that", "this", "from", "at", "or", "be", "are", "use", "using",
    "method", "methods", "technique", "techniques", "paper", "way", "ways", "best", "make", "get",
}
# Words that name a model family or are in nearly every entry: they count for a quarter of a normal word.
_WEAK_WORDS = {"llama", "llama2", "llama3", "gpt", "opt", "bloom", "mistral", "falcon", "t5", "bert", "model",
               "models", "language", "large", "transformer", "transformers", "efficient", "reduce", "improve"}
_WEAK_WEIGHT = 0.25
# Column order of the FTS table and the BM25 weight of each column.
COLUMNS = ("name", "aliases", "title", "authors", "arxiv", "summary", "tags", "path")
COLUMN_WEIGHTS = (10.0, 8.0, 4.0, 4.0, 6.0, 1.0, 3.0, 2.0)
_ARXIV_ID = re.compile(r"\b(\d{4}\.\d{4,5})(?:v\d+)?\b")


@dataclass(frozen=True)
class Intent:
    """A filter phrase: where it is found, and how it shifts the ranking (multipliers on the score)."""
    label: str
    pattern: re.Pattern
    prefer: dict = field(default_factory=dict)     # {"adoption_cost": {...}, "tags": {...}, ...} -> x PREFER
    penalise: dict = field(default_factory=dict)   # same keys -> x PENALISE
    keep_words: bool = False                       # keep the phrase's words in the text search


PREFER, PENALISE = 1.8, 0.35
INTENTS = (
    Intent("training-free", re.compile(r"\btraining[- ]free\b|\bzero[- ]training\b"),
           prefer={"adoption_cost": {"training-free"}}, penalise={"adoption_cost": {"needs-fine-tuning",
                                                                                     "needs-pre-training"}}),
    Intent("no retraining (training-free or calibration only)",
           re.compile(r"\b(?:without|no|w/o|avoid(?:ing)?)\s+(?:any\s+)?(?:re-?training|retrain(?:ing)?|"
                      r"fine-?tun(?:e|ing)|finetun(?:e|ing)|training|gradient updates?)\b|\bone[- ]shot\b|"
                      r"\bpost[- ]training\b"),
           prefer={"adoption_cost": {"training-free", "needs-calibration"}},
           penalise={"adoption_cost": {"needs-fine-tuning", "needs-pre-training"}}),
    Intent("no draft model", re.compile(r"\b(?:without|no|w/o)\s+(?:an?\s+)?(?:separate\s+|extra\s+|small\s+)?"
                                        r"(?:draft(?:er)?|drafting)(?:\s+models?)?\b|\bdraft[- ]free\b|"
                                        r"\bself[- ]speculative\b"),
           prefer={"tags": {"no-draft-model"}}, penalise={"tags": {"draft-model"}}),
    Intent("long context", re.compile(r"\blong(?:er)?[- ](?:context|sequences?|prompts?|inputs?|documents?)\b"),
           prefer={"acts_on": {"kv-cache", "attention"}, "path": {"Long Context LLMs", "KV-Cache Optimization"}},
           keep_words=True),
    Intent("less memory", re.compile(r"\b(?:reduc\w*|sav\w*|lower\w*|cut\w*|less|smaller|shrink\w*|fit\w*)\s+"
                                     r"(?:the\s+|gpu\s+)?(?:memory|vram)\b|\bmemory\s+(?:footprint|usage|use|"
                                     r"consumption|cost|savings?)\b|\bout of memory\b|\boom\b"),
           prefer={"acts_on": {"kv-cache", "weights", "optimizer-state", "activations"}}),
    Intent("inference", re.compile(r"\binference\b|\bserving\b|\bdecod(?:e|ing)\b|\bdeploy(?:ment|ing)?\b"),
           prefer={"stages": {"inference"}}, keep_words=True),
    Intent("fine-tuning", re.compile(r"\bfine[- ]?tun(?:e|ing)\b|\bfinetun(?:e|ing)\b|\badapt(?:ation|ing)?\b"),
           prefer={"stages": {"fine-tuning"}}, keep_words=True),
    Intent("pre-training", re.compile(r"\bpre[- ]?train(?:ing)?\b"), prefer={"stages": {"pre-training"}},
           keep_words=True),
)


def normalize(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def compact(text: str) -> str:
    return normalize(text).replace(" ", "")


def _split_camel(text: str) -> str:
    """'FlashAttention-2' -> 'Flash Attention-2', 'SparseGPT' -> 'Sparse GPT', so words reach camel-case names."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)


def _max_edits(word: str) -> int:
    """Typos tolerated: one edit (a transposition counts as one) up to 5 letters, then more."""
    return 1 if len(word) <= 5 else 2 if len(word) <= 9 else 3


@dataclass(frozen=True)
class Hit:
    technique: Technique
    score: float


class SearchResults(list):
    """The ranked hits (a list of Hit) plus what the search understood.

    `no_close_match` is True when nothing in the catalog is close to the query (the list is then empty);
    `understood` names the filter phrases recognised (e.g. ["no draft model"]); `message` says both in words.
    """

    def __init__(self, hits=(), *, no_close_match: bool = False, understood: tuple[str, ...] = (), query: str = ""):
        super().__init__(hits)
        self.no_close_match = no_close_match
        self.understood = tuple(understood)
        self.query = query

    @property
    def message(self) -> str:
        if self.no_close_match:
            shown = self.query if len(self.query) <= 60 else self.query[:57] + "..."
            return (f"No close match for {shown!r}: no technique in the catalog has this name, and its words do not "
                    "appear in any entry. Check the spelling, or search for what the technique does.")
        if self.understood:
            return "Understood: " + "; ".join(self.understood) + "."
        return ""


def _intent_factor(technique: Technique, intents: list[Intent]) -> float:
    factor = 1.0
    fields = {"adoption_cost": {technique.adoption_cost}, "tags": set(technique.tags),
              "acts_on": set(technique.acts_on), "stages": set(technique.stages), "path": set(technique.path)}
    for intent in intents:
        if any(fields[k] & v for k, v in intent.prefer.items()):
            factor *= PREFER
        if any(fields[k] & v for k, v in intent.penalise.items()):
            factor *= PENALISE
    return factor


def _document(technique: Technique) -> tuple[str, ...]:
    """The eight FTS columns of one technique."""
    names = [technique.name, *technique.aliases]
    reference = technique.reference
    title = " ".join(dict.fromkeys(t for t in (technique.title, reference.title) if t))
    authors = technique.authors or tuple(reference.authors)
    arxiv = " ".join(dict.fromkeys(a for a in (technique.arxiv, reference.arxiv_id) if a))
    tags = [*technique.tags, *technique.acts_on, *technique.stages, technique.adoption_cost]
    return (
        " ".join([technique.name, _split_camel(technique.name), compact(technique.name), technique.id]),
        " ".join(names[1:] + [_split_camel(a) for a in names[1:]] + [compact(a) for a in names[1:]]),
        title,
        " ".join(authors),
        arxiv,
        technique.summary,
        " ".join(t.replace("-", " ") for t in tags),
        " ".join(technique.path),
    )


class SearchIndex:
    """An in-memory FTS5 index over the catalog, built once per catalog and reused (thread-safe)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._techniques = list(catalog.techniques)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        columns = ", ".join(COLUMNS)
        self._db.execute(f"CREATE VIRTUAL TABLE docs USING fts5({columns}, tokenize='porter unicode61 "
                         "remove_diacritics 2')")
        documents = [_document(t) for t in self._techniques]
        self._db.executemany(f"INSERT INTO docs(rowid, {columns}) VALUES (?{', ?' * len(COLUMNS)})",
                             [(i, *doc) for i, doc in enumerate(documents)])
        self._db.commit()
        weights = ", ".join(str(w) for w in COLUMN_WEIGHTS)
        self._term_sql = f"SELECT rowid, bm25(docs, {weights}) FROM docs WHERE docs MATCH ?"
        # raw (unstemmed) words for typo correction, and every compact name/id/alias for near-name matching
        # (authors' names are left out: a misspelt technique name must not turn into a person's name)
        vocabulary: set[str] = set()
        for doc in documents:
            vocabulary.update(normalize(" ".join(doc[:3] + doc[5:])).split())
        self._vocabulary = sorted(w for w in vocabulary if len(w) >= 4 and not w.isdigit())
        self._titles = [normalize(doc[2]) for doc in documents]
        self._name_choices: list[str] = []
        self._name_owner: list[int] = []
        self._exact: dict[str, int] = {}
        for position, t in enumerate(self._techniques):
            for name in (t.id, t.name, *t.aliases):
                key = compact(name)
                if key:
                    self._name_choices.append(key)
                    self._name_owner.append(position)
                    self._exact.setdefault(key, position)
            for arxiv in (t.arxiv, t.reference.arxiv_id):
                if arxiv:
                    self._exact.setdefault(arxiv, position)

    # ---------------------------------------------------------------- pieces of a query
    def _term_scores(self, word: str, prefix: bool = False) -> dict[int, float]:
        """{position: BM25 relevance (higher is better)} for one word (as a prefix when asked)."""
        match = f'"{word}"*' if prefix else f'"{word}"'
        with self._lock:
            rows = self._db.execute(self._term_sql, (match,)).fetchall()
        return {rowid: -score for rowid, score in rows}

    def _corrections(self, word: str) -> list[tuple[str, float]]:
        """Vocabulary words within the typo budget of `word`, with a similarity in (0, 1]."""
        if len(word) < 5 or word.isdigit():
            return []
        edits = _max_edits(word) if len(word) >= 7 else 1
        found = process.extract(word, self._vocabulary, scorer=OSA.distance, score_cutoff=edits, limit=3)
        return [(w, 1.0 - 0.5 * d / (edits + 1)) for w, d, _ in found if d > 0]

    def _name_scores(self, query_compact: str) -> dict[int, float]:
        """Whole-query matches against names, ids and aliases: exact, prefix, then within the typo budget."""
        scores: dict[int, float] = {}
        if len(query_compact) < 2:
            return scores
        if query_compact in self._exact:
            scores[self._exact[query_compact]] = 1000.0
        for key, owner in zip(self._name_choices, self._name_owner, strict=True):
            if len(query_compact) >= 3 and key.startswith(query_compact) and len(query_compact) >= 0.5 * len(key):
                scores[owner] = max(scores.get(owner, 0.0), 500.0)
        if len(query_compact) >= 4:
            edits = _max_edits(query_compact)
            for _, distance, index in process.extract(query_compact, self._name_choices, scorer=OSA.distance,
                                                      score_cutoff=edits, limit=10):
                owner = self._name_owner[index]
                scores[owner] = max(scores.get(owner, 0.0), 300.0 - 50.0 * distance)
        return scores

    # ---------------------------------------------------------------- the query
    def search(self, query: str, limit: int | None = None) -> SearchResults:
        """Ranked hits for `query` (best first). Raises ValueError for a non-text, over-long query or a bad limit."""
        if not isinstance(query, str):
            raise ValueError(f"search query must be text, got {type(query).__name__}")
        if len(query) > MAX_QUERY_CHARS:
            raise ValueError(f"search query is too long ({len(query)} characters); keep it under {MAX_QUERY_CHARS}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive whole number of results, got {limit!r}")
        text = query.lower()
        intents = [i for i in INTENTS if i.pattern.search(text)]
        for intent in intents:
            if not intent.keep_words:
                text = intent.pattern.sub(" ", text)
        words: list[str] = []
        for word in normalize(_split_camel(text)).split():
            words += _SYNONYMS.get(word, word).split()
        words = list(dict.fromkeys(w for w in words if w not in _STOPWORDS))
        understood = tuple(i.label for i in intents)
        if not words and not intents:
            hits = [Hit(t, 0.0) for t in self._techniques]
            return SearchResults(hits[:limit] if limit else hits, query=query)

        scores: dict[int, float] = defaultdict(float)
        matched: dict[int, float] = defaultdict(float)
        total_weight = 0.0
        strong_unknown = 0      # distinctive words that nothing in the catalog contains, even after correction
        for word in words:
            weight = _WEAK_WEIGHT if word in _WEAK_WORDS and len(words) > 1 else 1.0
            total_weight += weight
            per_doc = self._term_scores(word)
            if not per_doc and len(word) >= 4:
                per_doc = {k: 0.8 * v for k, v in self._term_scores(word, prefix=True).items()}
            if not per_doc:
                for corrected, similarity in self._corrections(word):
                    for position, value in self._term_scores(corrected).items():
                        per_doc[position] = max(per_doc.get(position, 0.0), similarity * value)
            if not per_doc and weight == 1.0:
                strong_unknown += 1
            for position, value in per_doc.items():
                scores[position] += weight * value
                matched[position] += weight

        names = self._name_scores(compact(query))
        expanded = compact(" ".join(words))
        if expanded and expanded != compact(query):
            # once filter phrases are taken out, the rest naming an entry ("speculative decoding") is a topic,
            # not a request for that one entry: a small bonus, not an outright win
            scale = 0.02 if any(not i.keep_words for i in intents) else 1.0
            for position, value in self._name_scores(expanded).items():
                names[position] = max(names.get(position, 0.0), scale * value)
        phrase = normalize(query)
        if phrase.count(" ") >= 2:   # three or more words quoted from a paper title
            for position, title in enumerate(self._titles):
                if phrase in title:
                    names[position] = max(names.get(position, 0.0), 800.0)
        arxiv = _ARXIV_ID.search(query)
        if arxiv and arxiv.group(1) in self._exact:
            names[self._exact[arxiv.group(1)]] = 2000.0

        distinctive = sum(1 for w in words if not (w in _WEAK_WORDS and len(words) > 1))
        if not names and (not scores or (distinctive and strong_unknown == distinctive)):
            return SearchResults(no_close_match=True, understood=understood, query=query)

        hits = []
        for position in set(scores) | set(names):
            technique = self._techniques[position]
            coverage = matched[position] / total_weight if total_weight else 0.0
            score = (scores[position] * coverage * coverage + names.get(position, 0.0)) * _intent_factor(technique, intents)
            if score > 0:
                hits.append(Hit(technique, round(score, 3)))
        if not words:   # only filter phrases: rank everything by how well it fits them
            hits = [Hit(t, round(_intent_factor(t, intents), 3)) for t in self._techniques
                    if _intent_factor(t, intents) > 1.0]
        hits.sort(key=lambda h: (-h.score, h.technique.name.lower()))
        return SearchResults(hits[:limit] if limit else hits, understood=understood, query=query)


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
    since_survey_only: bool = False,
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
            and (not since_survey_only or t.since_survey)
        )

    return [t for t in techniques if keep(t)]
