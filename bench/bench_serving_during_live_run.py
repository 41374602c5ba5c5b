"""Benchmark: how long the recommender page takes on the server while a live-demo run is in progress.

    .venv/bin/python bench/bench_serving_during_live_run.py [--reruns 40] [--tiny]

The load test (bench/load_test.py) measures whole page responses, browsers included; on a 2-core machine its
Chromium sessions take most of the CPU. This benchmark leaves the browsers out. It runs the real recommender page
script through Streamlit's AppTest (the same code, widgets and element serialization as a served page) and times
reruns with a changed input, side by side in one process:

- quiet: nothing else running;
- live run: a live-demo quantization run keeps going in another thread, started the way the app starts it (the
  process-wide gate, `ELLM_LIVE_THREADS` torch threads, the run's thread at nice +10);
- live run, all cores: the same with torch on every core.

It also times one full `gc.collect(2)` in this process (model, torch and the page loaded): the CPU that
Streamlit's default `runner.postScriptGC = true` spends, holding the GIL, after every script run of every user.
This project turns that option off in .streamlit/config.toml. (AppTest's runner never runs that collection, so the
reruns above do not include it either way.)

Prints one JSON object with p50/p95 rerun milliseconds per condition.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402

PAGE = ROOT / "pages" / "recommender_page.py"
BATCHES = [4, 16, 64, 1]


def time_reruns(app, reruns: int) -> dict:
    """Change the batch input and rerun the page `reruns` times; wall ms of each rerun."""
    times = []
    for i in range(reruns):
        app.number_input(key="rec_batch").set_value(BATCHES[i % len(BATCHES)])
        start = time.perf_counter()
        app.run()
        times.append((time.perf_counter() - start) * 1000)
        if app.exception:
            raise RuntimeError(f"the recommender page raised: {app.exception[0].value}")
        time.sleep(0.05)   # a user's gap between clicks; lets the live run's thread take the core back
    return {"n": reruns, "p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95),
            "mean_ms": round(statistics.fmean(times), 1)}


class LiveRun:
    """Quantization runs, one after another, in a background thread, as the live-demo page runs them."""

    def __init__(self, lm, threads: int):
        self.lm, self.threads = lm, threads
        self.stop = threading.Event()
        self.runs = 0
        self.thread = threading.Thread(target=self._loop, name="live-run", daemon=True)

    def _loop(self) -> None:
        import torch

        from live_demo import api

        torch.set_num_threads(self.threads)
        methods = api.quantization_methods(self.lm.device)[:3]   # the page's default selection
        while not self.stop.is_set():
            with api.GATE.run("bench", wait_s=60), api.background_priority():
                try:
                    api.run_quantization(self.lm, methods, 512, 32, stop_event=self.stop, repeats=1)
                    self.runs += 1
                except api.RunCancelled:
                    return

    def __enter__(self):
        self.thread.start()
        time.sleep(3.0)   # past model copying, into the measured part of the run
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reruns", type=int, default=40, help="reruns per condition (default 40)")
    parser.add_argument("--tiny", action="store_true", help="the tiny random model instead of the embedded SmolLM2")
    args = parser.parse_args(argv)
    if not 4 <= args.reruns <= 1000:
        parser.error("--reruns must be 4-1000")

    from streamlit.testing.v1 import AppTest

    from live_demo.api import live_threads, load_model, usable_cores

    lm = load_model("tiny" if args.tiny else None, "cpu")
    app = AppTest.from_file(str(PAGE), default_timeout=120)
    app.run()
    time_reruns(app, 8)   # warm: the calibration fit and first-run imports
    results = {"quiet": time_reruns(app, args.reruns)}
    live_runs = {}
    for name, threads in [("live run", live_threads()), ("live run, all cores", usable_cores())]:
        with LiveRun(lm, threads) as live:
            results[name] = time_reruns(app, args.reruns)
        live_runs[name] = {"torch_threads": threads, "quantization_runs_finished": live.runs}
    gc_ms = []
    for _ in range(5):
        start = time.perf_counter()
        gc.collect(2)
        gc_ms.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"model": lm.model_id, "device": lm.device, "cpu": platform.processor() or platform.machine(),
                      "usable_cores": usable_cores(), "python": platform.python_version(),
                      "recommender_rerun": results, "live_runs": live_runs,
                      "full_gc_ms_median": round(statistics.median(gc_ms), 1),
                      "tracked_objects": len(gc.get_objects())}, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main())
