"""Benchmark: full plan search latency (p50/p95) and calibration fit time; prints one JSON object.

Run: .venv/bin/python bench/bench_recommender.py [--repeats 30]
Target (issue 4): a full plan search in under 300 ms at p95, after the one-off calibration fit.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile  # noqa: E402
from recommender import api  # noqa: E402

SCENARIOS = {
    "llama-2-7b on 1x a100-80gb, chat": dict(model="llama-2-7b", gpu="a100-80gb", num_gpus=1,
                                             latency_ms_per_token=20),
    "llama-2-70b on 8x h100-sxm, batch 32": dict(model="llama-2-70b", gpu="h100-sxm", num_gpus=8, batch=32,
                                                 latency_ms_per_token=30),
    "mixtral-8x7b on 1x rtx-4090 (nothing fits)": dict(model="mixtral-8x7b", gpu="rtx-4090", num_gpus=1),
    "llama-65b QLoRA on 1x rtx-a6000": dict(model="llama-65b", gpu="rtx-a6000", workload="finetune-qlora"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    fit_s = api.calibration_report()["fit_seconds"]
    api.warm_up()   # warm the shared cache, as the page and CLI do once per process
    results = {}
    for name, spec in SCENARIOS.items():
        spec = dict(spec)
        req = api.PlanRequest(model=api.resolve_model(spec.pop("model")), gpu=api.resolve_gpu(spec.pop("gpu")), **spec)
        times, out = [], None
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = api.plan(req)
            times.append((time.perf_counter() - t) * 1e3)
        results[name] = {"space": out.space, "evaluated": out.searched, "feasible": out.feasible,
                         "p50_ms": round(statistics.median(times), 1), "p95_ms": percentile(times, 0.95),
                         "max_ms": round(max(times), 1)}
    worst_p95 = max(r["p95_ms"] for r in results.values())
    print(json.dumps({"benchmark": "recommender.plan", "repeats": args.repeats, "python": platform.python_version(),
                      "machine": platform.machine(), "calibration_fit_s": round(fit_s, 3),
                      "scenarios": results, "worst_p95_ms": worst_p95, "target_p95_ms": 300,
                      "target_met": worst_p95 < 300}, indent=1))


if __name__ == "__main__":
    main()
