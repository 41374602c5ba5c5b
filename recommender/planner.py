"""Search technique stacks, drop incompatible/infeasible ones, rank, return the Pareto set and a diagnosis."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from . import costs
from .calibration import decode_features, default_calibrator, prefill_features
from .errors import RecommenderInputError, check_number, shorten
from .estimate import (
    WORKLOADS,
    InferenceConfig,
    TrainingConfig,
    compute_peak_flops,
    estimate_inference,
    estimate_training,
    parallel_mode,
    workload_method,
)
from .formats import kv_bytes_per_element, weight_format
from .hardware import GPU, gpu_presets
from .models import ModelSpec
from .techniques import Technique, catalog_ids, quality_tolerance, technique, techniques

QUALITY_LEVELS = ("lossless", "small", "aggressive")
KV_DTYPE = {"kv-fp16": "fp16", "kv-fp8": "fp8", "kv-int8": "int8", "kv-int4": "int4"}
ENGINE_TECHNIQUE = {"vllm": "vllm", "hf": None, "llama.cpp": None}
# techniques that are free in the 'simpler' tie-break (baseline precision, default KV, attention kernel)
FREE = {"fp16", "bf16", "kv-fp16", "flashattention", "full-finetune"}


@dataclass(frozen=True)
class PlanRequest:
    """What the user asked for. Budgets of None mean 'no budget'."""

    model: ModelSpec
    gpu: GPU
    num_gpus: int = 1
    workload: str = "inference"
    batch: int = 1
    prompt_len: int = 512
    gen_len: int = 256
    latency_ms_per_token: float | None = None
    ttft_ms: float | None = None
    quality: str = "small"
    max_plans: int = 25

    def validated(self) -> PlanRequest:
        check_number("number of GPUs", self.num_gpus, low=1, high=64, integer=True)
        check_number("batch", self.batch, low=1, high=100_000, integer=True)
        check_number("prompt length", self.prompt_len, low=1, high=10_000_000, integer=True)
        check_number("generation length", self.gen_len, low=1, high=10_000_000, integer=True)
        if self.latency_ms_per_token is not None:
            check_number("latency budget (ms/token)", self.latency_ms_per_token, low=1e-3, high=1e7)
        if self.ttft_ms is not None:
            check_number("time-to-first-token budget (ms)", self.ttft_ms, low=1e-3, high=1e8)
        check_number("number of plans to return", self.max_plans, low=1, high=1000, integer=True)
        if self.quality not in QUALITY_LEVELS:
            raise RecommenderInputError(
                f"quality must be one of {', '.join(QUALITY_LEVELS)}, got {shorten(self.quality)}")
        if self.workload not in WORKLOADS:
            raise RecommenderInputError(f"workload must be one of {', '.join(WORKLOADS)}, got {shorten(self.workload)}")
        return self


@dataclass
class Plan:
    stack: list[str]
    engine: str
    weights: str
    kv: str
    num_gpus: int
    memory_gib: float
    per_gpu_memory_gib: float
    capacity_gib: float
    decode_ms_per_token: float | None
    ttft_ms: float | None
    quality_risk: float
    fits: bool
    meets_latency: bool
    within_quality: bool
    offloaded_gib: float = 0.0
    step_time_s: float | None = None
    settings: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    pareto: bool = False

    @property
    def complexity(self) -> int:
        return sum(1 for t in self.stack if t not in FREE)

    def to_dict(self) -> dict:
        return {
            "techniques": catalog_ids(self.stack), "stack": list(self.stack),
            "labels": [techniques()[t].name for t in self.stack], "engine": self.engine, "weights": self.weights,
            "kv": self.kv, "num_gpus": self.num_gpus, "memory_gib": round(self.memory_gib, 3),
            "per_gpu_memory_gib": round(self.per_gpu_memory_gib, 3), "capacity_gib": round(self.capacity_gib, 3),
            "offloaded_gib": round(self.offloaded_gib, 3),
            "decode_ms_per_token": None if self.decode_ms_per_token is None else round(self.decode_ms_per_token, 3),
            "decode_tokens_per_s": None if not self.decode_ms_per_token else round(1e3 / self.decode_ms_per_token, 2),
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 2),
            "step_time_s": None if self.step_time_s is None else round(self.step_time_s, 4),
            "quality_risk": round(self.quality_risk, 3), "fits": self.fits, "meets_latency": self.meets_latency,
            "within_quality": self.within_quality, "pareto": self.pareto, "settings": self.settings,
            "reasons": self.reasons,
        }


# ------------------------------------------------------------------ option lists
def _supported(t: Technique, gpu: GPU, num_gpus: int) -> bool:
    req = t.requires
    if req.get("bf16") and not gpu.bf16:
        return False
    if req.get("fp8") and not gpu.fp8:
        return False
    if req.get("flash_attention_2") and not gpu.flash_attention_2:
        return False
    if req.get("int8_tensor_cores") and not gpu.int8_tensor_cores:
        return False
    if req.get("vendor") and gpu.vendor not in req["vendor"] and gpu.vendor != "custom":
        return False
    return num_gpus >= req.get("min_gpus", 1)


def _engine_ok(t: Technique | None, engine: str) -> bool:
    return t is None or not t.engines or engine in t.engines


def _options(category: str, gpu: GPU, num_gpus: int) -> list[Technique]:
    return [t for t in techniques().values() if t.category == category and _supported(t, gpu, num_gpus)]


def _engines(gpu: GPU) -> list[str]:
    out = ["hf", "llama.cpp"]
    if _supported(technique("vllm"), gpu, 1):
        out.insert(1, "vllm")
    return out


def _gpu_counts(num_gpus: int) -> list[int]:
    return [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= num_gpus]


# ------------------------------------------------------------------ inference search
def _base_weights(gpu: GPU) -> str:
    return "bf16" if gpu.bf16 else "fp16"


def _inference_combos(req: PlanRequest):
    gpu = req.gpu
    base = _base_weights(gpu)
    weights = [t for t in _options("weights", gpu, 1) if t.id not in ("fp16", "bf16")] + [technique(base)]
    prunes = [None] + _options("pruning", gpu, 1)
    kvs = _options("kv_precision", gpu, 1)
    evictions = [None] + _options("kv_eviction", gpu, 1)
    decodings = [None] + _options("decoding", gpu, 1)
    offloads = [None] + _options("offload", gpu, 1)
    for engine, w, p, k, e, d, o, n in itertools.product(_engines(gpu), weights, prunes, kvs, evictions,
                                                         decodings, offloads, _gpu_counts(req.num_gpus)):
        if not all(_engine_ok(t, engine) for t in (w, p, k, e, d, o)):
            continue
        if p is not None and w.id not in ("fp16", "bf16"):
            continue   # 2:4 sparse kernels are for 16-bit weights
        if o is not None and (n > 1 or d is not None or p is not None):
            continue   # offloading is a single-GPU, plain-decoding fallback here
        if engine == "llama.cpp" and k.id == "kv-fp8":
            continue
        yield engine, w, p, k, e, d, o, n


def _draft_fraction(model: ModelSpec, d: Technique | None) -> float:
    if d is None or d.params["decoding"]["kind"] != "draft":
        return 0.0
    # a draft ~10x smaller than the target (e.g. Llama-2-7B for 70B); at least 0.1B parameters
    return max(d.params["decoding"]["draft_fraction"], 0.1e9 / model.total_params)


def _config_for(req: PlanRequest, engine, w, p, k, e, d, o, n) -> InferenceConfig:
    keep_fraction, keep_tokens = 1.0, None
    if e is not None:
        keep_fraction = e.params["kv_eviction"].get("keep_fraction", 1.0)
        keep_tokens = e.params["kv_eviction"].get("keep_tokens")
    tokens_per_step, extra = 1.0, 0.0
    if d is not None and d.params["decoding"]["kind"] == "medusa":
        tokens_per_step = d.params["decoding"]["tokens_per_step"]
        heads = d.params["decoding"]["heads"]
        # each Medusa head: a residual block (h x h) + its own vocabulary projection (Cai et al. 2024), fp16
        extra = heads * (req.model.hidden ** 2 + req.model.vocab * req.model.hidden) * 2
    elif d is not None and d.params["decoding"]["kind"] == "lookup":
        tokens_per_step = d.params["decoding"]["tokens_per_step_chat"]
    fmt = w.params["weights"]["format"]
    return InferenceConfig(
        weights=fmt, kv=KV_DTYPE[k.id], engine=engine, num_gpus=n, batch=req.batch, prompt_len=req.prompt_len,
        gen_len=req.gen_len, kv_keep_fraction=keep_fraction, kv_keep_tokens=keep_tokens,
        body_factor=p.params["pruning"]["weight_bytes_factor"] if p is not None else 1.0,
        offload={None: "none", "flexgen": "overlap", "zero-inference": "serial"}[o.id if o else None],
        draft_fraction=_draft_fraction(req.model, d),
        draft_len=d.params["decoding"].get("draft_len", 4) if d is not None else 4,
        acceptance_rate=d.params["decoding"].get("acceptance_rate", 0.7) if d is not None else 0.7,
        tokens_per_step=tokens_per_step, extra_weight_bytes=extra)


class _FastEvaluator:
    """Vectorised-enough evaluation of many InferenceConfigs sharing a model/GPU (same formulas as estimate.py)."""

    def __init__(self, req: PlanRequest):
        self.req, self.model, self.gpu = req, req.model, req.gpu
        self.cal = default_calibrator()
        self.bw = self.gpu.bandwidth_gbps * 1e9
        self.link = self.gpu.link_gbps * 1e9
        m = self.model
        ctx = req.prompt_len + req.gen_len
        self.avg_ctx = req.prompt_len + req.gen_len / 2
        self.ctx = ctx
        self.act = costs.inference_activation_bytes(m, req.batch, req.prompt_len, flash=True)
        self._cache: dict = {}

    def _weights(self, fmt_id: str, body_factor: float):
        key = ("w", fmt_id, body_factor)
        if key not in self._cache:
            fmt = weight_format(fmt_id)
            total = costs.weight_bytes(self.model, fmt.bits_per_weight, fmt.quantizes_embeddings, body_factor)["total"]
            read = costs.weight_read_bytes_per_step(self.model, fmt.bits_per_weight, self.req.batch,
                                                    fmt.quantizes_embeddings, body_factor)
            self._cache[key] = (fmt, total, read)
        return self._cache[key]

    def _kv(self, kv: str, keep_fraction: float, keep_tokens):
        key = ("kv", kv, keep_fraction, keep_tokens)
        if key not in self._cache:
            total = costs.kv_cache_bytes(self.model, kv_bytes_per_element(kv), self.ctx, self.req.batch,
                                         keep_fraction, keep_tokens)
            self._cache[key] = (total, total * self.avg_ctx / self.ctx)
        return self._cache[key]

    def _comm(self, n: int, mode: str, tokens: int):
        if mode != "tensor":
            return 0.0
        return costs.tensor_parallel_comm_time(self.model, self.req.batch, tokens, n, self.link)

    def first_pass(self, cfg: InferenceConfig) -> dict:
        """Memory and uncalibrated step times; returns the features the calibrator needs."""
        m, req = self.model, self.req
        fmt, w_total, w_read = self._weights(cfg.weights, cfg.body_factor)
        kv_total, kv_read = self._kv(cfg.kv, cfg.kv_keep_fraction, cfg.kv_keep_tokens)
        n, mode = cfg.num_gpus, parallel_mode(cfg.engine, cfg.num_gpus)
        split = n if mode == "tensor" else 1
        kv_split = min(n, m.kv_heads) if mode == "tensor" else n
        weights = (w_total + cfg.extra_weight_bytes) * (1 + cfg.draft_fraction) / n
        kv = kv_total * (1 + cfg.draft_fraction) / kv_split
        act = self.act / (n if mode == "tensor" else 1)
        capacity = self.gpu.usable_memory_gib * costs.GIB * (costs.VLLM_MEMORY_UTILIZATION if cfg.engine == "vllm"
                                                             else 1.0)
        offloaded = 0.0
        if cfg.offload != "none":
            room = max(capacity - kv - act - costs.CUDA_CONTEXT_BYTES, 0.0)
            offloaded = max(weights - room, 0.0)
            weights -= offloaded
        per_gpu = weights + kv + act + costs.CUDA_CONTEXT_BYTES
        peak = compute_peak_flops(self.gpu, fmt)
        memory_s = (w_read + kv_read) / split / self.bw
        flops = costs.decode_flops_per_step(m.active_params, req.batch, self.avg_ctx, m)
        compute_s = flops / split / peak
        comm_s = self._comm(n, mode, 1)
        prior_s = max(memory_s / fmt.prior_mbu, compute_s / costs.PREFILL_MFU_PRIOR) + comm_s
        pf = costs.prefill_flops(m.active_params, req.batch, req.prompt_len, m) / split / peak
        prefill_prior = max(pf / costs.PREFILL_MFU_PRIOR, w_total / split / self.bw / fmt.prior_mbu) \
            + self._comm(n, mode, req.prompt_len)
        return {"cfg": cfg, "fmt": fmt, "per_gpu": per_gpu, "capacity": capacity, "offloaded": offloaded * n,
                "weights_gpu": weights, "prior_s": prior_s, "memory_s": memory_s, "compute_s": compute_s,
                "comm_s": comm_s, "mode": mode, "prefill_prior": prefill_prior, "w_read": w_read,
                "split": split, "peak": peak, "kv_read": kv_read,
                "dfeat": decode_features(cfg.engine, self.gpu, fmt, n, req.batch, (w_read + kv_read) / split, mode),
                "pfeat": prefill_features(cfg.engine, self.gpu, fmt, n, req.batch * req.prompt_len, mode)}

    def finish(self, r: dict, corr: float, pcorr: float) -> dict:
        cfg, m = r["cfg"], self.model
        offload_s = r["offloaded"] / cfg.num_gpus / self.link if r["offloaded"] > 0 else 0.0
        base = r["prior_s"] / corr
        step = max(base, offload_s) if cfg.offload == "overlap" else base + offload_s
        fmt = r["fmt"]
        per_token = step
        if cfg.draft_fraction > 0:
            g = cfg.draft_len
            flops_v = costs.decode_flops_per_step(m.active_params, self.req.batch * (g + 1), self.avg_ctx, m)
            verify_prior = max(r["memory_s"] / fmt.prior_mbu, flops_v / r["split"] / r["peak"]
                               / costs.PREFILL_MFU_PRIOR) + self._comm(cfg.num_gpus, r["mode"], g + 1)
            verify = max(step, verify_prior / corr)
            draft = r["prior_s"] * cfg.draft_fraction / corr
            per_token = costs.speculative_time_per_token(step, draft, verify, cfg.acceptance_rate, g)
        elif cfg.tokens_per_step > 1:
            width = int(round(cfg.tokens_per_step)) + 4
            flops_v = costs.decode_flops_per_step(m.active_params, self.req.batch * width, self.avg_ctx, m)
            verify_prior = max(r["memory_s"] / fmt.prior_mbu, flops_v / r["split"] / r["peak"]
                               / costs.PREFILL_MFU_PRIOR) + r["comm_s"]
            per_token = max(step, verify_prior / corr) / cfg.tokens_per_step
        fits = r["per_gpu"] <= r["capacity"] and not (cfg.offload != "none" and r["weights_gpu"] <= 0)
        return {"per_gpu": r["per_gpu"], "capacity": r["capacity"], "offloaded": r["offloaded"], "fits": fits,
                "decode_ms": per_token * 1e3, "ttft_ms": (r["prefill_prior"] / pcorr + offload_s) * 1e3,
                "step_plain_ms": base * 1e3}


def _stack_ids(req: PlanRequest, engine, w, p, k, e, d, o, n) -> list[str]:
    stack = [w.id]
    if p is not None:
        stack.append(p.id)
    if k.id != "kv-fp16":
        stack.append(k.id)
    if e is not None:
        stack.append(e.id)
    if engine == "vllm":
        stack.append("vllm")
    if req.gpu.flash_attention_2 and engine in ("hf", "vllm"):
        stack.append("flashattention")
    if d is not None:
        stack.append(d.id)
    if o is not None:
        stack.append(o.id)
    if n > 1 and parallel_mode(engine, n) == "tensor":
        stack.append("tensor-parallel")
    return stack


def _quality(stack: list[str]) -> float:
    return sum(techniques()[t].quality_risk for t in stack)


def _search_inference(req: PlanRequest) -> list[Plan]:
    ev = _FastEvaluator(req)
    tolerance = quality_tolerance(req.quality)
    firsts, metas = [], []
    for combo in _inference_combos(req):
        cfg = _config_for(req, *combo)
        firsts.append(ev.first_pass(cfg))
        metas.append(combo)
    if not firsts:
        return []
    dcorr = ev.cal.decode_corrections([r["dfeat"] for r in firsts])
    if ev.cal.prefill_model is not None:
        pcorr = np.exp(ev.cal.prefill_model.predict([r["pfeat"] for r in firsts]))
    else:
        pcorr = np.ones(len(firsts))
    plans = []
    for r, combo, c, pc in zip(firsts, metas, dcorr, pcorr, strict=True):
        out = ev.finish(r, float(c), float(pc))
        stack = _stack_ids(req, *combo)
        risk = _quality(stack)
        meets = _meets(req, out["decode_ms"], out["ttft_ms"])
        cfg = r["cfg"]
        plans.append(Plan(stack=stack, engine=cfg.engine, weights=cfg.weights, kv=cfg.kv, num_gpus=cfg.num_gpus,
                          memory_gib=out["per_gpu"] * cfg.num_gpus / costs.GIB,
                          per_gpu_memory_gib=out["per_gpu"] / costs.GIB, capacity_gib=out["capacity"] / costs.GIB,
                          decode_ms_per_token=out["decode_ms"], ttft_ms=out["ttft_ms"], quality_risk=risk,
                          fits=out["fits"], meets_latency=meets, within_quality=risk <= tolerance + 1e-9,
                          offloaded_gib=out["offloaded"] / costs.GIB, settings=_settings(cfg)))
    return plans


def _settings(cfg: InferenceConfig) -> dict:
    return {"weights": cfg.weights, "kv": cfg.kv, "engine": cfg.engine, "num_gpus": cfg.num_gpus,
            "batch": cfg.batch, "prompt_len": cfg.prompt_len, "gen_len": cfg.gen_len, "offload": cfg.offload,
            "draft_fraction": round(cfg.draft_fraction, 4), "draft_len": cfg.draft_len,
            "kv_keep_fraction": cfg.kv_keep_fraction, "kv_keep_tokens": cfg.kv_keep_tokens,
            "tokens_per_step": cfg.tokens_per_step}


def _meets(req: PlanRequest, decode_ms: float | None, ttft_ms: float | None) -> bool:
    ok = True
    if req.latency_ms_per_token is not None and decode_ms is not None:
        ok = ok and decode_ms <= req.latency_ms_per_token
    if req.ttft_ms is not None and ttft_ms is not None:
        ok = ok and ttft_ms <= req.ttft_ms
    return ok


# ------------------------------------------------------------------ fine-tuning search
def _search_training(req: PlanRequest) -> list[Plan]:
    method = workload_method(req.workload)
    methods = {"full": ["full", "lomo", "mezo"], "lora": ["lora", "qlora"], "qlora": ["qlora"]}[method]
    shardings = ["none"] + (["zero1", "zero2", "zero3", "fsdp"] if req.num_gpus > 1 else [])
    tolerance = quality_tolerance(req.quality)
    plans = []
    for m, opt, ckpt, shard in itertools.product(methods, ["adamw", "adam-8bit", "paged-adam-8bit"], [False, True],
                                                 shardings):
        if m in ("lomo", "mezo") and opt != "adamw":
            continue   # these methods replace the optimizer
        stack = [{"full": "full-finetune", "lora": "lora", "qlora": "qlora", "lomo": "lomo", "mezo": "mezo"}[m]]
        if opt != "adamw" and m not in ("lomo", "mezo"):
            stack.append(opt)
        if ckpt:
            stack.append("gradient-checkpointing")
        if shard != "none":
            stack.append("fsdp" if shard == "fsdp" else "zero")
        if req.gpu.flash_attention_2:
            stack.append("flashattention")
        if any(not _supported(techniques()[t], req.gpu, req.num_gpus) for t in stack):
            continue
        cfg = TrainingConfig(method=m, optimizer=opt, checkpointing=ckpt, sharding=shard, num_gpus=req.num_gpus,
                             batch=req.batch, seq_len=req.prompt_len + req.gen_len, flash=req.gpu.flash_attention_2)
        est = estimate_training(req.model, req.gpu, cfg)
        risk = _quality(stack)
        plans.append(Plan(stack=stack, engine="hf", weights="nf4" if m == "qlora" else "bf16", kv="-",
                          num_gpus=req.num_gpus, memory_gib=est.memory_gib, per_gpu_memory_gib=est.per_gpu_memory_gib,
                          capacity_gib=est.capacity_gib, decode_ms_per_token=None, ttft_ms=None, quality_risk=risk,
                          fits=est.fits, meets_latency=True, within_quality=risk <= tolerance + 1e-9,
                          step_time_s=est.step_time_s,
                          settings={"method": m, "optimizer": opt, "checkpointing": ckpt, "sharding": shard,
                                    "batch": req.batch, "seq_len": cfg.seq_len, "lora_rank": cfg.lora_rank,
                                    "breakdown_gib": {k: round(v, 3) for k, v in est.memory_breakdown_gib.items()}}))
    return plans


# ------------------------------------------------------------------ ranking, Pareto, diagnosis
def rank_key(plan: Plan) -> tuple:
    """Stated objective: fit memory, meet latency, stay within quality tolerance; then least quality risk,
    then fastest (decode ms, or step time for fine-tuning), then fewest non-trivial techniques."""
    speed = plan.decode_ms_per_token if plan.decode_ms_per_token is not None else (plan.step_time_s or 0) * 1e3
    return (not plan.fits, not plan.within_quality, not plan.meets_latency, plan.offloaded_gib > 0,
            round(plan.quality_risk, 3),
            round(speed, 3), plan.complexity, plan.per_gpu_memory_gib)


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Rows not dominated on every column (lower is better) by another row."""
    n = len(points)
    keep = np.ones(n, dtype=bool)
    order = np.lexsort(points.T[::-1])
    pts = points[order]
    for i in range(n):
        if not keep[order[i]]:
            continue
        dominated = np.all(pts[i] <= pts, axis=1) & np.any(pts[i] < pts, axis=1)
        keep[order[dominated]] = False
    return keep


