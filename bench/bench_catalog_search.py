"""Benchmark: catalog search latency over the full catalog (goal: p95 under 20 ms).

Peer: a plain substring scan over the same fields, the naive baseline a page would otherwise use.
Prints one JSON object.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile  # noqa: E402
from catalog import load_catalog  # noqa: E402
from catalog.search import SearchIndex  # noqa: E402

QUERIES = [
    "gptq", "GPTQ", "gtpq", "flash attn", "kv cache", "lora", "qlora", "speculative decoding", "prompt compression",
    "mixture of experts", "4-bit weight quantization", "distillation chain of thought", "sparse attention",
    "long context", "zero offload", "pruning without retraining", "state space model", "data selection",
    "instruction tuning data", "paged attention", "vllm", "deepspeed", "int8", "low rank", "rope interpolation",
]
ROUNDS = 20


def _substring_scan(techniques, query: str) -> list:
    needle = query.lower()
    return [t for t in techniques if needle in f"{t.name} {' '.join(t.aliases)} {t.summary} {' '.join(t.tags)}".lower()]


def measure(search, queries: list[str], rounds: int) -> dict:
    timings_ms = []
    for _ in range(rounds):
        for query in queries:
            start = time.perf_counter()
            search(query)
            timings_ms.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(statistics.median(timings_ms), 3), "p95_ms": percentile(timings_ms, 0.95, ndigits=3),
            "max_ms": round(max(timings_ms), 3), "calls": len(timings_ms)}


def main() -> dict:
    catalog = load_catalog()
    start = time.perf_counter()
    index = SearchIndex(catalog)
    build_ms = (time.perf_counter() - start) * 1000
    ours = measure(index.search, QUERIES, ROUNDS)
    peer = measure(lambda q: _substring_scan(catalog.techniques, q), QUERIES, ROUNDS)
    result = {
        "benchmark": "catalog_search",
        "techniques": len(catalog.techniques),
        "index_build_ms": round(build_ms, 1),
        "ours": ours,
        "peer_substring_scan": peer,
        "goal_p95_ms": 20,
        "goal_met": ours["p95_ms"] < 20,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
