"""Run history in an embedded SQLite database. Imports neither torch nor streamlit.

Default path: <user data dir>/runs.sqlite3 (platformdirs), overridden by env ELLM_HISTORY_DB.
Rows are only ever inserted; nothing here deletes or rewrites existing rows.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

KINDS = ("quantization", "compression", "speculative", "sweep")  # sweep: decode tok/s against batch size
ENV_VAR = "ELLM_HISTORY_DB"
SCHEMA = """CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    created_at TEXT,
    kind TEXT,
    model_id TEXT,
    device TEXT,
    device_name TEXT,
    dtype TEXT,
    settings_json TEXT,
    metrics_json TEXT
)"""
COLUMNS = ("id", "created_at", "kind", "model_id", "device", "device_name", "dtype", "settings", "metrics")


class HistoryError(RuntimeError):
    """The history database cannot be used (locked, corrupt, unwritable); the message says what to do."""


def default_db_path() -> Path:
    """env ELLM_HISTORY_DB, else runs.sqlite3 in the user data directory of efficient-llm-explorer."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("efficient-llm-explorer")) / "runs.sqlite3"


def _clean(value):
    """JSON-safe copy: NaN/inf become None, numpy scalars become Python numbers, unknown objects become str."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return value if not (isinstance(value, float) and not math.isfinite(value)) else None
    if hasattr(value, "item"):
        return _clean(value.item())
    return str(value)


class RunHistory:
    """Append-only store of demo runs: settings, device and metrics per row."""

    def __init__(self, path: str | Path | None = None, timeout_s: float = 2.0):
        self.path = Path(path) if path is not None else default_db_path()
        self.timeout_s = timeout_s

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout_s)
            conn.execute(SCHEMA)
            return conn
        except sqlite3.OperationalError as exc:
            raise self._error(exc) from exc
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        except OSError as exc:
            raise HistoryError(f"Cannot open the run history at {self.path}: {exc}. Set {ENV_VAR} to a "
                               "writable file path.") from exc

    def _error(self, exc: Exception) -> HistoryError:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return HistoryError(f"The run history at {self.path} is locked by another process; try again in a "
                                "moment. Results are still shown but this run was not saved.")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return HistoryError(f"The run history at {self.path} is not a valid SQLite database (corrupt?). "
                                f"Move it aside or set {ENV_VAR} to a new file; the demo keeps working without "
                                "history.")
        return HistoryError(f"Run history error at {self.path}: {exc}. Set {ENV_VAR} to another file.")

    def record(self, kind: str, model_id: str, device: str, device_name: str, dtype: str, settings: dict,
               metrics: dict) -> int:
        """Insert one run and return its id."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if not isinstance(settings, dict) or not isinstance(metrics, dict):
            raise ValueError("settings and metrics must be dicts")
        row = (datetime.now(UTC).isoformat(timespec="seconds"), kind, str(model_id), str(device),
               str(device_name), str(dtype), json.dumps(_clean(settings)), json.dumps(_clean(metrics)))
        conn = self._connect()
        try:
            with conn:
                cur = conn.execute(
                    "INSERT INTO runs (created_at, kind, model_id, device, device_name, dtype, settings_json, "
                    "metrics_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            return int(cur.lastrowid)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        finally:
            conn.close()

    def rows(self, kind: str | None = None) -> list[dict]:
        """All runs (optionally of one kind), oldest first, with settings/metrics decoded from JSON."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if not self.path.exists():
            return []
        conn = self._connect()
        try:
            query = ("SELECT id, created_at, kind, model_id, device, device_name, dtype, settings_json, "
                     "metrics_json FROM runs")
            params: tuple = ()
            if kind is not None:
                query += " WHERE kind = ?"
                params = (kind,)
            records = conn.execute(query + " ORDER BY id", params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        finally:
            conn.close()
        return [self._decode(r) for r in records]

    @staticmethod
    def _decode(record) -> dict:
        out = dict(zip(COLUMNS, record, strict=False))
        for key in ("settings", "metrics"):
            try:
                out[key] = json.loads(out[key]) if out[key] else {}
            except json.JSONDecodeError:
                out[key] = {"_unreadable": out[key]}  # one bad row must not hide the others
        return out

    def to_csv(self, kind: str | None = None) -> str:
        """CSV with one column per top-level field and per settings./metrics. key."""
        rows = self.rows(kind)
        setting_keys = sorted({k for r in rows for k in r["settings"]})
        metric_keys = sorted({k for r in rows for k in r["metrics"]})
        header = list(COLUMNS[:7]) + [f"settings.{k}" for k in setting_keys] + [f"metrics.{k}" for k in metric_keys]
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        for r in rows:
            flat = [r[c] for c in COLUMNS[:7]]
            flat += [_cell(r["settings"].get(k)) for k in setting_keys]
            flat += [_cell(r["metrics"].get(k)) for k in metric_keys]
            writer.writerow(flat)
        return buf.getvalue()


def _cell(value):
    return json.dumps(value) if isinstance(value, (dict, list)) else ("" if value is None else value)


def flatten_rows(rows: list[dict]) -> list[dict]:
    """Rows with settings./metrics. keys lifted to top level (scalars only), for tables and charts."""
    out = []
    for r in rows:
        flat = {c: r[c] for c in COLUMNS[:7]}
        for prefix in ("settings", "metrics"):
            for k, v in r[prefix].items():
                if isinstance(v, (int, float, str, bool)) or v is None:
                    flat[f"{prefix}.{k}"] = v
        out.append(flat)
    return out