def _mark_pareto(plans: list[Plan]) -> None:
    feasible = [p for p in plans if p.fits]
    if not feasible:
        return
    speed = [p.decode_ms_per_token if p.decode_ms_per_token is not None else (p.step_time_s or 0) * 1e3
             for p in feasible]
    pts = np.array([[s, p.per_gpu_memory_gib, p.quality_risk] for s, p in zip(speed, feasible, strict=True)])
    pts = np.round(pts, 6)
    for plan, keep in zip(feasible, pareto_mask(pts), strict=True):
        plan.pareto = bool(keep)


def _dedupe(plans: list[Plan]) -> list[Plan]:
    seen, out = set(), []
    for p in plans:
        key = tuple(p.stack) + (p.engine, p.num_gpus)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def plan(req: PlanRequest) -> dict:
    """Search, rank and explain. Returns {'plans': [...], 'pareto': [...], 'diagnosis': ..., 'request': ...}."""
    req = req.validated()
    plans = _search_inference(req) if req.workload == "inference" else _search_training(req)
    if not plans:
        raise RecommenderInputError("no technique stack is supported on this hardware")
    _mark_pareto(plans)
    plans.sort(key=rank_key)
    plans = _dedupe(plans)
    # Offloading "fits" only by moving weights off the GPU: it is a diagnosis suggestion, not a fit.
    good = [p for p in plans if p.fits and p.within_quality and p.offloaded_gib == 0]
    from .reasons import explain

    shown = plans[: req.max_plans]
    for p in shown:
        p.reasons = explain(req, p, plans)
    pareto = [p for p in plans if p.pareto and p.within_quality][:60]
    for p in pareto:
        if not p.reasons:
            p.reasons = explain(req, p, plans)
    out = {"request": _request_dict(req), "plans": [p.to_dict() for p in shown],
           "pareto": [p.to_dict() for p in pareto], "space": _space_size(req), "searched": len(plans),
           "feasible": sum(1 for p in plans if p.fits and p.offloaded_gib == 0)}
    if not good or not any(p.meets_latency for p in good):
        out["diagnosis"] = diagnose(req, plans)
    return out


