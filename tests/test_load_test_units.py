"""The load test's bookkeeping: which script runs count, and how CPU is split between roles."""

from __future__ import annotations

import json
import os

import pytest

from bench.common import percentile
from bench.load_test import cpu_by_role, cpu_summary, parse_args, script_run_summary


def test_script_run_summary_keeps_only_runs_inside_the_window(tmp_path):
    log = tmp_path / "runs.jsonl"
    runs = [("Recommender", 100.0, 40.0, 5.0), ("Recommender", 300.0, 50.0, 12.0), ("Recommender", 900.0, 60.0, 19.0),
            ("Recommender", 5000.0, 70.0, 31.0), ("Catalog", 80.0, 30.0, 15.0)]
    log.write_text("".join(json.dumps({"page": p, "wall_ms": w, "cpu_ms": c, "at": at}) + "\n"
                           for p, w, c, at in runs))
    summary = script_run_summary(log, (10.0, 30.0))
    assert summary["Recommender"]["n"] == 2    # at=5 is before the window, at=31 after it
    assert summary["Recommender"]["wall_p95_ms"] == 900.0 and summary["Recommender"]["cpu_p50_ms"] == 50.0
    assert summary["Catalog"]["n"] == 1
    assert script_run_summary(tmp_path / "absent.jsonl", (0, 1)) == {}


def test_cpu_summary_turns_cpu_seconds_into_cores_and_cost_per_interaction():
    start = ({"app server": 10.0, "browser renderers": 100.0}, (1000, 5000))
    end = ({"app server": 15.0, "browser renderers": 130.0, "playwright driver": 1.0}, (1070, 5030))
    out = cpu_summary(start, end, window_s=10.0, interactions_per_s=2.0)
    assert out["cores_by_role"] == {"app server": 0.5, "browser renderers": 3.0, "playwright driver": 0.1}
    assert out["machine_busy_share"] == 0.7
    assert out["cpu_s_per_interaction"] == pytest.approx(3.6 / 2.0, abs=0.01)
    assert cpu_summary(start, end, 10.0, 0.0)["cpu_s_per_interaction"] is None


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads Linux /proc")
def test_cpu_by_role_counts_this_process_as_the_driver():
    roles = cpu_by_role(server_pid=-1)
    assert roles["load driver"] > 0


def test_percentile_and_argument_checks():
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0 and percentile([], 0.5) is None
    assert percentile([0.12345, 9.0], 0.0, ndigits=3) == 0.123
    assert parse_args(["--think-s", "2.5"]).think_s == 2.5
    for bad in (["--think-s", "-1"], ["--sessions", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


@pytest.mark.slow
def test_serving_benchmark_runs_on_the_tiny_model(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "ELLM_CACHE_DIR": str(tmp_path / "cache"), "ELLM_HISTORY_DB": str(tmp_path / "h.sqlite")}
    proc = subprocess.run([sys.executable, str(root / "bench" / "bench_serving_during_live_run.py"), "--tiny",
                           "--reruns", "4"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert set(result["recommender_rerun"]) == {"quiet", "live run", "live run, all cores"}
    assert all(0 < r["p50_ms"] <= r["p95_ms"] for r in result["recommender_rerun"].values())
    assert result["full_gc_ms_median"] > 0 and result["model"] == "tiny"
