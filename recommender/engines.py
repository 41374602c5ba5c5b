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


# Engines that pre-allocate a share of GPU memory the user may set (vLLM --gpu-memory-utilization, SGLang
# --mem-fraction-static); default_memory_share above gives their defaults. The others allocate on demand.
MEMORY_SHARE_ENGINES = ("vllm", "sglang")

# The engines' own KV-cache dtype spellings (data/engines.yaml `kv_cache_dtypes`) -> recommender/formats.py KV ids.
# "auto" / "model dtype" is the model's own dtype (16- or 32-bit); llama.cpp's q8_0/q4_0 blocks and the 8-/4-bit caches of
# transformers (quanto/hqq) and ExLlamaV2 (Q8/Q4) are the int8/int4 sizes of formats.KV_BYTES.
_KV_SPELLINGS = {"auto": ("fp32", "fp16", "bf16"), "model dtype": ("fp32", "fp16", "bf16"), "f32": ("fp32",), "fp32": ("fp32",),
                 "f16": ("fp16",), "fp16": ("fp16",), "bf16": ("bf16",), "bfloat16": ("bf16",),
                 "fp8": ("fp8",), "fp8_e4m3": ("fp8",), "fp8_e5m2": ("fp8",), "fp8_e4m3fn": ("fp8",),
                 "q8_0": ("q8_0", "int8"), "q4_0": ("q4_0", "int4"), "int8": ("int8",), "q8": ("int8",),
                 "q4": ("int4",)}


def _row(engine: str) -> dict:
    table = engine_table()
    row = table.get(engine, {})
    return table.get(row["same_as"], row) if row.get("same_as") else row


def engine_weight_formats(engine: str) -> tuple[str, ...]:
    """Weight format ids (recommender/formats.py) the engine runs, from data/engines.yaml `weight_formats`."""
    return tuple(_row(engine).get("weight_formats") or ())


def engine_kv_formats(engine: str) -> tuple[str, ...]:
    """KV-cache ids (formats.KV_BYTES) the engine runs, from data/engines.yaml `kv_cache_dtypes` (its own spellings,
    mapped by _KV_SPELLINGS; transformers' 'quantized' cache covers int8 and int4)."""
    out: list[str] = []
    for spelling in _row(engine).get("kv_cache_dtypes") or ():
        text = str(spelling).lower()
        ids = _KV_SPELLINGS.get(text, ("int8", "int4") if text.startswith("quantized") else ())
        out += [i for i in ids if i not in out]
    return tuple(out)


def check_engine_runs(engine: str, weights: str | None = None, kv: str | None = None,
                      option_names: tuple[str, str] = ("weights", "KV cache")) -> None:
    """Raise RecommenderInputError when `engine` cannot run the weight format or KV-cache dtype (None: not checked).

    What each engine runs is data/engines.yaml (`weight_formats`, `kv_cache_dtypes`, with their sources). EXL2 is
    one kernel at any bits per weight: an engine listing any exl2-<bits> runs them all. Unknown ids raise the
    formats module's own error. An engine without a row (none today) is not checked.
    """
    from .errors import RecommenderInputError
    from .formats import kv_bytes_per_element, weight_format

    if engine not in engine_table():
        return
    if weights is not None:
        fmt = weight_format(weights)
        runs = engine_weight_formats(engine)
        exl2 = fmt.kernel == "exl2" and any(w.startswith("exl2-") for w in runs)
        if runs and fmt.id not in runs and not exl2:
            shown = [w for w in runs if not w.startswith("exl2-")] + (["exl2-<bits>"] if any(
                w.startswith("exl2-") for w in runs) else [])
            raise RecommenderInputError(f"{option_names[0]} {fmt.id}: the {engine} engine does not run it; it runs "
                                        f"{', '.join(shown)}")
    if kv is not None:
        key = str(kv).strip().lower()
        kv_bytes_per_element(key)
        runs = engine_kv_formats(engine)
        if runs and key not in runs:
            raise RecommenderInputError(f"{option_names[1]} {key}: the {engine} engine has no such KV cache; it runs "
                                        f"{', '.join(runs)}")