def _space_size(req: PlanRequest) -> int:
    """Size of the raw search space before compatibility rules (engines x every technique dimension x GPUs)."""
    if req.workload != "inference":
        return 3 * 3 * 2 * (5 if req.num_gpus > 1 else 1)
    dims = [len(_engines(req.gpu)), len([t for t in techniques().values() if t.category == "weights"]),
            1 + len(_options("pruning", req.gpu, 1)), len(_options("kv_precision", req.gpu, 1)),
            1 + len(_options("kv_eviction", req.gpu, 1)), 1 + len(_options("decoding", req.gpu, 1)),
            1 + len(_options("offload", req.gpu, 1)), len(_gpu_counts(req.num_gpus))]
    return int(np.prod(dims))


def _request_dict(req: PlanRequest) -> dict:
    return {"model": req.model.id, "gpu": req.gpu.id, "gpu_memory_gib": req.gpu.memory_gib, "num_gpus": req.num_gpus,
            "workload": req.workload, "batch": req.batch, "prompt_len": req.prompt_len, "gen_len": req.gen_len,
            "latency_ms_per_token": req.latency_ms_per_token, "ttft_ms": req.ttft_ms, "quality": req.quality}


def diagnose(req: PlanRequest, plans: list[Plan]) -> dict:
    """Why nothing fits (or meets latency), and what would: memory, GPU count, bit width, offload, faster GPU."""
    in_tol = [p for p in plans if p.within_quality and p.offloaded_gib == 0]
    fitting = [p for p in plans if p.fits and p.within_quality and p.offloaded_gib == 0]
    out: dict = {"fits": bool(fitting), "meets_latency": any(p.meets_latency for p in fitting), "suggestions": []}
    if not fitting:
        smallest = min(in_tol or plans, key=lambda p: p.per_gpu_memory_gib)
        need = smallest.per_gpu_memory_gib * smallest.num_gpus
        out["reason"] = (f"no stack within the '{req.quality}' quality tolerance fits: the leanest one "
                         f"({' + '.join(smallest.stack)}) needs {need:.1f} GiB, the "
                         f"{req.gpu.name} offers {req.gpu.usable_memory_gib:.1f} GiB per GPU")
        out["min_memory_gib"] = round(need, 2)
        bigger = [g for g in sorted(gpu_presets().values(), key=lambda g: g.memory_gib)
                  if g.usable_memory_gib * (0.9 if smallest.engine == "vllm" else 1.0) >= need]
        if bigger:
            out["smallest_gpu"] = bigger[0].id
            out["suggestions"].append(f"a GPU with at least {need:.0f} GiB, e.g. {bigger[0].name} ({bigger[0].id})")
        gpus = 2 ** math.ceil(math.log2(max(need / (req.gpu.usable_memory_gib * 0.9), 1.0)))
        if gpus > req.num_gpus and gpus <= 64:
            out["gpus_needed"] = gpus
            out["suggestions"].append(f"{gpus} x {req.gpu.id} with tensor parallelism (--num-gpus {gpus})")
        lower = [p for p in plans if p.fits and not p.within_quality and p.offloaded_gib == 0]
        if lower:
            best = min(lower, key=lambda p: p.quality_risk)
            out["lower_bits"] = best.weights
            out["suggestions"].append(
                f"accept more quality loss: {' + '.join(best.stack)} fits ({best.per_gpu_memory_gib:.1f} GiB) "
                f"at quality risk {best.quality_risk:.1f} (use --quality aggressive)")
        offload = [p for p in plans if p.fits and p.offloaded_gib > 0 and p.within_quality]
        if offload:
            best = min(offload, key=lambda p: p.decode_ms_per_token or 1e18)
            out["offload"] = {"stack": best.stack, "offloaded_gib": round(best.offloaded_gib, 2),
                              "decode_ms_per_token": round(best.decode_ms_per_token or 0, 1)}
            out["suggestions"].append(
                f"offload {best.offloaded_gib:.1f} GiB of weights to CPU RAM ({' + '.join(best.stack)}): fits, "
                f"but about {best.decode_ms_per_token:.0f} ms per token")
    elif not out["meets_latency"]:
        fastest = min(fitting, key=lambda p: p.decode_ms_per_token or 1e18)
        budget = req.latency_ms_per_token
        out["reason"] = (f"stacks fit, but the fastest ({' + '.join(fastest.stack)}) needs "
                         f"{fastest.decode_ms_per_token:.1f} ms/token"
                         + (f" against a budget of {budget:g} ms" if budget else "")
                         + (f" (TTFT {fastest.ttft_ms:.0f} ms vs {req.ttft_ms:g} ms)" if req.ttft_ms else ""))
        if budget and fastest.decode_ms_per_token:
            factor = fastest.decode_ms_per_token / budget
            need_bw = req.gpu.bandwidth_gbps * factor
            out["bandwidth_needed_gbps"] = round(need_bw)
            faster = [g for g in sorted(gpu_presets().values(), key=lambda g: g.bandwidth_gbps)
                      if g.bandwidth_gbps >= need_bw and g.memory_gib >= fastest.per_gpu_memory_gib]
            if faster:
                out["suggestions"].append(f"a GPU with about {factor:.1f}x the bandwidth (>= {need_bw:.0f} GB/s), "
                                          f"e.g. {faster[0].name} ({faster[0].id})")
            out["suggestions"].append(f"tensor parallelism over more GPUs divides the bytes read per token "
                                      f"(try --num-gpus {min(64, req.num_gpus * 2 ** math.ceil(math.log2(factor + 1)))})")
            out["suggestions"].append("a lower bit width or a smaller model reads fewer bytes per token")
    return out


