"""Inference engines' documented defaults (data/engines.yaml): memory share and prefill chunk size.

Sources are in the data file beside each figure; docs/cost_model.md §2.3 and §2.5 say how the estimate uses them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from . import costs
from .hardware import GPU

DATA_FILE = Path(__file__).parent / "data" / "engines.yaml"
# llama.cpp evaluates a prompt in physical micro-batches of -ub/--ubatch-size tokens (default 512,
# tools/server/README.md), so its activation peak is that of 512 tokens whatever the prompt length.
LLAMA_CPP_UBATCH_TOKENS = 512
# SGLang's reserve for CUDA graphs: cuda_graph_max_bs 256 at 2 MiB each (ServerArgs, data/engines.yaml).
SGLANG_CUDA_GRAPH_MAX_BS = 256


@lru_cache(maxsize=1)
def engine_table() -> dict[str, dict]:
    """Every engine row of data/engines.yaml keyed by id."""
    return {row["id"]: row for row in yaml.safe_load(DATA_FILE.read_text()) or []}


def prefill_chunk_tokens(engine: str, gpu: GPU) -> int | None:
    """Tokens one prefill pass processes at most by default (None: the whole prompt at once).

    vLLM V1 and SGLang chunk long prompts (max_num_batched_tokens / chunked_prefill_size, both chosen from the GPU's
    memory); llama.cpp runs micro-batches of 512 tokens; transformers prefills the prompt in one pass.
    """
    if engine == "llama.cpp":
        return LLAMA_CPP_UBATCH_TOKENS
    row = engine_table().get(engine, {})
    default = row.get("chunked_prefill_default_tokens")
    if engine == "vllm":
        big = gpu.memory_gib >= 70 and "a100" not in gpu.id
        return default["v1_api_server_ge_70gib_not_a100" if big else "v1_api_server_other"]
    if engine == "sglang":
        mem = gpu.memory_gib
        key = "gpu_lt_35gib" if mem < 35 else "gpu_35_60gib" if mem < 60 else "gpu_60_160gib" if mem < 160 \
            else "gpu_ge_160gib"
        return default[key]
    return default if isinstance(default, int) else None


def default_memory_share(engine: str, gpu: GPU | None = None, num_gpus: int = 1) -> float:
    """Share of usable device memory the engine fills by default (1.0: it allocates on demand).

    SGLang's share depends on the GPU; without one it is treated like an on-demand engine.

    vLLM: gpu_memory_utilization 0.9 (costs.VLLM_MEMORY_UTILIZATION). SGLang: mem_fraction_static computed as
    (memory - reserved) / memory with reserved MiB = 512 + 1.5 * max(chunk, 2048) + 2 * cuda_graph_max_bs
    + 1024 * tp / 8, at least 10,240 MiB on GPUs over 60 GiB (ServerArgs; data/engines.yaml).
    """
    if engine == "vllm":
        return costs.VLLM_MEMORY_UTILIZATION
    if engine == "sglang" and gpu is not None:
        chunk = prefill_chunk_tokens("sglang", gpu) or 2048
        reserved = 512 + 1.5 * max(chunk, 2048) + 2 * SGLANG_CUDA_GRAPH_MAX_BS + 1024 * num_gpus / 8
        if gpu.memory_gib > 60:
            reserved = max(reserved, 10_240)
        total_mib = gpu.memory_gib * 1024
        return max(0.1, min(1.0, (total_mib - reserved) / total_mib))
    return 1.0


def serving_engines() -> tuple[str, ...]:
    """Engines with a continuous-batching scheduler and a documented default for its most concurrent sequences
    (data/engines.yaml `max_running_sequences_default`): vLLM, SGLang, TensorRT-LLM, TGI."""
    return tuple(e for e, row in engine_table().items() if row.get("max_running_sequences_default") is not None)


def max_running_sequences(engine: str, gpu: GPU, kv_tokens: float, context_len: int) -> int | None:
    """The engine's default cap on sequences decoded together (None: the engine has no continuous batching here).

    vLLM: max_num_seqs 1024 on GPUs of >= 70 GiB that are not an A100, else 256. SGLang: min(kv_tokens // 2, request
    pool) with a pool of min(max(int(kv_tokens / context_len * 512), 2048), 4096) requests, where `kv_tokens` is the
    KV pool's size in tokens and `context_len` the model's context. TensorRT-LLM: trtllm-bench's cap of 4096. TGI:
    --max-concurrent-requests 128. Sources beside each figure in data/engines.yaml.
    """
    default = engine_table().get(engine, {}).get("max_running_sequences_default")
    if default is None:
        return None
    if engine == "vllm":
        big = gpu.memory_gib >= 70 and "a100" not in gpu.id
        return int(default["ge_70gib_not_a100" if big else "other"])
    if engine == "sglang":
        pool = min(max(int(kv_tokens / max(context_len, 1) * default["per_context"]), default["floor"]), default["cap"])
        return max(1, min(int(kv_tokens // default["kv_tokens_divisor"]), pool))
    return int(default)


def kv_cache_memory_fraction(engine: str) -> float:
    """Share of the memory left after weights, activations and runtime that the engine gives its KV cache: 0.9 for
    TensorRT-LLM (KvCacheConfig.free_gpu_memory_fraction, data/engines.yaml), 1.0 for engines whose memory share is
    already applied to the whole device (vLLM's gpu_memory_utilization, SGLang's mem_fraction_static)."""
    return float(engine_table().get(engine, {}).get("kv_cache_free_memory_fraction") or 1.0)
