"""ML calibration of the roofline: learn per-engine / GPU-class / kernel corrections from published measurements.

Target: y = log(measured rate / prior rate), where the prior is the roofline at the kernel's typical share of
peak bandwidth (formats.prior_mbu) or FLOPs (costs.PREFILL_MFU_PRIOR). A small ridge regression on one-hot
(engine, GPU class, kernel, parallel mode) plus log-scale sizes predicts y; predictions are clipped to the
range seen in training. Leave-one-source-out (LOSO) residuals give the uncertainty band.
Live-demo runs from the run history are added as rows for the user's own machine (see history_measurements).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from common.formats import WEIGHT_FORMAT_IDS
from common.history import HistoryError, RunHistory, default_db_path

from . import costs
from .errors import RecommenderInputError
from .estimate import (
    ENGINES,
    SERVING_ENGINES,
    InferenceConfig,
    compute_peak_flops,
    decode_step_roofline,
    inference_memory,
    parallel_mode,
    prefill_roofline,
    saturated_throughput,
)
from .formats import WeightFormat, kv_bytes_per_element, weight_format
from .hardware import GPU
from .models import ModelSpec, model_presets

DATA_FILE = Path(__file__).parent / "data" / "measurements.csv"
# Published measurements gathered for the engines, kernels and GPUs of 2024-26 (same columns, own source per row).
DATA_FILES = (DATA_FILE, Path(__file__).parent / "data" / "measurements_2025.csv")
DECODE_METRICS = ("decode_tokens_per_s", "decode_ms_per_token_amortized", "throughput_tokens_per_s")
PREFILL_METRICS = ("prefill_tokens_per_s", "ttft_ms")
METRICS = DECODE_METRICS + PREFILL_METRICS + ("memory",)
CATEGORICAL = ("engine", "gpu_class", "kernel", "mode")
# Nominal coverage of the uncertainty band: a split-conformal band on leave-one-source-out residuals.
BAND_LEVEL = 0.8
# A single-stream decode rate whose source states no lengths (ExLlamaV2's and MLC's README tables) is evaluated as
# llama-bench's tg128: a 1-token prompt and 128 new tokens. At batch 1 the KV read is then under 1 % of a 7B model's
# weight read, so the choice barely matters while the context stays short.
UNSTATED_DECODE_LENGTHS = (1, 128)
RIDGE_ALPHA = 3.0   # decode: picked from {1, 3, 10, 30, 100, 300, 1000} by leave-one-source-out error (docs/recommender.md)


# ------------------------------------------------------------------ loading
def load_measurements(path: Path | str | None = None) -> list[dict]:
    """The bundled measurement files (or one file) as dicts with typed fields; raises ValueError on a malformed row."""
    rows = []
    for one in ([path] if path else DATA_FILES):
        rows += _load_measurement_file(Path(one))
    return rows


def _load_measurement_file(path: Path) -> list[dict]:
    rows = []
    with open(path, newline="") as handle:
        for raw in csv.DictReader(handle):
            row = dict(raw)
            for key in ("num_gpus", "batch", "prompt_len", "gen_len"):
                row[key] = int(row[key])
            row["value"] = float(row["value"])
            if row["kv"] == "auto":   # the engine's default: the model's 16-bit dtype
                row["kv"] = "fp16"
            if row["metric"] not in METRICS:
                raise ValueError(f"measurements.csv row {row['id']}: unknown metric {row['metric']!r}")
            if not row["source_url"].startswith("http"):
                raise ValueError(f"measurements.csv row {row['id']}: source_url must be a URL")
            rows.append(row)
    return rows


def _local_cpu(bandwidth_gbps: float) -> GPU:
    return GPU(id="local-cpu", name="this machine (CPU)", memory_gib=24, bandwidth_gbps=bandwidth_gbps,
               fp16_tflops=0.5, vendor="cpu", kind="cpu", bf16=False, flash_attention_2=False,
               confidence="inferred", source="bandwidth inferred from live-demo runs (calibration.py)")


def history_measurements(db_path: Path | str | None = None) -> list[dict]:
    """Live-demo quantization runs as calibration rows (empty when there is no history).

    Each run gives decode tok/s and the weight bytes actually read. A CPU has no datasheet bandwidth here, so the
    local device's bandwidth is inferred: the best achieved weight bandwidth (bytes x tok/s) among fp32/bf16 runs,
    divided by the fp16 prior share (0.69). Rows then teach the model how int8/int4 kernels on *this* machine
    compare with that baseline (engine 'pytorch-cpu', GPU class 'cpu'; no estimate targets that device, so CPU runs
    correct nothing else). CUDA runs map by device name to their GPU preset and count as transformers ('hf') runs,
    the engine the live demo's decoding is built on.
    """
    raw = _read_history(db_path)
    runs = []
    for run in raw:
        metrics, settings = run.get("metrics") or {}, run.get("settings") or {}
        try:
            tps = float(metrics["decode_tokens_per_s"])
            wbytes = float(metrics["weight_bytes"])
            params = float(metrics.get("num_params") or 0)
        except (KeyError, TypeError, ValueError):
            continue
        if not (tps > 0 and wbytes > 0 and math.isfinite(tps) and math.isfinite(wbytes)):
            continue
        weight_format_id = settings.get("weight_format")
        if weight_format_id not in WEIGHT_FORMAT_IDS:
            continue   # rows from before live-demo methods named their weight format: nothing to guess from
        runs.append({"run": run, "tps": tps, "bytes": wbytes, "params": params, "format": weight_format_id})
    if not runs:
        return []
    baseline = [r["bytes"] * r["tps"] for r in runs if r["format"] in ("fp32", "fp16", "bf16")] or \
               [r["bytes"] * r["tps"] for r in runs]
    bandwidth_gbps = max(baseline) / 0.69 / 1e9
    rows = []
    for r in runs:
        run = r["run"]
        device = str(run.get("device") or "cpu")
        rows.append({
            "id": f"history-{run.get('id')}", "source_id": "live-history", "source_url": "local run history",
            # a CUDA run names its device ('NVIDIA H200'), which _match_device_name maps to a preset
            "model": run.get("model_id") or "local",
            "gpu": "local-cpu" if device == "cpu" else str(run.get("device_name") or device),
            "num_gpus": 1, "engine": "pytorch-cpu" if device == "cpu" else "hf",
            "weights": r["format"], "kv": "fp16", "batch": 1, "prompt_len": 1, "gen_len": 1,
            "metric": "decode_tokens_per_s", "value": r["tps"], "unit": "tok/s", "scope": "",
            "notes": f"live demo run on {run.get('device_name') or device}", "_weight_bytes": r["bytes"],
            "_params": r["params"], "_device": _local_cpu(bandwidth_gbps) if device == "cpu" else None,
            "_device_name": run.get("device_name") or device,
        })
    return rows


def _read_history(db_path: Path | str | None) -> list[dict]:
    """Rows of kind 'quantization' from the run history (common.history); empty when there is none.

    A history that cannot be read (locked, corrupt) calibrates without local rows rather than failing the page.
    """
    path = Path(db_path) if db_path is not None else default_db_path()
    if not path.exists():
        return []
    try:
        return list(RunHistory(path=path).rows(kind="quantization"))
    except HistoryError:
        return []


# ------------------------------------------------------------------ analytic predictions for one row
@dataclass
class RowPrediction:
    family: str                 # decode | prefill | throughput | memory
    measured: float             # rate (tok/s) for decode/prefill/throughput; bytes for memory
    roofline: float             # pure roofline rate, or analytic bytes
    prior: float                # roofline at prior efficiencies (same as roofline for memory)
    features: dict = field(default_factory=dict)


def _resolve_row_gpu(row: dict) -> GPU | None:
    if row.get("_device") is not None:
        return row["_device"]
    if not row.get("gpu"):
        return None
    try:
        return GPU.from_name(row["gpu"])
    except ValueError:
        return _match_device_name(row["gpu"])


def _match_device_name(name: str) -> GPU | None:
    """Map a CUDA device name such as 'NVIDIA A100-SXM4-80GB' to a preset, or None."""
    from .hardware import gpu_presets

    lowered = name.lower().replace("nvidia", "").replace("geforce", "")
    best = None
    for gpu in gpu_presets().values():
        key = gpu.id.split("-")[0] if gpu.id.startswith(("a100", "h100")) else gpu.id.replace("rtx-", "")
        if key in lowered.replace(" ", ""):
            if gpu.id.startswith("a100"):
                gpu = gpu_presets()["a100-80gb" if "80" in lowered else "a100-40gb"]
            elif gpu.id.startswith("h100"):   # 'NVIDIA H100 80GB HBM3' is the SXM part, 'NVIDIA H100 PCIe' the card
                gpu = gpu_presets()["h100-pcie" if "pcie" in lowered else "h100-sxm"]
            best = gpu
    return best


def decode_features(engine: str, gpu: GPU, fmt: WeightFormat, num_gpus: int, batch: int, bytes_per_gpu: float,
                    mode: str) -> dict:
    return {"engine": engine, "gpu_class": gpu.gpu_class, "kernel": fmt.kernel, "mode": mode,
            "log_bytes": math.log2(max(bytes_per_gpu, 1.0) / 1e9), "log_batch": math.log2(max(batch, 1)),
            "log_gpus": math.log2(max(num_gpus, 1)), "log_bw": math.log2(gpu.bandwidth_gbps / 1000)}


def prefill_features(engine: str, gpu: GPU, fmt: WeightFormat, num_gpus: int, tokens: int, mode: str) -> dict:
    """Features of one prefill: the categories plus log2 of the prompt tokens, the GPU count and the tensor peak the
    engine's kernels run at (estimate.compute_peak_flops, in units of 100 TFLOP/s), and its excess over
    PREFILL_PEAK_HINGE."""
    peak = max(compute_peak_flops(gpu, fmt, engine), 1e10)
    return {"engine": engine, "gpu_class": gpu.gpu_class, "kernel": fmt.kernel, "mode": mode,
            "log_tokens": math.log2(max(tokens, 1)), "log_gpus": math.log2(max(num_gpus, 1)),
            "log_peak": math.log2(peak / 1e14), "log_peak_above": max(math.log2(peak / PREFILL_PEAK_HINGE), 0.0)}


def throughput_features(engine: str, gpu: GPU, fmt: WeightFormat, num_gpus: int, sequences: int,
                        prefill_share: float, mode: str) -> dict:
    """Features of one saturated-server throughput (docs/cost_model.md §3.8): the categories plus log2 of the
    concurrent sequences B and of the GPU count, and the share of the prior step time spent on prefill (0-1)."""
    return {"engine": engine, "gpu_class": gpu.gpu_class, "kernel": fmt.kernel, "mode": mode,
            "log_batch": math.log2(max(sequences, 1)), "log_gpus": math.log2(max(num_gpus, 1)),
            "prefill_share": float(prefill_share)}


def is_saturated_throughput_row(row: dict) -> bool:
    """A saturated-server row (batch 0: the engine ran as many sequences as it could) whose metric is the output
    tokens/s of the whole server, on a continuously-batching engine, with both lengths stated."""
    return (row["batch"] == 0 and row["metric"] == "throughput_tokens_per_s" and row["engine"] in SERVING_ENGINES
            and min(row["prompt_len"], row["gen_len"]) >= 1)


def evaluable(row: dict) -> bool:
    """A row the cost model can evaluate: a known engine and model, the lengths its metric needs (a prefill row needs
    a prompt, a decode row an output; llama-bench's pp512 and tg128 rows carry a zero for the other length), and a
    real batch, except that batch 0 (a saturated server) is evaluable for the server's output tokens/s on a
    continuously-batching engine with both lengths stated (is_saturated_throughput_row, the "throughput" family).
    Other batch-0 rows stay out by rule: TTFT or per-stream decode speed under load depend on the request arrival
    process and queueing, which the cost model does not describe, and rows without stated lengths (ShareGPT
    traces) have no ISL/OSL to evaluate."""
    if "_weight_bytes" in row:
        return True
    if row["batch"] == 0:
        return (is_saturated_throughput_row(row) and row["model"] in model_presets()
                and _known_precisions(row))
    if row["metric"] == "memory":
        lengths_ok = row["scope"] == "weights" or min(row["prompt_len"], row["gen_len"]) >= 1
    elif row["metric"] in PREFILL_METRICS:
        # scope "first-call": the timed forward was the first after loading, one-time costs included
        lengths_ok = row["prompt_len"] >= 1 and row.get("scope") != "first-call"
    else:   # a decode row needs an output length, or states none at all (UNSTATED_DECODE_LENGTHS)
        lengths_ok = row["gen_len"] >= 1 or row["prompt_len"] == 0
    return (_known_precisions(row) and row["engine"] in ENGINES and row["batch"] >= 1
            and row["model"] in model_presets() and lengths_ok)


def _known_precisions(row: dict) -> bool:
    try:
        weight_format(row["weights"])
        kv_bytes_per_element(row["kv"])
    except RecommenderInputError:
        return False
    return True


def predict_row(row: dict) -> RowPrediction | None:
    """Analytic (uncalibrated) prediction for one measurement row, or None when it cannot be evaluated."""
    if not evaluable(row):
        return None
    gpu = _resolve_row_gpu(row)
    metric = row["metric"]
    fmt = weight_format(row["weights"])
    if "_weight_bytes" in row:   # live history row: bytes measured, tiny custom model
        if gpu is None:
            return None
        bw = gpu.bandwidth_gbps * 1e9
        roof_s = row["_weight_bytes"] / bw
        prior_s = roof_s / fmt.prior_mbu
        feats = decode_features(row["engine"], gpu, fmt, 1, 1, row["_weight_bytes"], "single")
        return RowPrediction("decode", row["value"], 1 / roof_s, 1 / prior_s, feats)
    model = ModelSpec.from_name(row["model"])
    if metric == "memory":
        measured = row["value"] * (costs.GIB if row["unit"] == "GiB" else 1e9)
        if row["scope"] == "weights":
            predicted = _weight_bytes(model, fmt)
        else:
            cfg = InferenceConfig(weights=row["weights"], kv=row["kv"], engine=row["engine"],
                                  num_gpus=row["num_gpus"], batch=row["batch"], prompt_len=row["prompt_len"],
                                  gen_len=row["gen_len"])
            parts = inference_memory(model, gpu, cfg)
            predicted = sum(v for k, v in parts.items() if k not in ("capacity", "offloaded"))
            if row["scope"] == "framework":   # allocator peaks exclude the CUDA context
                predicted -= costs.CUDA_CONTEXT_BYTES
        return RowPrediction("memory", measured, predicted, predicted)
    if gpu is None:
        return None
    prompt_len, gen_len = row["prompt_len"], row["gen_len"]
    if metric in DECODE_METRICS and prompt_len == gen_len == 0:
        prompt_len, gen_len = UNSTATED_DECODE_LENGTHS
    cfg = InferenceConfig(weights=row["weights"], kv=row["kv"], engine=row["engine"], num_gpus=row["num_gpus"],
                          batch=max(row["batch"], 1), prompt_len=max(prompt_len, 1), gen_len=max(gen_len, 1))
    if _weights_spill(model, gpu, cfg, fmt):
        return None
    mode = parallel_mode(cfg.engine, cfg.num_gpus)
    if row["batch"] == 0:   # a saturated server: the throughput family (docs/cost_model.md §3.8)
        try:
            sat = saturated_throughput(model, gpu, cfg)
        except RecommenderInputError:
            return None
        feats = throughput_features(cfg.engine, gpu, fmt, cfg.num_gpus, sat["sequences"], sat["prefill_share"], mode)
        return RowPrediction("throughput", row["value"], sat["roofline_tokens_per_s"], sat["tokens_per_s"], feats)
    if metric in PREFILL_METRICS:
        measured_s = row["value"] / 1e3 if metric == "ttft_ms" else cfg.batch * cfg.prompt_len / row["value"]
        roof_s = prefill_roofline(model, gpu, cfg)
        prior_s = prefill_roofline(model, gpu, cfg, prior=True)
        feats = prefill_features(cfg.engine, gpu, fmt, cfg.num_gpus, cfg.batch * cfg.prompt_len, mode)
        return RowPrediction("prefill", 1 / measured_s, 1 / roof_s, 1 / prior_s, feats)
    step = decode_step_roofline(model, gpu, cfg)
    feats = decode_features(cfg.engine, gpu, fmt, cfg.num_gpus, cfg.batch, step["bytes_per_gpu"], mode)
    if metric == "throughput_tokens_per_s":
        # whole static batch: prefill then gen_len steps; rate = b * g / total time
        total_roof = prefill_roofline(model, gpu, cfg) + cfg.gen_len * step["roofline_s"]
        total_prior = prefill_roofline(model, gpu, cfg, prior=True) + cfg.gen_len * step["prior_s"]
        scale = cfg.batch * cfg.gen_len
        return RowPrediction("decode", row["value"] / cfg.batch, scale / total_roof / cfg.batch,
                             scale / total_prior / cfg.batch, feats)
    if metric == "decode_ms_per_token_amortized":
        measured = 1e3 / (row["value"] * cfg.batch)
    else:
        measured = row["value"]
    return RowPrediction("decode", measured, 1 / step["roofline_s"], 1 / step["prior_s"], feats)


def _weights_spill(model: ModelSpec, gpu: GPU, cfg: InferenceConfig, fmt: WeightFormat) -> bool:
    """True when the weights alone exceed the GPUs' memory: the run kept layers in CPU RAM (e.g. llama.cpp -ngl below
    the layer count), whose speed is set by the host, so the row cannot calibrate GPU kernel efficiency."""
    return _weight_bytes(model, fmt) > gpu.usable_memory_gib * costs.GIB * cfg.num_gpus


def _weight_bytes(model: ModelSpec, fmt: WeightFormat) -> float:
    """All weight bytes of the model stored in `fmt` (costs.weight_bytes' total)."""
    return costs.weight_bytes(model, fmt.bits_per_weight, fmt.quantizes_embeddings)["total"]


# ------------------------------------------------------------------ the learned correction
class EfficiencyCorrector:
    """Ridge regression of log(measured/prior) on one-hot categories + numeric features (scikit-learn contract)."""

    def __init__(self, alpha: float = RIDGE_ALPHA, numeric: tuple[str, ...] = (),
                 categorical: tuple[str, ...] = CATEGORICAL):
        self.alpha = alpha
        self.numeric = numeric
        self.categorical = categorical

    def _matrix(self, feats: list[dict], fill_unseen: bool = True) -> np.ndarray:
        """One-hot + numeric design matrix. A category level never seen in fit gets the training mean of its
        one-hot block, i.e. the average effect, instead of silently meaning 'like the reference level'."""
        columns, unseen = [], []
        for name in self.categorical:
            values = [f.get(name) for f in feats]
            start = len(columns)
            for level in self.levels_[name]:
                columns.append([1.0 if v == level else 0.0 for v in values])
            unseen.append((start, len(columns), [v not in self.levels_[name] for v in values]))
        for name in self.numeric:
            columns.append([float(f[name]) for f in feats])
        x = np.asarray(columns, dtype=float).T if columns else np.zeros((len(feats), 0))
        if fill_unseen and hasattr(self, "mean_"):
            for start, stop, mask in unseen:
                rows = np.asarray(mask, dtype=bool)
                if rows.any():
                    x[np.ix_(rows, np.arange(start, stop))] = self.mean_[start:stop]
        return x

    def fit(self, feats: list[dict], y) -> EfficiencyCorrector:
        from sklearn.linear_model import Ridge

        y = np.asarray(y, dtype=float)
        if len(feats) != len(y) or len(y) < 3 or not np.all(np.isfinite(y)):
            raise ValueError("need at least 3 finite calibration rows")
        self.levels_ = {name: sorted({str(f.get(name)) for f in feats}) for name in self.categorical}
        x = self._matrix([{k: str(v) if k in self.categorical else v for k, v in f.items()} for f in feats])
        self.mean_ = x.mean(axis=0)
        self.model_ = Ridge(alpha=self.alpha).fit(x - self.mean_, y)
        self.y_range_ = (float(y.min()), float(y.max()))
        return self

    def predict(self, feats: list[dict]) -> np.ndarray:
        x = self._matrix([{k: str(v) if k in self.categorical else v for k, v in f.items()} for f in feats])
        return np.clip(self.model_.predict(x - self.mean_), *self.y_range_)


DECODE_NUMERIC = ("log_bytes", "log_batch", "log_gpus", "log_bw")
PREFILL_NUMERIC = ("log_tokens", "log_peak", "log_peak_above")
# Prefill: engine and kernel levels, prompt size and the engine's tensor peak (compute_peak_flops), with a hinge:
# log_peak_above = log2(peak / PREFILL_PEAK_HINGE) above the hinge, 0 below. The hinge was placed by eye on the
# per-GPU plot of measured/prior prefill rate (RTX 3090/4090, A6000 and A100 on one line; L40S, RTX 6000 Ada and
# H100 below it). The feature set and alpha were then picked among ~100 variants (category sets x numeric sets x
# alpha in {1, 3, 10, 30, 100, 300}) by leave-one-source-out median and 90th-percentile error on the prefill rows
# (docs/recommender.md), so the reported held-out error carries that selection; the GPU class adds nothing once
# the peak is a feature.
PREFILL_PEAK_HINGE = 2 ** 1.5 * 1e14   # FLOP/s (~283 TFLOP/s)
PREFILL_CATEGORICAL = ("engine", "kernel")
PREFILL_ALPHA = 1.0
# Saturated-server throughput (docs/cost_model.md §3.8): engine, kernel and GPU class, plus log2 of the concurrent
# sequences B and of the GPU count and the prefill share of the step. Fixed before looking at errors; alpha picked
# from {0.3, 1, 3, 10, 30, 100} by leave-one-source-out median error on these rows (docs/recommender.md).
THROUGHPUT_NUMERIC = ("log_batch", "log_gpus", "prefill_share")
THROUGHPUT_CATEGORICAL = ("engine", "gpu_class", "kernel")
THROUGHPUT_ALPHA = 0.3
FAMILIES = {"decode": (DECODE_NUMERIC, CATEGORICAL, RIDGE_ALPHA),
            "prefill": (PREFILL_NUMERIC, PREFILL_CATEGORICAL, PREFILL_ALPHA),
            "throughput": (THROUGHPUT_NUMERIC, THROUGHPUT_CATEGORICAL, THROUGHPUT_ALPHA)}


def _corrector(family: str) -> EfficiencyCorrector:
    numeric, categorical, alpha = FAMILIES[family]
    return EfficiencyCorrector(alpha=alpha, numeric=numeric, categorical=categorical)


def _family_data(preds: list[tuple[dict, RowPrediction]], family: str):
    sel = [(row, p) for row, p in preds if p.family == family]
    feats = [p.features for _, p in sel]
    y = [math.log(p.measured / p.prior) for _, p in sel]
    groups = [row["source_id"] for row, _ in sel]
    return sel, feats, np.asarray(y), groups


def _loso_predictions(feats, y, groups, family: str) -> np.ndarray:
    """Out-of-source predictions of y: each source is predicted by a model fitted on the others."""
    out = np.zeros_like(y)
    for source in sorted(set(groups)):
        test = np.array([g == source for g in groups])
        train_feats = [f for f, t in zip(feats, test, strict=True) if not t]
        if len(train_feats) < 3:
            out[test] = 0.0
            continue
        model = _corrector(family).fit(train_feats, y[~test])
        out[test] = model.predict([f for f, t in zip(feats, test, strict=True) if t])
    return out


@dataclass
class Calibrator:
    """Fitted decode, prefill and saturated-throughput correctors, with LOSO-derived uncertainty bands."""

    decode_model: EfficiencyCorrector | None = None
    prefill_model: EfficiencyCorrector | None = None
    throughput_model: EfficiencyCorrector | None = None
    decode_band: tuple[float, float] = (0.0, 0.0)
    prefill_band: tuple[float, float] = (0.0, 0.0)
    throughput_band: tuple[float, float] = (0.0, 0.0)
    n_rows: int = 0
    n_history_rows: int = 0
    local_adjustments: tuple = ()

    def local_adjustment(self, engine: str, gpu: GPU, fmt: WeightFormat):
        """The LocalAdjustment for exactly this engine, device and kernel, or None."""
        for adj in self.local_adjustments:
            if (adj.engine, adj.gpu_id, adj.kernel) == (engine, gpu.id, fmt.kernel):
                return adj
        return None

    def decode_batch(self, keys: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(correction, low, high) arrays for many decode steps.

        Each key is (engine, gpu, fmt, num_gpus, batch, bytes_per_gpu, mode); divide the prior decode time by the
        correction to get the calibrated time, by `high`/`low` for the band's fast/slow ends.
        """
        n = len(keys)
        if self.decode_model is None or not n:
            return np.ones(n), np.ones(n), np.ones(n)
        y = self.decode_model.predict([decode_features(*k) for k in keys])
        if self.local_adjustments:
            for i, k in enumerate(keys):
                adj = self.local_adjustment(k[0], k[1], k[2])
                if adj is not None:
                    y[i] += adj.weight * math.log(adj.factor)
        return np.exp(y), np.exp(y + self.decode_band[0]), np.exp(y + self.decode_band[1])

    def prefill_batch(self, keys: list[tuple]) -> np.ndarray:
        """Prefill corrections for many keys (engine, gpu, fmt, num_gpus, tokens, mode)."""
        n = len(keys)
        if self.prefill_model is None or not n:
            return np.ones(n)
        return np.exp(self.prefill_model.predict([prefill_features(*k) for k in keys]))

    def throughput_batch(self, keys: list[tuple]) -> np.ndarray:
        """Saturated-throughput corrections (multiply the prior tokens/s) for many keys (engine, gpu, fmt, num_gpus,
        sequences, prefill_share, mode); ones when no throughput corrector was fitted."""
        n = len(keys)
        if self.throughput_model is None or not n:
            return np.ones(n)
        return np.exp(self.throughput_model.predict([throughput_features(*k) for k in keys]))


def fit_calibrator(rows: list[dict]) -> Calibrator:
    """Fit the decode, prefill and throughput correctors on the published rows; local live-demo rows only adjust
    their own device (decode).

    The bands come from split-conformal half-widths on leave-one-source-out residuals. Rows from the run history
    (source 'live-history') never enter the shared regression, so a CPU run of a 135M model cannot move a GPU
    estimate: each group of them (engine, device class, kernel) becomes a `LocalAdjustment` that applies only to
    estimates of that same group, shrunk towards no change while its runs are few.
    """
    published = [r for r in rows if r.get("source_id") != "live-history"]
    local = [r for r in rows if r.get("source_id") == "live-history"]
    preds = [(row, p) for row in published if (p := predict_row(row)) is not None]
    local_preds = [(row, p) for row in local if (p := predict_row(row)) is not None]
    cal = Calibrator(n_rows=len(preds) + len(local_preds), n_history_rows=len(local_preds))
    for family in FAMILIES:
        _, feats, y, groups = _family_data(preds, family)
        if len(y) < 3:
            continue
        model = _corrector(family).fit(feats, y)
        residual = y - _loso_predictions(feats, y, groups, family)
        half = conformal_halfwidth(residual)
        setattr(cal, f"{family}_model", model)
        setattr(cal, f"{family}_band", (-half, half))
    if cal.decode_model is not None:
        cal.local_adjustments = _local_adjustments(cal.decode_model, local_preds)
    return cal


# A group of n local runs moves its estimates by n / (n + LOCAL_SHRINK) of their median log residual.
LOCAL_SHRINK = 3.0


@dataclass(frozen=True)
class LocalAdjustment:
    """How the user's own runs correct estimates of one engine / device / kernel (and nothing else)."""

    engine: str
    gpu_class: str
    kernel: str
    gpu_id: str            # the device preset the runs were taken on ('local-cpu' for this machine's CPU)
    device_name: str
    runs: int
    factor: float          # multiply the decode rate by this (before the weight)
    weight: float          # n / (n + LOCAL_SHRINK)

    @property
    def applied_factor(self) -> float:
        return math.exp(self.weight * math.log(self.factor))

    def describe(self) -> str:
        return (f"adjusted by {self.runs} of your live-demo runs on {self.device_name} ({self.engine}, {self.kernel} "
                f"kernels): decode rate x{self.applied_factor:.2f} (weight {self.weight:.2f})")


def _local_adjustments(model: EfficiencyCorrector, local_preds: list) -> tuple[LocalAdjustment, ...]:
    groups: dict[tuple, list] = {}
    for row, pred in local_preds:
        if pred.family != "decode":
            continue
        f = pred.features
        residual = math.log(pred.measured / pred.prior) - float(model.predict([f])[0])
        device = _resolve_row_gpu(row)
        groups.setdefault((f["engine"], f["gpu_class"], f["kernel"], device.id), []).append((residual, row))
    out = []
    for (engine, gpu_class, kernel, gpu_id), items in sorted(groups.items()):
        n = len(items)
        median = float(np.median([r for r, _ in items]))
        out.append(LocalAdjustment(engine=engine, gpu_class=gpu_class, kernel=kernel, gpu_id=gpu_id,
                                   device_name=str(items[-1][1].get("_device_name") or gpu_class), runs=n,
                                   factor=math.exp(median), weight=n / (n + LOCAL_SHRINK)))
    return tuple(out)


@lru_cache(maxsize=2)
def default_calibrator(use_local_runs: bool = True) -> Calibrator:
    """Calibrator fitted once per process on the bundled measurements, plus (unless turned off) the live-demo runs
    of this machine as local adjustments."""
    return fit_calibrator(load_measurements() + (history_measurements() if use_local_runs else []))


def refresh_calibrator() -> Calibrator:
    """Drop the cached fit (e.g. after new live-demo runs) and refit."""
    default_calibrator.cache_clear()
    return default_calibrator()


# ------------------------------------------------------------------ accuracy report
def _abs_pct_errors(pred, measured) -> np.ndarray:
    pred, measured = np.asarray(pred, dtype=float), np.asarray(measured, dtype=float)
    return np.abs(pred - measured) / measured * 100


def conformal_halfwidth(residuals: np.ndarray, level: float = BAND_LEVEL) -> float:
    """Split-conformal half-width on |log residuals|: the ceil((n+1)*level)/n quantile (Vovk et al. 2005;
    Angelopoulos and Bates 2021, eq. 1), so a new row falls inside with probability >= level when rows are
    exchangeable. Leave-one-source-out residuals make the rows out of sample."""
    r = np.abs(np.asarray(residuals, dtype=float))
    n = len(r)
    if n == 0:
        return 0.0
    q = min(1.0, math.ceil((n + 1) * level) / n)
    return float(np.quantile(r, q, method="higher"))


def nested_band_coverage(residuals: np.ndarray, groups: list[str], level: float = BAND_LEVEL) -> float:
    """Share (%) of rows inside a band fitted without their own source: each source's rows are checked against the
    half-width computed from every other source's residuals, so the figure is out of sample."""
    residuals = np.asarray(residuals, dtype=float)
    inside = []
    for source in sorted(set(groups)):
        mask = np.array([g == source for g in groups])
        half = conformal_halfwidth(residuals[~mask], level)
        inside += list(np.abs(residuals[mask]) <= half)
    return round(float(np.mean(inside)) * 100, 1) if inside else 0.0


def _grouped_errors(keys: list[str], predicted: np.ndarray, measured: np.ndarray) -> dict:
    """Held-out median/p90 absolute % error per group (engine or kernel family)."""
    out = {}
    for key in sorted(set(keys)):
        mask = np.array([k == key for k in keys])
        out[key] = _summary(_abs_pct_errors(predicted[mask], measured[mask]))
    return out


def _summary(errors: np.ndarray) -> dict:
    if len(errors) == 0:
        return {"n": 0}
    return {"n": int(len(errors)), "median_abs_pct_error": round(float(np.median(errors)), 1),
            "p90_abs_pct_error": round(float(np.quantile(errors, 0.9)), 1)}


def accuracy_report(rows: list[dict] | None = None) -> dict:
    """Leave-one-source-out accuracy of the calibrated model vs. the pure and prior rooflines."""
    rows = load_measurements() if rows is None else rows
    preds = [(row, p) for row in rows if (p := predict_row(row)) is not None]
    report: dict = {"rows": len(preds), "sources": len({r["source_id"] for r, _ in preds})}
    for family in FAMILIES:
        sel, feats, y, groups = _family_data(preds, family)
        if len(y) < 3:
            continue
        loso = _loso_predictions(feats, y, groups, family)
        measured = np.array([p.measured for _, p in sel])
        prior = np.array([p.prior for _, p in sel])
        roof = np.array([p.roofline for _, p in sel])
        calibrated = prior * np.exp(loso)
        per_source = {}
        for source in sorted(set(groups)):
            mask = np.array([g == source for g in groups])
            per_source[source] = {"n": int(mask.sum()),
                                  "roofline": _summary(_abs_pct_errors(roof[mask], measured[mask])),
                                  "prior": _summary(_abs_pct_errors(prior[mask], measured[mask])),
                                  "calibrated_loso": _summary(_abs_pct_errors(calibrated[mask], measured[mask]))}
        report[family] = {
            "roofline": _summary(_abs_pct_errors(roof, measured)),
            "prior": _summary(_abs_pct_errors(prior, measured)),
            "calibrated_loso": _summary(_abs_pct_errors(calibrated, measured)),
            "band_coverage_pct": None,
            "per_source": per_source,
        }
        residual = y - loso
        half = conformal_halfwidth(residual)
        report[family]["band_log"] = [round(-half, 3), round(half, 3)]
        report[family]["band_nominal_pct"] = round(BAND_LEVEL * 100)
        report[family]["band_coverage_pct"] = nested_band_coverage(residual, groups)
        for key, label in (("engine", "per_engine"), ("kernel", "per_precision")):
            report[family][label] = _grouped_errors([f[key] for f in feats], calibrated, measured)
        if family == "throughput":
            # A diagnostic beside LOSO (chosen nothing): with two sources LOSO leaves TensorRT-LLM's rows uncorrected,
            # so also predict each model's rows, and each GPU's, from a fit on the rest of the rows.
            for key in ("model", "gpu"):
                held = _loso_predictions(feats, y, [row[key] for row, _ in sel], family)
                report[family][f"leave_one_{key}_out"] = _summary(_abs_pct_errors(prior * np.exp(held), measured))
    mem = [p for _, p in preds if p.family == "memory"]
    if mem:
        report["memory"] = {"analytic": _summary(_abs_pct_errors([p.prior for p in mem], [p.measured for p in mem])),
                            "note": "memory is analytic (no fitted parameters), so every row is held out"}
    return report
