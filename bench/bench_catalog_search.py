"""Benchmark: catalog search latency and answer quality over the full catalog (goal: p95 under 20 ms).

Ours: `catalog.search.SearchIndex` (SQLite FTS5 with porter stemming and BM25, rapidfuzz for typos, filter words).
Peer: the catalog's previous ranking (until November 2026), a hand-weighted inverted index with rapidfuzz word
matching and no stemming, reproduced below as `LegacyIndex` so both run side by side on the same queries.
Quality is top-1 / top-5 accuracy on catalog/data/search_queries.yaml. Prints one JSON object.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile  # noqa: E402
from catalog.api import SearchIndex, load_catalog  # noqa: E402

QUERIES = [
    "gptq", "GPTQ", "gtpq", "flash attn", "kv cache", "lora", "qlora", "speculative decoding", "prompt compression",
    "mixture of experts", "4-bit weight quantization", "distillation chain of thought", "sparse attention",
    "long context", "zero offload", "pruning without retraining", "state space model", "data selection",
    "instruction tuning data", "paged attention", "vllm", "deepspeed", "int8", "low rank", "rope interpolation",
    "prune llama without retraining", "reduce memory for long context inference", "Dettmers", "2306.00978",
    "speculative decoding without draft model", "DistServe",
]
ROUNDS = 20
QUERY_SET = Path(__file__).resolve().parents[1] / "catalog" / "data" / "search_queries.yaml"


class LegacyIndex:
    """The previous ranking: per-field weighted postings, words matched to the vocabulary by OSA distance."""

    _SYNONYMS = {"attn": "attention", "quant": "quantization", "quantisation": "quantization", "kd": "distillation",
                 "moe": "mixture experts", "peft": "parameter efficient fine tuning", "spec": "speculative"}
    _STOP = {"a", "an", "and", "the", "of", "for", "in", "on", "to", "with", "via", "by", "is", "its", "it"}
    _WEIGHTS = {"name": 4.0, "alias": 3.5, "tag": 2.0, "path": 1.5, "summary": 1.0}

    def __init__(self, catalog):
        self.techniques = list(catalog.techniques)
        self.postings: dict[str, dict[int, float]] = defaultdict(dict)
        self.names = []
        for position, t in enumerate(self.techniques):
            fields = [("name", t.name), ("summary", t.summary), ("path", " ".join(t.path))]
            fields += [("alias", a) for a in t.aliases] + [("tag", x) for x in (*t.tags, *t.acts_on, *t.stages)]
            for field_name, text in fields:
                for word in self._tokens(text):
                    weight = self._WEIGHTS[field_name]
                    self.postings[word][position] = max(self.postings[word].get(position, 0.0), weight)
            self.names.append([self._compact(n) for n in (t.name, t.id, *t.aliases)])
        self.vocabulary = list(self.postings)

    @staticmethod
    def _compact(text):
        return "".join(re.findall(r"[a-z0-9]+", text.lower()))

    def _tokens(self, text):
        split = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
        words = re.findall(r"[a-z0-9]+", text.lower()) + re.findall(r"[a-z0-9]+", split.lower())
        return list(dict.fromkeys(w for w in words if w not in self._STOP))

    @staticmethod
    def _edits(word):
        return 1 if len(word) <= 5 else 2 if len(word) <= 9 else 3

    def _expand(self, word):
        matches = [(word, 1.0)] if word in self.postings else []
        if len(word) >= 4:
            edits = self._edits(word)
            found = process.extract(word, self.vocabulary, scorer=OSA.distance, score_cutoff=edits, limit=5)
            matches += [(m[0], 1.0 - 0.5 * m[1] / edits) for m in found if m[0] != word]
            matches += [(v, 0.9) for v in self.vocabulary if v.startswith(word) and v != word][:10]
        return matches

    def _name_score(self, query, position):
        names = self.names[position]
        if query in names:
            return 1000.0
        if len(query) >= 3 and any(n.startswith(query) and len(query) >= 0.5 * len(n) for n in names):
            return 500.0
        if len(query) >= 4:
            edits = min(OSA.distance(query, n) for n in names)
            if edits <= self._edits(query):
                return 300.0 - 50.0 * edits
        best = max(fuzz.ratio(query, n) for n in names)
        return 200.0 * best / 100.0 if best >= 90 else 0.0

    def search(self, query):
        words = []
        for word in self._tokens(query):
            words += self._SYNONYMS.get(word, word).split()
        if not words:
            return self.techniques
        scores, matched = defaultdict(float), defaultdict(int)
        for word in words:
            per_doc = {}
            for vocab_word, similarity in self._expand(word):
                for position, weight in self.postings[vocab_word].items():
                    per_doc[position] = max(per_doc.get(position, 0.0), weight * similarity)
            for position, value in per_doc.items():
                scores[position] += value
                matched[position] += 1
        query_compact, expanded = self._compact(query), "".join(words)
        candidates = set(scores) | {i for i, names in enumerate(self.names) if query_compact in names}
        ranked = []
        for position in candidates:
            name = max(self._name_score(query_compact, position), self._name_score(expanded, position))
            score = scores[position] * matched[position] / len(words) + name
            if score > 0:
                ranked.append((score, self.techniques[position]))
        ranked.sort(key=lambda item: (-item[0], item[1].name.lower()))
        return [t for _, t in ranked]


def measure(search, queries: list[str], rounds: int) -> dict:
    timings_ms = []
    for _ in range(rounds):
        for query in queries:
            start = time.perf_counter()
            search(query)
            timings_ms.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(statistics.median(timings_ms), 3), "p95_ms": percentile(timings_ms, 0.95, ndigits=3),
            "max_ms": round(max(timings_ms), 3), "calls": len(timings_ms)}


def quality(top_ids) -> dict:
    """Top-1 and top-5 accuracy on the researcher query set; `top_ids(query)` returns ranked ids."""
    items = yaml.safe_load(QUERY_SET.read_text(encoding="utf-8"))["queries"]
    top1 = top5 = 0
    for item in items:
        found = top_ids(item["q"])[:5]
        top1 += bool(found) and found[0] in item["expect"]
        top5 += bool(set(found) & set(item["expect"]))
    return {"queries": len(items), "top1": round(top1 / len(items), 3), "top5": round(top5 / len(items), 3)}


def main() -> dict:
    catalog = load_catalog()
    start = time.perf_counter()
    index = SearchIndex(catalog)
    build_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    legacy = LegacyIndex(catalog)
    legacy_build_ms = (time.perf_counter() - start) * 1000
    result = {
        "benchmark": "catalog_search",
        "techniques": len(catalog.techniques),
        "ours": {**measure(index.search, QUERIES, ROUNDS), "index_build_ms": round(build_ms, 1),
                 **quality(lambda q: [h.technique.id for h in index.search(q)])},
        "peer_previous_ranking": {**measure(legacy.search, QUERIES, ROUNDS),
                                  "index_build_ms": round(legacy_build_ms, 1),
                                  **quality(lambda q: [t.id for t in legacy.search(q)])},
        "goal_p95_ms": 20,
    }
    result["goal_met"] = result["ours"]["p95_ms"] < 20
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
