"""Search technique stacks, drop incompatible/infeasible ones, rank, return the Pareto set and a diagnosis."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from . import costs
from .calibration import default_calibrator
from .errors import RecommenderInputError, check_number, shorten
from .estimate import (
    EXPERT_PARALLEL_ENGINES,
    INTERNODE_GBPS,
    LAYER_SPLIT_ENGINES,
    MULTI_NODE_ENGINES,
    WORKLOADS,
    Estimate,
    InferenceConfig,
    InferenceEvaluator,
    TrainingConfig,
    engine_capacity_bytes,
    estimate_training,
    parallel_layout,
    parallel_mode,
    workload_method,
)
from .export import checkpoints
from .formats import weight_format
from .hardware import GPU, gpu_presets
from .models import ModelSpec
from .techniques import (
    Technique,
    catalog_ids,
    native_weights_technique,
    quality_tolerance,
    technique,
    techniques,
)

QUALITY_LEVELS = ("lossless", "small", "aggressive")
# What the ranking optimises once memory, budgets and the quality tolerance are met.
OBJECTIVES = ("least-risk", "fastest", "simplest")
KV_DTYPE = {"kv-fp16": "fp16", "kv-fp8": "fp8", "kv-int8": "int8", "kv-int4": "int4"}
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
    objective: str = "least-risk"
    use_local_runs: bool = True     # let this machine's live-demo runs adjust estimates of their own device
    gpus_per_node: int = 8          # more GPUs than this: tensor parallel per node, pipeline across nodes
    internode_gbps: float = INTERNODE_GBPS

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
        check_number("GPUs per node", self.gpus_per_node, low=1, high=64, integer=True)
        check_number("inter-node bandwidth (GB/s)", self.internode_gbps, low=0.1, high=10_000)
        if self.quality not in QUALITY_LEVELS:
            raise RecommenderInputError(
                f"quality must be one of {', '.join(QUALITY_LEVELS)}, got {shorten(self.quality)}")
        if self.objective not in OBJECTIVES:
            raise RecommenderInputError(
                f"objective must be one of {', '.join(OBJECTIVES)}, got {shorten(self.objective)}")
        if self.workload not in WORKLOADS:
            raise RecommenderInputError(f"workload must be one of {', '.join(WORKLOADS)}, got {shorten(self.workload)}")
        return self


@dataclass
class Plan:
    """One ranked stack: its catalog techniques, the full configuration it runs and the estimate of that config.

    The card, the detail view, the exports and the CLI all read this one object, so they cannot disagree.
    """

    stack: list[str]
    config: InferenceConfig | TrainingConfig
    estimate: Estimate
    quality_risk: float
    meets_latency: bool
    within_quality: bool
    reasons: list[str] = field(default_factory=list)
    pareto: bool = False
    model: ModelSpec | None = None

    @property
    def is_inference(self) -> bool:
        return isinstance(self.config, InferenceConfig)

    @property
    def engine(self) -> str:
        return self.config.engine if self.is_inference else "hf"

    @property
    def weights(self) -> str:
        if self.is_inference:
            return self.config.weights
        return "nf4" if self.config.method == "qlora" else "bf16"

    @property
    def kv(self) -> str:
        return self.config.kv if self.is_inference else "-"

    @property
    def num_gpus(self) -> int:
        return self.config.num_gpus

    @property
    def fits(self) -> bool:
        return self.estimate.fits

    @property
    def memory_gib(self) -> float:
        return self.estimate.memory_gib

    @property
    def per_gpu_memory_gib(self) -> float:
        return self.estimate.per_gpu_memory_gib

    @property
    def capacity_gib(self) -> float:
        return self.estimate.capacity_gib

    @property
    def offloaded_gib(self) -> float:
        return self.estimate.offloaded_gib

    @property
    def decode_ms_per_token(self) -> float | None:
        return self.estimate.decode_ms_per_token

    @property
    def ttft_ms(self) -> float | None:
        return self.estimate.ttft_ms

    @property
    def step_time_s(self) -> float | None:
        return self.estimate.step_time_s

    @property
    def speed_ms(self) -> float:
        """Decode ms/token for inference, step time in ms for fine-tuning (the ranking's speed)."""
        return self.decode_ms_per_token if self.decode_ms_per_token is not None else (self.step_time_s or 0) * 1e3

    @property
    def runnable(self) -> bool:
        """An engine can run this plan as estimated with published checkpoints (see export.all_exports)."""
        if not self.is_inference:
            return True
        from .export import runnable_engines

        return self.model is not None and bool(runnable_engines(self, self.model))

    @property
    def complexity(self) -> int:
        return sum(1 for t in self.stack if t not in FREE)

    @property
    def settings(self) -> dict:
        """The configuration as plain data (fine-tuning plans add their memory breakdown)."""
        out = asdict(self.config)
        if not self.is_inference:
            out["breakdown_gib"] = {k: round(v, 3) for k, v in self.estimate.memory_breakdown_gib.items()}
        return out

    def to_dict(self) -> dict:
        """Every field `python -m recommender estimate --json` prints, plus the plan's own fields."""
        out = self.estimate.to_dict()
        out.update({
            "techniques": catalog_ids(self.stack), "stack": list(self.stack),
            "labels": [techniques()[t].name for t in self.stack], "engine": self.engine, "weights": self.weights,
            "kv": self.kv, "quality_risk": round(self.quality_risk, 3), "meets_latency": self.meets_latency,
            "within_quality": self.within_quality, "pareto": self.pareto, "settings": self.settings,
            "reasons": list(self.reasons),
        })
        return out


@dataclass
class PlanResult:
    """What `plan()` returns: the ranked plans, the Pareto set, the search's size and, when needed, a diagnosis."""

    request: PlanRequest
    plans: list[Plan]
    pareto: list[Plan]
    space: int
    searched: int
    feasible: int
    diagnosis: dict | None = None

    @property
    def best(self) -> Plan:
        return self.plans[0]

    @property
    def verdict(self) -> dict:
        """One verdict for the best plan: {'level': success|warning|error, 'title': ...}, consistent with the
        diagnosis (the best plan is the fallback the diagnosis would suggest)."""
        best = self.best
        if best.fits and best.offloaded_gib == 0 and best.within_quality:
            if best.meets_latency:
                return {"level": "success", "title": "Recommended stack: fits in memory and meets the budgets"}
            return {"level": "warning", "title": "Closest option: fits in memory but misses the latency budget"}
        if best.fits and best.offloaded_gib > 0:
            return {"level": "warning", "title": f"Nothing fits in GPU memory; the best fallback offloads "
                                                 f"{best.offloaded_gib:.1f} GiB of weights to CPU RAM"}
        if best.fits:
            return {"level": "warning", "title": "Fits only beyond the chosen quality tolerance"}
        return {"level": "error", "title": "Nothing fits: the closest option is shown"}

    def to_dict(self, exports: bool = False) -> dict:
        """Plain data for JSON; with `exports`, each shown plan carries its runnable exports."""
        plans = [p.to_dict() for p in self.plans]
        if exports:
            from .export import all_exports, export_notes

            for data, p in zip(plans, self.plans, strict=True):
                data["exports"] = all_exports(self.request.model, p)
                data["export_notes"] = export_notes(self.request.model, p)
        out = {"request": _request_dict(self.request), "plans": plans, "pareto": [p.to_dict() for p in self.pareto],
               "space": self.space, "searched": self.searched, "feasible": self.feasible,
               "verdict": self.verdict}
        if self.diagnosis is not None:
            out["diagnosis"] = self.diagnosis
        return out


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
    native = native_weights_technique(req.model)
    # a model released in a low-precision format gets its own checkpoint (no quality loss) instead of re-quantizing
    # a 16-bit copy into that format
    weights = [t for t in _options("weights", gpu, 1) if t.id not in ("fp16", "bf16") and not t.params.get("native")
               and not (native and t.params["weights"]["format"] == native.params["weights"]["format"])]
    weights += [technique(base)] + ([native] if native else [])
    prunes = [None] + _options("pruning", gpu, 1)
    kvs = _options("kv_precision", gpu, 1)
    evictions = [None] + _options("kv_eviction", gpu, 1)
    decodings = [d for d in [None] + _options("decoding", gpu, 1) if _runnable_decoding(req.model, d)]
    offloads = [None] + _options("offload", gpu, 1)
    for engine in _engines(gpu):
        # each dimension filtered by what the engine runs first, so the product holds only compatible options
        dims = [[t for t in options if _engine_ok(t, engine)]
                for options in (weights, prunes, kvs, evictions, decodings, offloads)]
        for w, p, k, e, d, o, n in itertools.product(*dims, _gpu_counts(req.num_gpus)):
            if _compatible(req, engine, w, p, k, d, o, n):
                yield engine, w, p, k, e, d, o, n, False
                # a mixture of experts on several GPUs: also with its experts spread over them (at most 2x the configs)
                if _expert_parallel_ok(req, engine, o, n):
                    yield engine, w, p, k, e, d, o, n, True


def _expert_parallel_ok(req: PlanRequest, engine: str, o, n: int) -> bool:
    """Expert parallelism: a MoE model, 2+ GPUs but no more than its routed experts, an engine with an EP mode."""
    return (req.model.is_moe and 1 < n <= req.model.experts and engine in EXPERT_PARALLEL_ENGINES and o is None)


def _compatible(req: PlanRequest, engine: str, w, p, k, d, o, n: int) -> bool:
    """The rules that tie dimensions together (each option alone is already supported by the engine)."""
    if p is not None and w.id not in ("fp16", "bf16"):
        return False   # 2:4 sparse kernels are for 16-bit weights
    if o is not None and (n > 1 or d is not None or p is not None):
        return False   # offloading is a single-GPU, plain-decoding fallback here
    if engine == "llama.cpp" and k.id == "kv-fp8":
        return False
    # tensor parallelism splits the attention heads evenly (InferenceEvaluator.check_tensor_parallel)
    _, tp, _ = parallel_layout(InferenceConfig(engine=engine, num_gpus=n, gpus_per_node=req.gpus_per_node))
    if tp > 1 and req.model.heads % tp:
        return False
    # beyond one node only engines with a multi-node runtime, in whole nodes (layer-split engines: one machine)
    return not (n > req.gpus_per_node and engine not in LAYER_SPLIT_ENGINES
                and (engine not in MULTI_NODE_ENGINES or n % req.gpus_per_node))


def _draft_fraction(model: ModelSpec, d: Technique | None) -> float:
    """Draft size / target size: the published draft model with the same tokenizer (data/checkpoints.yaml)."""
    if d is None or d.params["decoding"]["kind"] != "draft":
        return 0.0
    return checkpoints()[model.id]["draft_params_b"] * 1e9 / model.total_params


def _runnable_decoding(model: ModelSpec, d: Technique | None) -> bool:
    """Draft-model speculation needs a published draft with the same tokenizer, Medusa published heads."""
    if d is None:
        return True
    kind = d.params["decoding"]["kind"]
    known = checkpoints().get(model.id, {})
    if kind == "draft":
        return "draft" in known and "draft_params_b" in known and known["draft_params_b"] * 1e9 < model.total_params
    if kind == "medusa":
        return "medusa" in known
    return True


def _config_for(req: PlanRequest, engine, w, p, k, e, d, o, n, ep: bool = False) -> InferenceConfig:
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
        tokens_per_step=tokens_per_step, extra_weight_bytes=extra, gpus_per_node=req.gpus_per_node,
        internode_gbps=req.internode_gbps, expert_parallel=ep)


