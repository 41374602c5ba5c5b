"""Run history (SQLite), the heavy-run gate and the CLI, without loading a real model."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from common.history import HistoryError, RunHistory, default_db_path, flatten_rows
from live_demo.runner import HeavyRunGate

pytest_plugins = ["tests.live_demo_fixtures"]  # shared tiny-model fixtures
ROOT = Path(__file__).resolve().parents[1]


def _record(h: RunHistory, method: str = "fp32", tok_s: float = 10.0) -> int:
    return h.record("quantization", "tiny", "cpu", "CPU", "float32", {"method": method},
                    {"decode_tokens_per_s": tok_s, "weight_bytes": 100, "num_params": 10, "perplexity": 5.0})


def test_history_module_is_torch_and_streamlit_free():
    code = ("import sys, common.history, live_demo.runner, live_demo.errors; "
            "print('torch' in sys.modules, 'streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_env_var_overrides_path(history_db):
    assert default_db_path() == history_db
    assert RunHistory().path == history_db


def test_record_rows_and_csv(history_db):
    h = RunHistory()
    ids = [_record(h, "fp32", 10.0), _record(h, "int8-dynamic", 20.0)]
    h.record("speculative", "tiny", "cpu", "CPU", "float32", {"drafter": "prompt-lookup"},
             {"acceptance_rate": float("nan"), "per_prompt": {"a": 1}})
    assert ids == [1, 2]
    rows = h.rows("quantization")
    assert [r["settings"]["method"] for r in rows] == ["fp32", "int8-dynamic"]
    assert rows[1]["metrics"]["decode_tokens_per_s"] == 20.0
    assert set(rows[0]) == {"id", "created_at", "kind", "model_id", "device", "device_name", "dtype", "settings",
                            "metrics"}
    assert h.rows("speculative")[0]["metrics"]["acceptance_rate"] is None  # NaN stored as null
    table = list(csv.DictReader(io.StringIO(h.to_csv())))
    assert len(table) == 3 and table[1]["settings.method"] == "int8-dynamic"
    flat = flatten_rows(h.rows())
    assert flat[0]["metrics.decode_tokens_per_s"] == 10.0
    cols = [c[1] for c in sqlite3.connect(history_db).execute("PRAGMA table_info(runs)")]
    assert cols == ["id", "created_at", "kind", "model_id", "device", "device_name", "dtype", "settings_json",
                    "metrics_json"]


def test_bad_kind_and_missing_db(tmp_path):
    h = RunHistory(tmp_path / "none.sqlite")
    assert h.rows() == []
    with pytest.raises(ValueError, match="kind"):
        h.record("training", "m", "cpu", "CPU", "fp32", {}, {})


def test_corrupt_database_gives_clear_error(tmp_path):
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match="not a valid SQLite database"):
        RunHistory(path).rows()
    with pytest.raises(HistoryError):
        _record(RunHistory(path))
    assert path.read_bytes().startswith(b"this is not a database")  # never overwritten


def test_locked_database_keeps_other_rows(tmp_path):
    path = tmp_path / "locked.sqlite"
    h = RunHistory(path, timeout_s=0.1)
    _record(h)
    blocker = sqlite3.connect(path)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError, match="locked"):
            _record(h)
    finally:
        blocker.rollback()
        blocker.close()
    assert len(h.rows()) == 1
    _record(h)
    assert len(h.rows()) == 2


def test_one_bad_row_does_not_hide_the_others(tmp_path):
    path = tmp_path / "h.sqlite"
    h = RunHistory(path)
    _record(h)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO runs (created_at, kind, settings_json, metrics_json) VALUES "
                     "('x', 'quantization', '{bad', '{}')")
    _record(h)
    rows = h.rows()
    assert len(rows) == 3 and "_unreadable" in rows[1]["settings"]


def test_gate_runs_one_at_a_time_and_reports_queue():
    gate = HeavyRunGate()
    order, queued = [], []
    started = threading.Event()

    def first():
        with gate.run("first"):
            started.set()
            time.sleep(0.2)
            order.append("first")

    t = threading.Thread(target=first)
    t.start()
    started.wait()
    with gate.run("second", on_queued=queued.append) as stop:
        order.append("second")
        assert not stop.is_set()
    t.join()
    assert order == ["first", "second"]
    assert queued and queued[0]["running"] == "first"
    gate.stop()
    assert gate.stop_event.is_set()
    with gate.run("third") as stop:  # a new run starts with the flag cleared
        assert not stop.is_set()


def test_cli_bench_tiny_json(history_db):
    out = subprocess.run([sys.executable, "-m", "live_demo", "bench", "--json", "--quick", "--model", "tiny",
                          "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    q, c, s = result["quantization"], result["compression"], result["speculative"]
    for row in [q["baseline"], *q["methods"].values()]:
        assert {"weight_bytes", "perplexity", "decode_tokens_per_s"} <= set(row)
    for name in ("ours", "random"):
        assert {"ratio", "quality_kept", "seconds"} <= set(c[name])
    for d in s["drafters"].values():
        assert {"acceptance_rate", "mean_accepted_len", "target_calls_per_token", "tokens_per_s",
                "identical_to_greedy", "transformers_assisted_tokens_per_s", "plain_tokens_per_s"} <= set(d)
    assert s["identical_to_greedy_all"] is True
    assert RunHistory().rows("quantization")


def test_cli_errors_are_one_line():
    out = subprocess.run([sys.executable, "-m", "live_demo", "bench", "--json", "--model", "/no/such/model"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "ELLM_HISTORY_DB": "/dev/null/x"})
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "does not exist" in last and "Traceback" not in out.stderr
    bad = subprocess.run([sys.executable, "-m", "live_demo", "bench", "--device", "tpu"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are a Linux feature")
def test_heavy_run_thread_yields_the_cpu_to_page_requests():
    """Inside background_priority the calling thread is niced; the rest of the process is not."""
    from live_demo.runner import background_priority

    seen = {}

    def run():
        tid = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, tid)
        with background_priority(5):
            seen["inside"] = os.getpriority(os.PRIO_PROCESS, tid)
            seen["other"] = os.getpriority(os.PRIO_PROCESS, main_tid)

    main_tid = threading.get_native_id()
    worker = threading.Thread(target=run)  # its own thread: a non-root user cannot raise it back afterwards
    worker.start()
    worker.join()
    assert seen["inside"] == min(19, seen["before"] + 5)
    assert seen["other"] == os.getpriority(os.PRIO_PROCESS, main_tid)
