"""Evaluate one configuration: memory, fit, prefill/decode latency (calibrated), or a fine-tuning step."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from . import costs
from .engines import (
    MEMORY_SHARE_ENGINES,
    default_memory_share,
    engine_table,
    kv_cache_memory_fraction,
    max_running_sequences,
    prefill_chunk_tokens,
    serving_engines,
)
from .errors import RecommenderInputError, check_number
from .formats import WeightFormat, kv_bytes_per_element, weight_format
from .hardware import GPU
from .models import ModelSpec

ENGINES = ("hf", "hf-eager", "vllm", "sglang", "llama.cpp", "gpt-fast", "tensorrt-llm", "tgi", "exllamav2",
           "mlc-llm")
WORKLOADS = ("inference", "finetune-lora", "finetune-qlora", "finetune-full")
# Engines that split a model across GPUs by layers (pipeline): batch-1 decode does not speed up (XiongjieDai).
LAYER_SPLIT_ENGINES = ("llama.cpp", "hf")
# Engines whose own distributed runtime runs pipeline stages across nodes (vLLM over Ray or its multi-node flags,
# SGLang's --nnodes, TensorRT-LLM's MPI launch).
MULTI_NODE_ENGINES = ("vllm", "sglang", "tensorrt-llm")
# Engines that place a mixture of experts' routed experts on different GPUs (expert parallelism), from
# data/engines.yaml `parallel.expert` with its sources: vLLM --enable-expert-parallel, SGLang --ep-size,
# TensorRT-LLM's EP size, gpt-fast's mixtral-moe example (one node).
EXPERT_PARALLEL_ENGINES = tuple(e for e, row in engine_table().items() if (row.get("parallel") or {}).get("expert"))
# Inter-node bandwidth per GPU: one 400 Gb/s InfiniBand NDR adapter per GPU (NVIDIA DGX H100: 8x ConnectX-7
# 400 Gb/s) moves 50 GB/s; an input, since clusters differ.
INTERNODE_GBPS = 50.0
MAX_TOKENS = 10_000_000
MAX_BATCH = 100_000
# Engines with a continuous-batching scheduler and a documented default concurrency (data/engines.yaml
# `max_running_sequences_default`): their saturated throughput is estimated (docs/cost_model.md §3.8).
SERVING_ENGINES = serving_engines()


@dataclass(frozen=True)
class InferenceConfig:
    """One inference setup. Offload is 'none', 'overlap' (FlexGen) or 'serial' (ZeRO-Inference)."""

    weights: str = "fp16"
    kv: str = "fp16"
    engine: str = "hf"
    num_gpus: int = 1
    batch: int = 1
    prompt_len: int = 512
    gen_len: int = 256
    kv_keep_fraction: float = 1.0
    kv_keep_tokens: float | None = None
    body_factor: float = 1.0             # 2:4 sparse storage
    offload: str = "none"
    draft_fraction: float = 0.0          # speculative decoding: draft size / target size
    draft_len: int = 4
    acceptance_rate: float = 0.7
    tokens_per_step: float = 1.0         # Medusa / prompt lookup: accepted tokens per verification step
    extra_weight_bytes: float = 0.0      # e.g. Medusa heads
    memory_utilization: float | None = None   # engine memory share; None = the engine's default
    gpus_per_node: int = 8               # beyond one node, tensor parallel inside a node, pipeline across nodes
    internode_gbps: float = INTERNODE_GBPS   # GB/s per GPU between nodes
    expert_parallel: bool = False        # MoE: routed experts spread over all GPUs (docs/cost_model.md §3.7)

    def __post_init__(self):
        # ids are case-insensitive everywhere: "VLLM", "INT4" and " fp8 " mean vllm, int4 and fp8
        for name in ("engine", "weights", "kv"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, value.strip().lower())

    def validated(self) -> InferenceConfig:
        check_number("batch", self.batch, low=1, high=MAX_BATCH, integer=True)
        check_number("prompt length", self.prompt_len, low=1, high=MAX_TOKENS, integer=True)
        check_number("generation length", self.gen_len, low=1, high=MAX_TOKENS, integer=True)
        check_number("number of GPUs", self.num_gpus, low=1, high=1024, integer=True)
        if self.engine not in ENGINES:
            from .errors import unknown_id_error

            raise unknown_id_error("framework", self.engine, list(ENGINES))
        weight_format(self.weights)
        kv_bytes_per_element(self.kv)
        if self.memory_utilization is not None:
            check_number("GPU memory utilization", self.memory_utilization, low=0.05, high=1.0)
            if self.engine not in MEMORY_SHARE_ENGINES:
                raise RecommenderInputError(
                    f"memory_utilization (--gpu-memory-utilization): the {self.engine} engine allocates on demand and "
                    f"takes no memory share; only {', '.join(MEMORY_SHARE_ENGINES)} pre-allocate one")
        check_number("GPUs per node", self.gpus_per_node, low=1, high=64, integer=True)
        check_number("inter-node bandwidth (GB/s)", self.internode_gbps, low=0.1, high=10_000)
        # layer-split engines run many GPUs of one machine (a 15-GPU rig); tensor-parallel ones need a node each
        if self.num_gpus > self.gpus_per_node and self.engine not in LAYER_SPLIT_ENGINES:
            if self.engine not in MULTI_NODE_ENGINES:
                raise RecommenderInputError(
                    f"{self.num_gpus} GPUs span {math.ceil(self.num_gpus / self.gpus_per_node)} nodes: the "
                    f"{self.engine} engine has no multi-node runtime here; use one of {', '.join(MULTI_NODE_ENGINES)}")
            if self.num_gpus % self.gpus_per_node:
                raise RecommenderInputError(f"{self.num_gpus} GPUs are not a whole number of {self.gpus_per_node}-GPU "
                                            "nodes")
        if self.expert_parallel:
            self._check_expert_parallel()
        return self

    def _check_expert_parallel(self) -> None:
        """The model-free conditions of expert parallelism (the model's are InferenceEvaluator's)."""
        if not isinstance(self.expert_parallel, bool):
            raise RecommenderInputError(f"expert_parallel must be true or false, got {self.expert_parallel!r}")
        if self.engine not in EXPERT_PARALLEL_ENGINES:
            # transformers 5 has an experimental EP under torchrun (DistributedConfig); the hf engine here is the
            # single-process device_map split, which places whole layers, experts included, on one GPU each
            how = {"llama.cpp": "splits a model by layers or rows", "hf": "splits layers over GPUs (device_map)",
                   "hf-eager": "splits layers over GPUs (device_map)"}.get(self.engine, "has no expert-parallel mode")
            raise RecommenderInputError(f"expert parallelism: the {self.engine} engine {how}; use one of "
                                        f"{', '.join(EXPERT_PARALLEL_ENGINES)}")
        if self.num_gpus < 2:
            raise RecommenderInputError("expert parallelism spreads the experts over GPUs: it needs 2 or more GPUs")
        if self.offload != "none":
            raise RecommenderInputError("expert parallelism with weight offload is not modelled: choose one")


@dataclass
class Estimate:
    """Numbers for one configuration (results are data; the page formats them)."""

    workload: str
    model_id: str
    gpu_id: str
    num_gpus: int
    memory_gib: float
    per_gpu_memory_gib: float
    capacity_gib: float
    fits: bool
    memory_breakdown_gib: dict[str, float]
    offloaded_gib: float = 0.0
    reserved_gib: float | None = None
    ttft_ms: float | None = None
    decode_ms_per_token: float | None = None
    decode_ms_low: float | None = None
    decode_ms_high: float | None = None
    decode_tokens_per_s: float | None = None
    throughput_tokens_per_s: float | None = None
    saturated_throughput_tokens_per_s: float | None = None   # output tok/s when requests never run out (§3.8)
    saturated_sequences: int | None = None                   # the concurrent sequences that figure assumes
    roofline_decode_ms_per_token: float | None = None
    latency_breakdown_ms: dict[str, float] = field(default_factory=dict)
    step_time_s: float | None = None
    train_tokens_per_s: float | None = None
    calibrated: bool = False
    local_adjustment: str | None = None   # how the user's own live-demo runs changed this estimate, if they did
    warnings: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key, value in list(out.items()):
            if isinstance(value, float):
                out[key] = round(value, 4)
        out["memory_breakdown_gib"] = {k: round(v, 4) for k, v in self.memory_breakdown_gib.items()}
        out["latency_breakdown_ms"] = {k: round(v, 4) for k, v in self.latency_breakdown_ms.items()}
        return out


# ------------------------------------------------------------------ shared helpers
# Engines whose CUDA matmuls accumulate in fp16 or run on int8 tensor cores: llama.cpp calls cuBLAS with
# CUBLAS_COMPUTE_16F (ggml/src/ggml-cuda/ggml-cuda.cu) and runs quantized types through its int8 MMQ kernels
# (ggml-org/llama.cpp PR #7676). On GeForce cards that rate is twice the fp32-accumulate peak in gpus.yaml.
FP16_ACCUMULATE_ENGINES = frozenset({"llama.cpp"})


def compute_peak_flops(gpu: GPU, fmt: WeightFormat, engine: str = "") -> float:
    """Tensor peak (FLOP/s) for the math dtype: W8A8/FP8 use the 8-bit peak; weight-only formats compute in fp16.

    gpus.yaml's fp16 peak is the fp32-accumulate rate. For an engine in FP16_ACCUMULATE_ENGINES on an NVIDIA GPU the
    peak is the fp16-accumulate rate, half the dense int8 rate (NVIDIA's Ampere/Ada/Hopper tensor cores run int8 at
    twice fp16-with-fp16-accumulate), never below the fp32-accumulate figure.
    """
    if fmt.id in ("int8-w8a8", "fp8") and gpu.int8_tops > 0:
        return gpu.int8_tops * 1e12
    if engine in FP16_ACCUMULATE_ENGINES and gpu.vendor == "nvidia" and gpu.int8_tops > 0:
        return max(gpu.fp16_tflops, gpu.int8_tops / 2) * 1e12
    return gpu.fp16_tflops * 1e12


def parallel_mode(engine: str, num_gpus: int, gpus_per_node: int = 8, expert_parallel: bool = False) -> str:
    """'single', 'tensor' (Megatron-style, every GPU reads 1/n of each layer), 'layer-split' (pipeline on one
    machine), 'tensor+pipeline' (tensor parallel inside each node, one pipeline stage per node) or 'tensor+expert'
    (attention tensor parallel inside each node, routed experts spread over every GPU; docs/cost_model.md §3.7)."""
    if num_gpus <= 1:
        return "single"
    if engine in LAYER_SPLIT_ENGINES:
        return "layer-split"
    if expert_parallel:
        return "tensor+expert"
    return "tensor+pipeline" if num_gpus > gpus_per_node else "tensor"


def parallel_layout(cfg: InferenceConfig) -> tuple[str, int, int]:
    """(mode, tensor-parallel size, pipeline stages) of a configuration (docs/cost_model.md §3.3, §3.7)."""
    mode = parallel_mode(cfg.engine, cfg.num_gpus, cfg.gpus_per_node, cfg.expert_parallel)
    if mode == "tensor+expert":
        return mode, min(cfg.num_gpus, cfg.gpus_per_node), 1
    if mode == "tensor+pipeline":
        return mode, cfg.gpus_per_node, cfg.num_gpus // cfg.gpus_per_node
    if mode == "tensor":
        return mode, cfg.num_gpus, 1
    return mode, 1, 1


def expert_layout(cfg: InferenceConfig) -> tuple[int, int, int]:
    """(tensor-parallel size, data-parallel attention replicas, expert-parallel size) under expert parallelism.

    Attention, shared experts, dense layers and embeddings are tensor parallel inside a node and replicated across
    nodes, each node serving its share of the batch (data-parallel attention, as vLLM's DP+EP deployment and SGLang's
    --enable-dp-attention run it); the routed experts of every MoE layer are spread over all n GPUs.
    """
    tp = min(cfg.num_gpus, cfg.gpus_per_node)
    return tp, cfg.num_gpus // tp, cfg.num_gpus


def engine_memory_share(engine: str, memory_utilization: float | None = None, gpu: GPU | None = None,
                        num_gpus: int = 1) -> float:
    """Share of the usable device memory an engine may fill (docs/cost_model.md §2.5).

    vLLM pre-allocates `gpu_memory_utilization` (default costs.VLLM_MEMORY_UTILIZATION), SGLang its computed
    mem_fraction_static (engines.default_memory_share); the other engines allocate on demand, so they may use all
    of it. An explicit `memory_utilization` overrides the engine default.
    """
    if memory_utilization is not None:
        return memory_utilization
    return default_memory_share(engine, gpu, num_gpus)


def engine_capacity_bytes(gpu: GPU, engine: str, memory_utilization: float | None = None,
                          num_gpus: int = 1) -> float:
    """Bytes per GPU the engine can fill: usable device memory times the engine's memory share."""
    return gpu.usable_memory_gib * costs.GIB * engine_memory_share(engine, memory_utilization, gpu, num_gpus)