def _stack_ids(req: PlanRequest, engine, w, p, k, e, d, o, n, ep: bool = False) -> list[str]:
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
    if n > 1 and parallel_mode(engine, n, req.gpus_per_node) in ("tensor", "tensor+pipeline"):
        stack.append("tensor-parallel")
    if ep:
        stack.append("expert-parallel")
    return stack


def _quality(stack: list[str]) -> float:
    return sum(techniques()[t].quality_risk for t in stack)


def _search_inference(req: PlanRequest) -> list[Plan]:
    combos = list(_inference_combos(req))
    if not combos:
        return []
    cfgs = [_config_for(req, *combo) for combo in combos]
    estimates = InferenceEvaluator(req.model, req.gpu, default_calibrator(req.use_local_runs)).evaluate_many(cfgs)
    tolerance = quality_tolerance(req.quality)
    plans = []
    for combo, cfg, est in zip(combos, cfgs, estimates, strict=True):
        stack = _stack_ids(req, *combo)
        risk = _quality(stack)
        plans.append(Plan(stack=stack, config=cfg, estimate=est, quality_risk=risk,
                          meets_latency=_meets(req, est.decode_ms_per_token, est.ttft_ms),
                          within_quality=risk <= tolerance + 1e-9, model=req.model))
    return plans


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
        plans.append(Plan(stack=stack, config=cfg, estimate=est, quality_risk=risk, meets_latency=True,
                          within_quality=risk <= tolerance + 1e-9, model=req.model))
    return plans


