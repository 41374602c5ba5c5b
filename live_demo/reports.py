"""Typed results of the live demo's runs; each writes its own run-history rows with `record(history)`.

Torch-free: a report holds plain numbers, lists and dicts (and, for display, the compression or speculative
result object it came from). History rows go through common.history.RunHistory; the quantization rows carry the
method's weight format id from common.formats, so the recommender's calibration can match them without guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

QUANT_METRICS = ("decode_tokens_per_s", "decode_tokens_per_s_min", "decode_tokens_per_s_max", "timing_runs",
                 "weight_bytes", "perplexity", "linear_weight_bytes")


@dataclass(frozen=True)
class RunInfo:
    """Which model ran where: the columns every history row shares."""

    model_id: str
    device: str
    device_name: str
    dtype: str
    num_params: int

    @classmethod
    def from_model(cls, lm) -> RunInfo:
        """From a models.LoadedModel."""
        return cls(lm.model_id, lm.device, lm.device_name, lm.dtype, lm.num_params)

    def write(self, history, kind: str, settings: dict, metrics: dict) -> int:
        return history.record(kind, self.model_id, self.device, self.device_name, self.dtype, settings, metrics)


@dataclass
class QuantizationReport:
    """The baseline and each quantized copy: bytes, perplexity, decode tok/s (median, min, max), answers.

    baseline / methods[name]: dicts of measure_model's keys (weight_bytes, linear_weight_bytes in bytes;
    perplexity; decode_tokens_per_s and its _min/_max in tokens/s; answer) plus, for methods,
    perplexity_change, speedup_vs_baseline, linear_bytes_vs_fp16 and per_layer_error; a method that failed in a
    keep-going run holds {"error": message}. weight_formats: method (and the baseline's name) -> format id.
    """

    run: RunInfo
    baseline: dict
    fp16: dict
    methods: dict
    weight_formats: dict
    eval_tokens: int
    max_new_tokens: int
    source: str = "page"

    def succeeded(self) -> list[str]:
        return [m for m, r in self.methods.items() if "error" not in r]

    def record(self, history) -> list[int]:
        """One history row per measured model (baseline first); returns the row ids."""
        ids = []
        for name, row in [(self.baseline["method"], self.baseline)] + [(m, self.methods[m]) for m in self.succeeded()]:
            settings = {"method": name, "weight_format": self.weight_formats[name], "source": self.source}
            metrics = {k: row[k] for k in QUANT_METRICS if k in row} | {"num_params": self.run.num_params}
            ids.append(self.run.write(history, "quantization", settings, metrics))
        return ids


@dataclass
class CompressionReport:
    """One compressed prompt: the result (tokens and keep mask), prefill seconds, and quality when known.

    quality_kept: geometric-mean answer probability after / before compression (None without a reference).
    """

    run: RunInfo
    result: Any  # compression.CompressionResult
    method: str
    target_ratio: float
    compressed_context: str
    prefill_seconds_full: float
    prefill_seconds_compressed: float
    item_id: str | None = None
    answer_prob_full: float | None = None
    answer_prob_compressed: float | None = None
    quality_kept: float | None = None
    source: str = "page"

    @property
    def ratio(self) -> float:
        return self.result.ratio

    @property
    def original_tokens(self) -> int:
        return self.result.original_tokens

    @property
    def compressed_tokens(self) -> int:
        return self.result.compressed_tokens

    def metrics(self) -> dict:
        out = {"ratio": self.ratio, "original_tokens": self.original_tokens,
               "compressed_tokens": self.compressed_tokens, "seconds": self.result.seconds,
               "prefill_seconds_full": self.prefill_seconds_full,
               "prefill_seconds_compressed": self.prefill_seconds_compressed}
        if self.quality_kept is not None:
            out |= {"quality_kept": self.quality_kept, "answer_prob_full": self.answer_prob_full,
                    "answer_prob_compressed": self.answer_prob_compressed}
        return out

    def record(self, history) -> list[int]:
        settings = {"method": self.method, "ratio": self.target_ratio, "item": self.item_id, "source": self.source}
        return [self.run.write(history, "compression", settings, self.metrics())]


@dataclass
class CompressionEvalReport:
    """Quality kept over a QA set, per method: ratio, quality_kept, seconds, prefill seconds (and token F1)."""

    run: RunInfo
    target_ratio: float
    methods: dict
    examples: dict = field(default_factory=dict)
    source: str = "page"

    def record(self, history) -> list[int]:
        return [self.run.write(history, "compression", {"method": m, "ratio": self.target_ratio, "item": "qa-set",
                                                        "source": self.source}, row)
                for m, row in self.methods.items()]


@dataclass
class SpeculativeReport:
    """One speculative run, with plain decoding and transformers' own generate timed beside it.

    tokens_per_s / plain_tokens_per_s: median over the timed runs, with {"median","min","max","n"} spreads in
    `timings`. identical_to_greedy is None when sampling. draft_params: parameters the drafter reads per
    proposal (0 for prompt lookup).
    """

    run: RunInfo
    drafter: str
    draft_len: int
    temperature: float
    spec: Any  # speculative.SpecResult (median run)
    tokens: list
    text: str
    draft_params: int
    prompt_ids: list = field(default_factory=list)
    plain_tokens_per_s: float | None = None
    identical_to_greedy: bool | None = None
    transformers_tokens_per_s: float | None = None
    timings: dict = field(default_factory=dict)
    decode_path: str = "eager"
    source: str = "page"
    decode_note: str = ""

    @property
    def stats(self) -> dict:
        return self.spec.stats() | {"tokens_per_s": self.timings.get("speculative", {}).get(
            "median", self.spec.tokens_per_s)}

    @property
    def from_draft(self) -> list[bool]:
        return self.spec.from_draft

    def metrics(self) -> dict:
        out = dict(self.stats)
        out |= {"plain_tokens_per_s": self.plain_tokens_per_s, "identical_to_greedy": self.identical_to_greedy,
                "transformers_assisted_tokens_per_s": self.transformers_tokens_per_s,
                "draft_params": self.draft_params}
        for name, s in self.timings.items():
            out[f"{name}_tokens_per_s_min"], out[f"{name}_tokens_per_s_max"] = s["min"], s["max"]
        return out

    def record(self, history) -> list[int]:
        settings = {"drafter": self.drafter, "draft_len": self.draft_len, "temperature": self.temperature,
                    "decode_path": self.decode_path, "source": self.source}
        return [self.run.write(history, "speculative", settings, self.metrics())]


@dataclass
class SweepReport:
    """Decode throughput against batch size (see live_demo.sweep): one row per method and batch.

    rows: {"method", "weight_format", "batch", "tokens_per_s" (median) with _min/_max, "runs", "weight_bytes",
    "achieved_gbps", "pct_of_peak"} or {"method", "batch", "error"}; peak_gbps: measured copy bandwidth (GB/s).
    """

    run: RunInfo
    peak_gbps: float
    rows: list
    new_tokens: int
    decode_path: str
    decode_note: str = ""
    source: str = "page"

    def record(self, history) -> list[int]:
        """One history row (kind "sweep") per measured method and batch."""
        ids = []
        for row in (r for r in self.rows if "error" not in r):
            settings = {"method": row["method"], "weight_format": row["weight_format"], "batch": row["batch"],
                        "new_tokens": self.new_tokens, "decode_path": self.decode_path, "source": self.source}
            metrics = {k: v for k, v in row.items() if k not in ("method", "weight_format", "batch")}
            ids.append(self.run.write(history, "sweep", settings, metrics | {"peak_gbps": self.peak_gbps,
                                                                             "num_params": self.run.num_params}))
        return ids


def short_dtype(dtype: str) -> str:
    """float32 -> fp32, float16 -> fp16, bfloat16 -> bf16 (the names used in the run history)."""
    return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(dtype, dtype)