def plan_from_ids(model: str | None = None, params_b: float | None = None, gpu: str | None = None,
                  gpu_mem_gib: float | None = None, **kwargs) -> dict:
    """Convenience wrapper used by the CLI and the page."""
    from .hardware import resolve_gpu
    from .models import resolve_model

    req = PlanRequest(model=resolve_model(model, params_b, kwargs.pop("config", None)),
                      gpu=resolve_gpu(gpu, gpu_mem_gib, kwargs.pop("gpu_bandwidth_gbps", None),
                                      kwargs.pop("gpu_tflops", None)), **kwargs)
    return plan(req)


def estimate_plan(req: PlanRequest, plan_dict: dict):
    """Re-evaluate one inference plan with the full (slow) estimator, for the page's detail views."""
    s = plan_dict["settings"]
    cfg = InferenceConfig(weights=s["weights"], kv=s["kv"], engine=s["engine"], num_gpus=s["num_gpus"],
                          batch=s["batch"], prompt_len=s["prompt_len"], gen_len=s["gen_len"],
                          kv_keep_fraction=s["kv_keep_fraction"], kv_keep_tokens=s["kv_keep_tokens"],
                          offload=s["offload"], draft_fraction=s["draft_fraction"], draft_len=s["draft_len"],
                          tokens_per_step=s["tokens_per_step"])
    return estimate_inference(req.model, req.gpu, cfg)


def plan_details(req: PlanRequest, plan_dict: dict) -> dict:
    """Memory and latency breakdowns of one plan (full estimator for inference; stored breakdown for training)."""
    if req.workload != "inference":
        return {"memory_breakdown_gib": plan_dict["settings"]["breakdown_gib"],
                "capacity_gib": plan_dict["capacity_gib"], "latency_breakdown_ms": {}, "ttft_ms": None}
    est = estimate_plan(req, plan_dict)
    return {"memory_breakdown_gib": est.memory_breakdown_gib, "capacity_gib": est.capacity_gib,
            "latency_breakdown_ms": est.latency_breakdown_ms, "ttft_ms": est.ttft_ms,
            "decode_ms_low": est.decode_ms_low, "decode_ms_high": est.decode_ms_high}