# ------------------------------------------------------------------ ranking, Pareto, diagnosis
def rank_key(plan: Plan, objective: str = "least-risk") -> tuple:
    """Rank: fit memory, stay within the quality tolerance, meet the budgets, need no offload; then the objective.

    'least-risk': least quality risk, then fastest, then fewest techniques; 'fastest': fastest first;
    'simplest': fewest non-trivial techniques first. Offloading plans (only ever a fallback) rank by speed, so the
    best fallback is the fastest one, the same one the diagnosis suggests. A plan some engine can run as exported
    (published checkpoints, documented options) ranks before one that none can.
    """
    gate = (not plan.fits, not plan.within_quality, not plan.meets_latency, plan.offloaded_gib > 0,
            not plan.runnable)
    speed, risk = round(plan.speed_ms, 3), round(plan.quality_risk, 3)
    if plan.offloaded_gib > 0 or objective == "fastest":
        order = (speed, risk, plan.complexity)
    elif objective == "simplest":
        order = (plan.complexity, risk, speed)
    else:
        order = (risk, speed, plan.complexity)
    return gate + order + (plan.per_gpu_memory_gib,)


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
    pts = np.array([[p.speed_ms, p.per_gpu_memory_gib, p.quality_risk] for p in feasible])
    pts = np.round(pts, 6)
    for plan, keep in zip(feasible, pareto_mask(pts), strict=True):
        plan.pareto = bool(keep)


