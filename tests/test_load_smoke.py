"""A short run of bench/load_test.py: 2 browser sessions for ~10 s plus a live-demo run, zero errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_load_smoke_has_no_errors(tmp_path):
    out = tmp_path / "load.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "load_test.py"), "--sessions", "2", "--duration-s",
                           "10", "--timeout-s", "60", "--json-out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=420)
    assert out.exists(), proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["errors"] == 0, result["error_details"]
    assert result["server_tracebacks"] == 0
    assert result["pages"]["catalog"]["n"] > 0 and result["pages"]["recommender"]["n"] > 0
    # the app's own per-run timings reached the report, and the CPU split saw the browsers and the server
    assert result["server_script_runs"]["Recommender"]["n"] > 0
    assert result["cores_by_role"]["browser renderers"] > 0 and result["cores_by_role"]["app server"] > 0
    assert proc.returncode == 0