def kv_cache_total_bytes(model: ModelSpec, cfg: InferenceConfig) -> float:
    """Whole KV cache (bytes, all GPUs together) for `cfg.batch` sequences of prompt + output tokens."""
    context = cfg.prompt_len + cfg.gen_len
    return costs.kv_cache_bytes(model, kv_bytes_per_element(cfg.kv), context, cfg.batch, cfg.kv_keep_fraction,
                                cfg.kv_keep_tokens)


# ------------------------------------------------------------------ the one inference cost model
class InferenceEvaluator:
    """Memory and latency of inference configurations of one model on one GPU type: the only implementation.

    `estimate_inference` evaluates one configuration; the planner evaluates thousands through `evaluate_many`,
    which memoises the parts that do not change across stacks (weight and KV bytes per format) and calls the
    calibrator once for the whole batch. Both paths run the same code, so a plan and its detail view agree.
    Formulas: docs/cost_model.md §2-§3; constants: recommender/costs.py.
    """

    def __init__(self, model: ModelSpec, gpu: GPU, calibrator=None):
        self.model, self.gpu, self.calibrator = model, gpu, calibrator
        self.bw = gpu.bandwidth_gbps * 1e9
        self.link = gpu.link_gbps * 1e9
        self._cache: dict = {}

    # ---- memoised pieces
    def _memo(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def weight_total_bytes(self, fmt: WeightFormat, body_factor: float) -> float:
        """Resident weight bytes of the whole model in `fmt` (docs/cost_model.md §2.1)."""
        return self._memo(("w", fmt.id, body_factor), lambda: costs.weight_bytes(
            self.model, fmt.bits_per_weight, fmt.quantizes_embeddings, body_factor)["total"])

    def weight_read_bytes(self, fmt: WeightFormat, body_factor: float, batch: int) -> float:
        """Weight bytes streamed per decode step (MoE: the experts a batch touches; docs/cost_model.md §3.1)."""
        return self._memo(("wr", fmt.id, body_factor, batch), lambda: costs.weight_read_bytes_per_step(
            self.model, fmt.bits_per_weight, batch, fmt.quantizes_embeddings, body_factor))

    def expert_parallel_weight_bytes(self, fmt: WeightFormat, cfg: InferenceConfig) -> float:
        """Resident weight bytes per GPU under expert parallelism: everything but the routed experts split over the
        tensor-parallel GPUs of a node, the routed experts over all GPUs (docs/cost_model.md §3.7)."""
        tp, _, ep = expert_layout(cfg)
        routed_all = costs.routed_expert_bytes_per_gpu(self.model, fmt.bits_per_weight, 1, cfg.body_factor)
        routed_gpu = costs.routed_expert_bytes_per_gpu(self.model, fmt.bits_per_weight, ep, cfg.body_factor)
        rest = self.weight_total_bytes(fmt, cfg.body_factor) - routed_all + cfg.extra_weight_bytes
        return rest / tp + routed_gpu

    def check_tensor_parallel(self, cfg: InferenceConfig) -> None:
        """Tensor parallelism splits the attention heads evenly over its GPUs: vLLM (and Megatron-style engines)
        require num_attention_heads divisible by the tensor-parallel size (vLLM's ModelConfig.verify_with_parallel_
        config: "Total number of attention heads must be divisible by tensor parallel size")."""
        mode, tp, _ = parallel_layout(cfg)
        if tp > 1 and self.model.heads % tp:
            raise RecommenderInputError(
                f"tensor parallelism over {tp} GPUs on the {cfg.engine} engine: {self.model.name}'s "
                f"{self.model.heads} attention heads are not divisible by {tp}; use a GPU count (--num-gpus) that divides "
                f"{self.model.heads}" + (" (or a layer-split engine such as llama.cpp)" if mode != "single" else ""))

    def check_expert_parallel(self, cfg: InferenceConfig) -> None:
        """Expert parallelism needs a mixture of experts with at least one routed expert per GPU."""
        if not cfg.expert_parallel:
            return
        if not self.model.is_moe:
            raise RecommenderInputError(f"expert parallelism spreads a mixture of experts' experts over GPUs; "
                                        f"{self.model.name} is a dense model: drop expert parallelism")
        if cfg.num_gpus > self.model.experts:
            raise RecommenderInputError(f"expert parallelism over {cfg.num_gpus} GPUs needs at least one routed "
                                        f"expert per GPU; {self.model.name} has {self.model.experts}")

    def kv_bytes(self, cfg: InferenceConfig) -> tuple[float, float]:
        """(whole KV cache, KV bytes read per decode step at the mean context) in bytes."""
        key = ("kv", cfg.kv, cfg.batch, cfg.prompt_len, cfg.gen_len, cfg.kv_keep_fraction, cfg.kv_keep_tokens)

        def make():
            total = kv_cache_total_bytes(self.model, cfg)
            context = cfg.prompt_len + cfg.gen_len
            return total, total * (cfg.prompt_len + cfg.gen_len / 2) / context
        return self._memo(key, make)

    def comm_s(self, cfg: InferenceConfig, mode: str, tokens: int) -> float:
        """Communication of one step that processes `tokens` per sequence (seconds): the tensor-parallel
        all-reduces inside a node, plus one activation hop between consecutive pipeline stages across nodes; under
        expert parallelism the attention all-reduces and each MoE layer's dispatch and combine all-to-alls."""
        if mode == "tensor+expert":
            tp, _, ep = expert_layout(cfg)
            return self._memo(("ep-comm", cfg.batch, tokens, tp, ep, cfg.gpus_per_node, cfg.internode_gbps),
                              lambda: costs.expert_parallel_comm_time(self.model, cfg.batch, tokens, tp, ep,
                                                                      cfg.gpus_per_node, self.link,
                                                                      cfg.internode_gbps * 1e9))
        if mode not in ("tensor", "tensor+pipeline"):
            return 0.0
        _, tp, pp = parallel_layout(cfg)
        return self._memo(("comm", cfg.batch, tokens, tp, pp, cfg.internode_gbps), lambda: costs.tensor_parallel_comm_time(
            self.model, cfg.batch, tokens, tp, self.link) + costs.pipeline_hops_time(
            self.model, cfg.batch, tokens, pp, cfg.internode_gbps * 1e9))

    # ---- per configuration
    def memory(self, cfg: InferenceConfig) -> dict[str, float]:
        """Per-GPU bytes: weights, kv_cache, activations, runtime; plus capacity and offloaded (all GPUs)."""
        model, fmt = self.model, weight_format(cfg.weights)
        mode, tp, pp = parallel_layout(cfg)
        n = cfg.num_gpus
        weights = self.weight_total_bytes(fmt, cfg.body_factor) + cfg.extra_weight_bytes
        kv_total, _ = self.kv_bytes(cfg)
        # a draft model of draft_fraction x the target's size brings its own weights and KV cache
        weights *= 1 + cfg.draft_fraction
        kv_total *= 1 + cfg.draft_fraction
        flash = cfg.engine != "hf-eager"
        # engines that chunk the prompt hold one chunk's activations at a time (docs/cost_model.md §2.3)
        chunk = prefill_chunk_tokens(cfg.engine, self.gpu)
        # every engine keeps only the last position's logits at prefill: transformers' generate passes
        # logits_to_keep=1 since v4.45 (docs/cost_model.md §2.3)
        activations = self._memo(("act", cfg.batch, cfg.prompt_len, flash, chunk),
                                 lambda: costs.inference_activation_bytes(
            model, cfg.batch, cfg.prompt_len, flash, chunk_tokens=chunk))
        # Tensor parallel splits KV heads; heads cannot be split below one per GPU (replicated beyond n_kv), and
        # MLA's single latent is replicated on every GPU (docs/cost_model.md §2.2).
        # Pipeline stages each hold their layers' share (docs/cost_model.md §2.8).
        kv_split = min(tp, model.kv_shards) * pp if mode in ("tensor", "tensor+pipeline") else n
        per_gpu_weights = weights / n
        if mode == "tensor+expert":
            self.check_expert_parallel(cfg)
            tp, dp, _ = expert_layout(cfg)
            # attention replicas per node each hold their own sequences' cache (docs/cost_model.md §3.7)
            kv_split = min(tp, model.kv_shards) * dp
            per_gpu_weights = self.expert_parallel_weight_bytes(fmt, cfg) * (1 + cfg.draft_fraction)
        per_gpu = {
            "weights": per_gpu_weights,
            "kv_cache": kv_total / kv_split,
            "activations": activations / tp,
            "runtime": float(costs.CUDA_CONTEXT_BYTES),
        }
        capacity = engine_capacity_bytes(self.gpu, cfg.engine, cfg.memory_utilization, cfg.num_gpus)
        offloaded = 0.0
        if cfg.offload != "none":
            room = max(capacity - per_gpu["kv_cache"] - per_gpu["activations"] - per_gpu["runtime"], 0.0)
            offloaded = max(per_gpu["weights"] - room, 0.0)
            per_gpu["weights"] -= offloaded
        per_gpu["capacity"] = capacity
        per_gpu["offloaded"] = offloaded * n
        return per_gpu

    def decode_step(self, cfg: InferenceConfig, tokens_per_step: int = 1) -> dict[str, float]:
        """Uncalibrated time of one decode step (seconds) that checks `tokens_per_step` tokens per sequence.

        memory_s reads the weights once and the KV cache at the mean context; compute_s counts 2 FLOPs per active
        parameter per token plus attention; prior_s applies the kernel's typical share of peak (formats.prior_mbu,
        costs.PREFILL_MFU_PRIOR) and adds the tensor-parallel all-reduces (docs/cost_model.md §3.1-§3.3).
        """
        model, fmt = self.model, weight_format(cfg.weights)
        # pipeline stages run one after another for a token, so only the tensor-parallel size divides its time
        mode, split, _ = parallel_layout(cfg)
        if mode == "tensor+expert":
            return self._expert_parallel_decode_step(cfg, fmt, tokens_per_step)
        w_read = self.weight_read_bytes(fmt, cfg.body_factor, cfg.batch)
        _, kv_read = self.kv_bytes(cfg)
        avg_context = cfg.prompt_len + cfg.gen_len / 2
        flops = costs.decode_flops_per_step(model.active_params, cfg.batch * tokens_per_step, avg_context, model)
        memory_s = (w_read + kv_read) / split / self.bw
        compute_s = flops / split / compute_peak_flops(self.gpu, fmt, cfg.engine)
        comm_s = self.comm_s(cfg, mode, tokens_per_step)
        prior_s = max(memory_s / fmt.prior_mbu, compute_s / costs.PREFILL_MFU_PRIOR) + comm_s
        return {"memory_s": memory_s, "compute_s": compute_s, "comm_s": comm_s,
                "weights_s": w_read / split / self.bw, "kv_s": kv_read / split / self.bw,
                "bytes_per_gpu": (w_read + kv_read) / split, "roofline_s": max(memory_s, compute_s) + comm_s,
                "prior_s": prior_s, "prior_mbu": fmt.prior_mbu, "mode": mode}

    def _expert_parallel_decode_step(self, cfg: InferenceConfig, fmt: WeightFormat, tokens_per_step: int) -> dict:
        """decode_step under expert parallelism: the busiest GPU's weight reads, its replica's KV cache, compute
        over all GPUs, and the attention all-reduces plus the experts' all-to-alls (docs/cost_model.md §3.7)."""
        model = self.model
        self.check_expert_parallel(cfg)
        tp, dp, ep = expert_layout(cfg)
        w_read = self._memo(("ep-wr", fmt.id, cfg.body_factor, cfg.batch, tp, ep), lambda: costs.expert_parallel_read_bytes(
            model, fmt.bits_per_weight, cfg.batch, tp, ep, fmt.quantizes_embeddings, cfg.body_factor))
        _, kv_total_read = self.kv_bytes(cfg)
        kv_read = kv_total_read / (min(tp, model.kv_shards) * dp)
        avg_context = cfg.prompt_len + cfg.gen_len / 2
        flops = costs.decode_flops_per_step(model.active_params, cfg.batch * tokens_per_step, avg_context, model)
        memory_s = (w_read + kv_read) / self.bw
        compute_s = flops / cfg.num_gpus / compute_peak_flops(self.gpu, fmt, cfg.engine)
        comm_s = self.comm_s(cfg, "tensor+expert", tokens_per_step)
        prior_s = max(memory_s / fmt.prior_mbu, compute_s / costs.PREFILL_MFU_PRIOR) + comm_s
        return {"memory_s": memory_s, "compute_s": compute_s, "comm_s": comm_s, "weights_s": w_read / self.bw,
                "kv_s": kv_read / self.bw, "bytes_per_gpu": w_read + kv_read, "roofline_s": max(memory_s, compute_s)
                + comm_s, "prior_s": prior_s, "prior_mbu": fmt.prior_mbu, "mode": "tensor+expert"}

    def saturated_throughput(self, cfg: InferenceConfig) -> dict:
        """Output tokens/s of a continuously-batching engine that never runs out of requests (docs/cost_model.md §3.8).

        Every request has `cfg.prompt_len` (ISL) prompt and `cfg.gen_len` (OSL) output tokens; `cfg.batch` is ignored.
        Concurrency: B = min(the engine's default cap, engines.max_running_sequences; the sequences of ISL + OSL
        tokens whose KV cache fits in the memory per GPU left after weights, one token budget's activations and the
        runtime, times engines.kv_cache_memory_fraction). Steady state (Orca, Yu et al. 2022; vLLM, Kwon et al. 2023):
        each step decodes one token for each of the B sequences and, chunked into the same steps (Sarathi-Serve,
        Agrawal et al. 2024), prefills B * ISL / OSL prompt tokens on average, so that prompts arrive as fast as
        sequences finish. step_s = decode_step(batch=B) + B * (ISL / OSL) * t_prefill_token, where t_prefill_token is
        one sequence's prefill FLOPs (costs.prefill_flops, attention included) over ISL at the compute peak of the
        parallel layout; throughput = B / step_s.

        Returns a dict: tokens_per_s (prior efficiencies: formats.prior_mbu, costs.PREFILL_MFU_PRIOR),
        roofline_tokens_per_s (100% of peak), sequences (B), engine_max_sequences, memory_max_sequences,
        limited_by ('engine' or 'memory'), step_s, decode_step_s, prefill_step_s (seconds, prior), prefill_share
        (prefill_step_s / step_s). Raises RecommenderInputError for an engine without continuous batching here
        (SERVING_ENGINES), with offload, or when not one sequence's KV cache fits.
        """
        cfg = cfg.validated()
        self.check_expert_parallel(cfg)
        if cfg.engine not in SERVING_ENGINES:
            raise RecommenderInputError(f"saturated throughput is modelled for continuously-batching servers "
                                        f"({', '.join(SERVING_ENGINES)}), not {cfg.engine}")
        if cfg.offload != "none":
            raise RecommenderInputError("saturated throughput with weight offload is not modelled: drop the offload")
        model, fmt = self.model, weight_format(cfg.weights)
        one = replace(cfg, batch=1)
        mem = self.memory(one)
        chunk = prefill_chunk_tokens(cfg.engine, self.gpu)
        mode, tp, _ = parallel_layout(cfg)
        if mode == "tensor+expert":
            tp = expert_layout(cfg)[0]
        # one step's token budget (the prefill chunk; the whole prompt for an engine that does not chunk)
        budget = chunk or cfg.prompt_len
        acts = self._memo(("sat-act", budget, cfg.engine), lambda: costs.inference_activation_bytes(
            model, 1, budget, cfg.engine != "hf-eager", chunk_tokens=chunk)) / tp
        free = mem["capacity"] - mem["weights"] - acts - mem["runtime"]
        kv_room = max(free, 0.0) * kv_cache_memory_fraction(cfg.engine)
        kv_seq = mem["kv_cache"]
        memory_max = int(kv_room // kv_seq) if kv_seq > 0 else MAX_BATCH
        if memory_max < 1:
            raise RecommenderInputError(f"{model.name} leaves no room for one sequence of {cfg.prompt_len} + "
                                        f"{cfg.gen_len} tokens on {self.gpu.name} with {cfg.engine}: use more GPUs or "
                                        "a smaller weight format")
        kv_tokens = kv_room / kv_seq * (cfg.prompt_len + cfg.gen_len) if kv_seq > 0 else float(MAX_TOKENS)
        engine_max = max_running_sequences(cfg.engine, self.gpu, kv_tokens, model.context) or memory_max
        b = min(engine_max, memory_max, MAX_BATCH)
        step = self.decode_step(replace(cfg, batch=b))
        split = cfg.num_gpus if mode == "tensor+expert" else (tp if mode in ("tensor", "tensor+pipeline") else 1)
        prefill_flops = costs.prefill_flops(model.active_params, 1, cfg.prompt_len, model)
        prefill_token_s = prefill_flops / split / compute_peak_flops(self.gpu, fmt, cfg.engine) / cfg.prompt_len
        prompt_tokens_per_step = b * cfg.prompt_len / cfg.gen_len
        prefill_roof_s = prompt_tokens_per_step * prefill_token_s
        prefill_prior_s = prefill_roof_s / costs.PREFILL_MFU_PRIOR
        step_s = step["prior_s"] + prefill_prior_s
        roof_s = step["roofline_s"] + prefill_roof_s
        return {"tokens_per_s": b / step_s, "roofline_tokens_per_s": b / roof_s, "sequences": b,
                "engine_max_sequences": engine_max, "memory_max_sequences": memory_max,
                "limited_by": "engine" if engine_max <= memory_max else "memory", "step_s": step_s,
                "decode_step_s": step["prior_s"], "prefill_step_s": prefill_prior_s,
                "prefill_share": prefill_prior_s / step_s, "mode": step["mode"]}

    def prefill_s(self, cfg: InferenceConfig, prior: bool = False) -> float:
        """Uncalibrated prefill time (seconds): compute-bound, never faster than one pass over the weights.

        prior=True applies the typical efficiencies (costs.PREFILL_MFU_PRIOR, the format's prior_mbu).
        """
        fmt = weight_format(cfg.weights)
        mode, split, _ = parallel_layout(cfg)
        flops = costs.prefill_flops(self.model.active_params, cfg.batch, cfg.prompt_len, self.model)
        compute = flops / split / compute_peak_flops(self.gpu, fmt, cfg.engine)
        memory = self.weight_total_bytes(fmt, cfg.body_factor) / split / self.bw
        if mode == "tensor+expert":   # every GPU computes; each reads its own experts (docs/cost_model.md §3.7)
            compute = flops / cfg.num_gpus / compute_peak_flops(self.gpu, fmt, cfg.engine)
            memory = self.expert_parallel_weight_bytes(fmt, cfg) / self.bw
        if prior:
            compute, memory = compute / costs.PREFILL_MFU_PRIOR, memory / fmt.prior_mbu
        return max(compute, memory) + self.comm_s(cfg, mode, cfg.prompt_len)

    def _per_token_s(self, cfg: InferenceConfig, step: dict, step_s: float, correction: float) -> float:
        """Per-token decode time after speculative decoding / Medusa / prompt lookup (docs/cost_model.md §3.4)."""
        if cfg.draft_fraction > 0:
            verify = self.decode_step(cfg, tokens_per_step=cfg.draft_len + 1)
            verify_s = max(step_s, verify["prior_s"] / correction)
            # a draft draft_fraction x the target's size, run with the same kernels and layout, costs that share
            draft_s = step["prior_s"] * cfg.draft_fraction / correction
            return costs.speculative_time_per_token(step_s, draft_s, verify_s, cfg.acceptance_rate, cfg.draft_len)
        if cfg.tokens_per_step > 1:
            width = int(round(cfg.tokens_per_step)) + 4   # candidate tokens verified per step
            verify = self.decode_step(cfg, tokens_per_step=width)
            return max(step_s, verify["prior_s"] / correction) / cfg.tokens_per_step
        return step_s

    def evaluate_many(self, cfgs: list[InferenceConfig]) -> list[Estimate]:
        """Estimates for many configurations, with one calibrator call per family for the whole batch."""
        cfgs = [c.validated() for c in cfgs]
        for c in cfgs:
            self.check_expert_parallel(c)
            self.check_tensor_parallel(c)
        steps = [self.decode_step(c) for c in cfgs]
        fmts = [weight_format(c.weights) for c in cfgs]
        n = len(cfgs)
        corr, low, high, pcorr = np.ones(n), np.ones(n), np.ones(n), np.ones(n)
        if self.calibrator is not None and n:
            corr, low, high = self.calibrator.decode_batch(
                [(c.engine, self.gpu, f, c.num_gpus, c.batch, s["bytes_per_gpu"], s["mode"])
                 for c, f, s in zip(cfgs, fmts, steps, strict=True)])
            pcorr = self.calibrator.prefill_batch(
                [(c.engine, self.gpu, f, c.num_gpus, c.batch * c.prompt_len, s["mode"])
                 for c, f, s in zip(cfgs, fmts, steps, strict=True)])
        out = [self._finish(c, f, s, float(a), float(lo), float(hi), float(p))
               for c, f, s, a, lo, hi, p in zip(cfgs, fmts, steps, corr, low, high, pcorr, strict=True)]
        self._add_saturated(cfgs, fmts, steps, out)
        if self.calibrator is not None and getattr(self.calibrator, "local_adjustments", ()):
            for est, c, f in zip(out, cfgs, fmts, strict=True):
                adj = self.calibrator.local_adjustment(c.engine, self.gpu, f)
                if adj is not None:
                    est.local_adjustment = adj.describe()
        return out

    def _add_saturated(self, cfgs: list[InferenceConfig], fmts: list[WeightFormat], steps: list[dict],
                       out: list[Estimate]) -> None:
        """Fill saturated_throughput_tokens_per_s and saturated_sequences for the serving engines (§3.8), calibrated
        by the throughput corrector in one call; None where the engine has no continuous batching here, with
        offload, or when not one sequence fits."""
        todo = []
        for i, c in enumerate(cfgs):
            if c.engine not in SERVING_ENGINES or c.offload != "none":
                continue
            try:
                todo.append((i, self.saturated_throughput(c)))
            except RecommenderInputError:
                continue
        if not todo:
            return
        corr = np.ones(len(todo))
        if self.calibrator is not None and hasattr(self.calibrator, "throughput_batch"):
            corr = self.calibrator.throughput_batch(
                [(cfgs[i].engine, self.gpu, fmts[i], cfgs[i].num_gpus, sat["sequences"], sat["prefill_share"],
                  steps[i]["mode"]) for i, sat in todo])
        for (i, sat), a in zip(todo, corr, strict=True):
            out[i].saturated_throughput_tokens_per_s = sat["tokens_per_s"] * float(a)
            out[i].saturated_sequences = int(sat["sequences"])

    def evaluate(self, cfg: InferenceConfig) -> Estimate:
        return self.evaluate_many([cfg])[0]

    def _finish(self, cfg: InferenceConfig, fmt: WeightFormat, step: dict, correction: float, low: float,
                high: float, prefill_correction: float) -> Estimate:
        model, gpu = self.model, self.gpu
        warnings = _hardware_warnings(gpu, fmt, cfg)
        if cfg.prompt_len + cfg.gen_len > model.context:
            warnings.append(f"prompt + output ({cfg.prompt_len + cfg.gen_len}) exceeds the model's context "
                            f"({model.context}); the estimate assumes it could run anyway")
        mem = self.memory(cfg)
        capacity = mem.pop("capacity")
        offloaded = mem.pop("offloaded")
        per_gpu_bytes = sum(mem.values())
        fits = per_gpu_bytes <= capacity and not (cfg.offload != "none" and mem["weights"] <= 0)
        offload_s = costs.offload_time(offloaded / cfg.num_gpus, self.link) if offloaded > 0 else 0.0
        base_step_s = step["prior_s"] / correction
        step_s = max(base_step_s, offload_s) if cfg.offload == "overlap" else base_step_s + offload_s
        per_token_s = self._per_token_s(cfg, step, step_s, correction)
        prefill_s = self.prefill_s(cfg, prior=True) / prefill_correction + offload_s
        scale = per_token_s / step_s
        to_ms = 1e3 * scale / correction
        breakdown = {
            "weights_read": step["weights_s"] / step["prior_mbu"] * to_ms,
            "kv_read": step["kv_s"] / step["prior_mbu"] * to_ms,
            "tensor_parallel_comm": step["comm_s"] * to_ms,
            "offload_transfer": offload_s * 1e3 * scale if offloaded > 0 else 0.0,
        }
        if step["compute_s"] / costs.PREFILL_MFU_PRIOR > step["memory_s"] / step["prior_mbu"]:
            breakdown = {"compute_bound_matmuls": step["compute_s"] / costs.PREFILL_MFU_PRIOR * to_ms,
                         "tensor_parallel_comm": breakdown["tensor_parallel_comm"],
                         "offload_transfer": breakdown["offload_transfer"]}
        if step["mode"] == "tensor+expert":   # the all-reduces plus the experts' all-to-alls
            breakdown = {("expert_parallel_comm" if k == "tensor_parallel_comm" else k): v for k, v in breakdown.items()}
        breakdown["other"] = max(per_token_s * 1e3 - sum(breakdown.values()), 0.0)
        share = engine_memory_share(cfg.engine, cfg.memory_utilization, gpu, cfg.num_gpus)
        return Estimate(
            workload="inference", model_id=model.id, gpu_id=gpu.id, num_gpus=cfg.num_gpus,
            memory_gib=per_gpu_bytes * cfg.num_gpus / costs.GIB, per_gpu_memory_gib=per_gpu_bytes / costs.GIB,
            capacity_gib=capacity / costs.GIB, fits=fits,
            memory_breakdown_gib={k: v / costs.GIB for k, v in mem.items()}, offloaded_gib=offloaded / costs.GIB,
            reserved_gib=gpu.usable_memory_gib * share if share < 1.0 else None,
            ttft_ms=prefill_s * 1e3, decode_ms_per_token=per_token_s * 1e3,
            decode_ms_low=per_token_s * correction / high * 1e3, decode_ms_high=per_token_s * correction / low * 1e3,
            decode_tokens_per_s=1.0 / per_token_s, throughput_tokens_per_s=cfg.batch / per_token_s,
            roofline_decode_ms_per_token=step["roofline_s"] * 1e3, latency_breakdown_ms=breakdown,
            calibrated=self.calibrator is not None, warnings=warnings, settings=dict(vars(cfg)))


# ------------------------------------------------------------------ functional faces of the same model
def decode_step_roofline(model: ModelSpec, gpu: GPU, cfg: InferenceConfig, tokens_per_step: int = 1) -> dict:
    """Uncalibrated decode step of `cfg` (see InferenceEvaluator.decode_step)."""
    return InferenceEvaluator(model, gpu).decode_step(cfg, tokens_per_step)


def prefill_roofline(model: ModelSpec, gpu: GPU, cfg: InferenceConfig, prior: bool = False) -> float:
    """Uncalibrated prefill seconds of `cfg` (see InferenceEvaluator.prefill_s)."""
    return InferenceEvaluator(model, gpu).prefill_s(cfg, prior)


def saturated_throughput(model: ModelSpec, gpu: GPU, cfg: InferenceConfig) -> dict:
    """Uncalibrated saturated-server output tokens/s of `cfg` (see InferenceEvaluator.saturated_throughput)."""
    return InferenceEvaluator(model, gpu).saturated_throughput(cfg)


def inference_memory(model: ModelSpec, gpu: GPU, cfg: InferenceConfig) -> dict[str, float]:
    """Per-GPU memory components in bytes, plus offloaded bytes and the usable capacity."""
    return InferenceEvaluator(model, gpu).memory(cfg)


def estimate_inference(model: ModelSpec, gpu: GPU, cfg: InferenceConfig, calibrator=None) -> Estimate:
    """Memory and latency of one inference configuration; calibrated when a calibrator is given.

    The recommender's public face (`recommender.api.estimate_inference`) passes the default calibrator.
    """
    return InferenceEvaluator(model, gpu, calibrator).evaluate(cfg)


def _hardware_warnings(gpu: GPU, fmt: WeightFormat, cfg: InferenceConfig) -> list[str]:
    out = []
    if fmt.needs == "bf16" and not gpu.bf16:
        out.append(f"{gpu.name} has no bf16 support: use fp16")
    if fmt.needs == "fp8" and not gpu.fp8:
        out.append(f"{gpu.name} has no FP8 support (needs Ada or Hopper)")
    if fmt.needs == "fp4" and not gpu.fp8:   # FP4 kernels need the FP8-era tensor cores (formats.py, needs="fp4")
        out.append(f"{gpu.name} has no FP4 support for {fmt.id} weights (needs Ada, Hopper or Blackwell)")
    if cfg.kv == "fp8" and not gpu.fp8:
        out.append(f"{gpu.name} has no FP8 support for an fp8 KV cache")
    if cfg.engine == "vllm" and gpu.vendor == "apple":
        out.append("vLLM does not run on Apple GPUs; use llama.cpp")
    return out


# ------------------------------------------------------------------ fine-tuning
@dataclass(frozen=True)
class TrainingConfig:
    method: str = "lora"              # full | lora | qlora | lomo | mezo
    optimizer: str = "adamw"          # adamw | adam-8bit | paged-adam-8bit
    checkpointing: bool = True
    sharding: str = "none"            # none | zero1 | zero2 | zero3 | fsdp
    num_gpus: int = 1
    batch: int = 1
    seq_len: int = 512
    lora_rank: int = 16
    flash: bool = True

    def validated(self) -> TrainingConfig:
        if self.method not in ("full", "lora", "qlora", "lomo", "mezo"):
            raise RecommenderInputError(f"unknown fine-tuning method '{self.method}' (full, lora, qlora, lomo, mezo)")
        if self.optimizer not in ("adamw", "adam-8bit", "paged-adam-8bit"):
            raise RecommenderInputError(f"unknown optimizer '{self.optimizer}' (adamw, adam-8bit, paged-adam-8bit)")
        if self.sharding not in ("none", "zero1", "zero2", "zero3", "fsdp"):
            raise RecommenderInputError(f"unknown sharding '{self.sharding}' (none, zero1, zero2, zero3, fsdp)")
        check_number("batch", self.batch, low=1, high=MAX_BATCH, integer=True)
        check_number("sequence length", self.seq_len, low=1, high=MAX_TOKENS, integer=True)
        check_number("number of GPUs", self.num_gpus, low=1, high=1024, integer=True)
        check_number("LoRA rank", self.lora_rank, low=1, high=65536, integer=True)
        return self


def training_memory(model: ModelSpec, cfg: TrainingConfig) -> dict[str, float]:
    """Per-GPU bytes: frozen/trainable weights, gradients, optimizer states, activations, the optimizer step's
    transient beyond the activations (optimizer_step), runtime. Their sum is the peak."""
    p = float(model.total_params)
    n = cfg.num_gpus
    stage = {"none": 0, "zero1": 1, "zero2": 2, "zero3": 3, "fsdp": 3}[cfg.sharding]
    dp = n if stage else 1
    state_bytes = 2 if cfg.optimizer != "adamw" else 8    # 8-bit Adam keeps m and v in 1 byte each
    residual = costs.KBIT_UPCAST_BYTES if cfg.method == "qlora" else 2
    acts = costs.training_activation_bytes(model, cfg.batch, cfg.seq_len, cfg.checkpointing, cfg.flash, residual)
    trainable = p
    if cfg.method in ("full",):
        weights = p * 2 / (dp if stage >= 3 else 1)
        grads = p * 2 / (dp if stage >= 2 else 1)
        optimizer = p * (4 + state_bytes) / (dp if stage >= 1 else 1)
    elif cfg.method == "lomo":
        # LOMO fuses the update into backward: no full gradient or optimizer state (Lv et al. 2023).
        weights, grads, optimizer = p * 2 / (dp if stage >= 3 else 1), 0.0, 0.0
    elif cfg.method == "mezo":
        # MeZO: forward passes only, so inference-level memory (Malladi et al. 2023).
        weights, grads, optimizer = p * 2 / (dp if stage >= 3 else 1), 0.0, 0.0
        acts = costs.inference_activation_bytes(model, cfg.batch, cfg.seq_len, cfg.flash)
    else:
        lora = trainable = costs.lora_params(model, cfg.lora_rank)
        if cfg.method == "qlora":
            # NF4 blocks; embeddings, lm_head and norms stay unquantized and PEFT upcasts them to fp32
            frozen = model.body_params * weight_format("nf4").bits_per_weight / 8 \
                + (model.embedding_params + model.head_params + model.hidden) * costs.KBIT_UPCAST_BYTES
        else:
            frozen = p * 2
        weights = frozen / (dp if stage >= 3 else 1) + lora * 4          # fp32 adapter weights
        grads = lora * 4
        optimizer = lora * (8 if cfg.optimizer == "adamw" else state_bytes)
    # The foreach AdamW step's intermediate (costs.FOREACH_ADAMW_STEP_BYTES) is live after backward, so it only
    # raises the peak by what it exceeds the activations with; DeepSpeed ZeRO steps in place.
    step = 0.0
    if cfg.optimizer == "adamw" and cfg.method not in ("lomo", "mezo") and cfg.sharding in ("none", "fsdp"):
        step = trainable * costs.FOREACH_ADAMW_STEP_BYTES / dp   # FSDP shards the flat parameters
    return {"weights": weights, "gradients": grads, "optimizer": optimizer, "activations": acts,
            "optimizer_step": max(step - acts, 0.0), "runtime": float(costs.CUDA_CONTEXT_BYTES)}


def estimate_training(model: ModelSpec, gpu: GPU, cfg: TrainingConfig) -> Estimate:
    """Memory and step time of one fine-tuning configuration (data parallel over num_gpus)."""
    cfg = cfg.validated()
    warnings = []
    if cfg.method == "qlora" and gpu.vendor not in ("nvidia", "custom"):   # a custom GPU's vendor is unknown
        warnings.append("bitsandbytes NF4 (QLoRA) targets NVIDIA GPUs")
    if cfg.sharding != "none" and cfg.num_gpus == 1:
        warnings.append("ZeRO/FSDP sharding needs more than one GPU; it has no effect here")
    mem = training_memory(model, cfg)
    per_gpu = sum(mem.values())
    capacity = engine_capacity_bytes(gpu, "hf")
    tokens = cfg.batch * cfg.seq_len
    flops = costs.training_step_flops(model.active_params, tokens, cfg.method, cfg.checkpointing)
    step_s = costs.compute_bound_time(flops, gpu.fp16_tflops * 1e12, costs.TRAIN_MFU_PRIOR)
    if cfg.method == "qlora":
        # dequantising NF4 weights on every forward and backward pass re-reads them (QLoRA README, Known Issues)
        step_s += 2 * costs.weight_bytes(model, 4.127)["total"] / (gpu.bandwidth_gbps * 1e9 * 0.21)
    return Estimate(
        workload=f"finetune-{cfg.method}", model_id=model.id, gpu_id=gpu.id, num_gpus=cfg.num_gpus,
        memory_gib=per_gpu * cfg.num_gpus / costs.GIB, per_gpu_memory_gib=per_gpu / costs.GIB,
        capacity_gib=capacity / costs.GIB, fits=per_gpu <= capacity,
        memory_breakdown_gib={k: v / costs.GIB for k, v in mem.items()},
        step_time_s=step_s, train_tokens_per_s=tokens * cfg.num_gpus / step_s, warnings=warnings,
        settings=asdict(cfg))


def workload_method(workload: str) -> str:
    if workload not in WORKLOADS:
        from .errors import unknown_id_error

        raise unknown_id_error("workload", workload, list(WORKLOADS))
    return workload.removeprefix("finetune-")