def _dedupe(plans: list[Plan]) -> list[Plan]:
    """One plan per stack and engine; an offload technique that offloads nothing is the same plan without it."""
    seen, out = set(), []
    for p in plans:
        if p.offloaded_gib == 0 and any(techniques()[t].category == "offload" for t in p.stack):
            continue
        key = tuple(p.stack) + (p.engine, p.num_gpus)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def plan(req: PlanRequest) -> PlanResult:
    """Search, rank and explain: the ranked plans, the Pareto set and a diagnosis when nothing fits the budgets.

    Raises RecommenderInputError for an invalid request or when no stack is supported on the hardware.
    """
    req = req.validated()
    plans = _search_inference(req) if req.workload == "inference" else _search_training(req)
    if not plans:
        raise RecommenderInputError("no technique stack is supported on this hardware")
    _mark_pareto(plans)
    plans.sort(key=lambda p: rank_key(p, req.objective))
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
    diagnosis = None
    if not good or not any(p.meets_latency for p in good):
        diagnosis = diagnose(req, plans)
    return PlanResult(request=req, plans=shown, pareto=pareto, space=_space_size(req), searched=len(plans),
                      feasible=sum(1 for p in plans if p.fits and p.offloaded_gib == 0), diagnosis=diagnosis)


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
            "latency_ms_per_token": req.latency_ms_per_token, "ttft_ms": req.ttft_ms, "quality": req.quality,
            "objective": req.objective}


# The request fields that suggestions name, as the page's form labels them, with the CLI flag for each.
DIAGNOSIS_FIELDS = {"GPU count": "--num-gpus", "Quality tolerance": "--quality"}


def diagnose(req: PlanRequest, plans: list[Plan]) -> dict:
    """Why nothing fits (or meets latency), and what would: memory, GPU count, bit width, offload, faster GPU."""
    in_tol = [p for p in plans if p.within_quality and p.offloaded_gib == 0]
    fitting = [p for p in plans if p.fits and p.within_quality and p.offloaded_gib == 0]
    out: dict = {"fits": bool(fitting), "meets_latency": any(p.meets_latency for p in fitting), "suggestions": [],
                 "fields": DIAGNOSIS_FIELDS}
    if not fitting:
        smallest = min(in_tol or plans, key=lambda p: p.per_gpu_memory_gib)
        need = smallest.per_gpu_memory_gib * smallest.num_gpus
        out["reason"] = (f"no stack within the '{req.quality}' quality tolerance fits: the leanest one "
                         f"({' + '.join(smallest.stack)}) needs {need:.1f} GiB, the "
                         f"{req.gpu.name} offers {req.gpu.usable_memory_gib:.1f} GiB per GPU")
        out["min_memory_gib"] = round(need, 2)
        bigger = [g for g in sorted(gpu_presets().values(), key=lambda g: g.memory_gib)
                  if engine_capacity_bytes(g, smallest.engine) / costs.GIB >= need]
        if bigger:
            out["smallest_gpu"] = bigger[0].id
            out["suggestions"].append(f"a GPU with at least {need:.0f} GiB, e.g. {bigger[0].name} ({bigger[0].id})")
        per_gpu_gib = engine_capacity_bytes(req.gpu, smallest.engine) / costs.GIB
        gpus = 2 ** math.ceil(math.log2(max(need / per_gpu_gib, 1.0)))
        if gpus > req.num_gpus and gpus <= 64:
            out["gpus_needed"] = gpus
            out["suggestions"].append(f"{gpus} x {req.gpu.id} with tensor parallelism (set 'GPU count' to {gpus})")
        lower = [p for p in plans if p.fits and not p.within_quality and p.offloaded_gib == 0]
        if lower:
            best = min(lower, key=lambda p: p.quality_risk)
            out["lower_bits"] = best.weights
            out["suggestions"].append(
                f"accept more quality loss: {' + '.join(best.stack)} fits ({best.per_gpu_memory_gib:.1f} GiB) "
                f"at quality risk {best.quality_risk:.1f} (set 'Quality tolerance' to aggressive)")
        offload = [p for p in plans if p.fits and p.offloaded_gib > 0 and p.within_quality]
        if offload:
            best = offload[0]   # plans arrive ranked: the first fallback is the one the page recommends
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
                                      f"(try 'GPU count' {min(64, req.num_gpus * 2 ** math.ceil(math.log2(factor + 1)))})")
            out["suggestions"].append("a lower bit width or a smaller model reads fewer bytes per token")
    return out


# ------------------------------------------------------------------ one given stack
_CATEGORY_SLOTS = ("weights", "pruning", "kv_precision", "kv_eviction", "decoding", "offload")


def resolve_technique_ids(ids: list[str]) -> list[Technique]:
    """Recommender technique ids or catalog ids (case-insensitive) to techniques, in order.

    A catalog id shared by several techniques (e.g. `gptq` for 4- and 3-bit GPTQ) resolves to the first listed.
    Raises RecommenderInputError naming the unknown id and the closest known ones.
    """
    table = techniques()
    by_catalog: dict[str, Technique] = {}
    for t in table.values():
        if t.catalog_id:
            by_catalog.setdefault(t.catalog_id, t)
    out = []
    for raw in ids:
        key = str(raw).strip().lower()
        if not key:
            continue
        found = table.get(key) or by_catalog.get(key)
        if found is None:
            from .errors import unknown_id_error

            raise unknown_id_error("technique", raw, sorted(set(table) | set(by_catalog)))
        if found not in out:
            out.append(found)
    return out


def evaluate_stack(req: PlanRequest, ids: list[str], engine: str | None = None) -> Plan:
    """Evaluate one given inference stack (technique or catalog ids) with the same code the planner ranks with.

    Slots the ids leave open take the baseline: the released checkpoint's own format when it is not 16-bit
    (native_weights_technique), else 16-bit weights for the GPU, an fp16 KV cache, no pruning,
    eviction, speculative decoding or offload. The engine is `engine`, else vLLM when `vllm` is listed,
    llama.cpp for GGUF weights, else transformers ('hf'). Tensor parallelism follows `req.num_gpus`;
    `expert-parallel` spreads a mixture of experts' experts over them (docs/cost_model.md §3.7).
    Raises RecommenderInputError for unknown ids, two techniques in one slot, or a stack the engine cannot run.
    """
    req = req.validated()
    if req.workload != "inference":
        raise RecommenderInputError("evaluate_stack is for inference; fine-tuning stacks come from plan()")
    chosen: dict[str, Technique] = {}
    expert_parallel = False
    for t in resolve_technique_ids(ids):
        if t.category in _CATEGORY_SLOTS:
            if t.category in chosen:
                raise RecommenderInputError(f"{chosen[t.category].id} and {t.id} both set the {t.category} slot: "
                                            "choose one")
            chosen[t.category] = t
        elif t.category == "engine":   # a stack that names its engine (vllm) must agree with the engine given
            if engine not in (None, t.id):
                raise RecommenderInputError(f"the stack names the {t.id} engine but the engine given is {engine} "
                                            "(--framework): drop one")
            engine = t.id
        elif t.id == "expert-parallel":
            expert_parallel = True
        elif t.category == "architecture":
            raise RecommenderInputError(f"{t.id} is an architecture feature the model has or lacks (from its "
                                        "config), not a technique to add to a stack")
        elif t.category not in ("attention", "parallel"):
            raise RecommenderInputError(f"{t.id} is a fine-tuning technique; use --workload finetune-...")
    if not _runnable_decoding(req.model, chosen.get("decoding")):
        raise RecommenderInputError(f"{chosen['decoding'].id} needs a published draft model or heads for "
                                    f"{req.model.name}; none is known (data/checkpoints.yaml)")
    native = native_weights_technique(req.model)
    w = chosen.get("weights") or native or technique(_base_weights(req.gpu))
    if w.params.get("native") and native != w:
        raise RecommenderInputError(f"{w.id} is the publisher's own {w.params['weights']['format']} release; "
                                    f"{req.model.name} is released in {req.model.native_weights or '16 bits'}")
    if engine is None:
        engine = "llama.cpp" if weight_format(w.params["weights"]["format"]).kernel.startswith("gguf") else "hf"
    k = chosen.get("kv_precision") or technique("kv-fp16")
    combo = (engine, w, chosen.get("pruning"), k, chosen.get("kv_eviction"), chosen.get("decoding"),
             chosen.get("offload"), req.num_gpus, expert_parallel)
    unsupported = [t.id for t in combo[1:7] if t is not None and not _engine_ok(t, engine)]
    if unsupported:
        raise RecommenderInputError(f"the {engine} engine does not run {', '.join(unsupported)}")
    cfg = _config_for(req, *combo)
    est = InferenceEvaluator(req.model, req.gpu, default_calibrator(req.use_local_runs)).evaluate(cfg)
    stack = _stack_ids(req, *combo)
    risk = _quality(stack)
    out = Plan(stack=stack, config=cfg, estimate=est, quality_risk=risk,
               meets_latency=_meets(req, est.decode_ms_per_token, est.ttft_ms),
               within_quality=risk <= quality_tolerance(req.quality) + 1e-9, model=req.model)
    from .reasons import explain

    out.reasons = explain(req, out, [out])
    return out
