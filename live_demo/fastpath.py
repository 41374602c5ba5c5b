"""Decode paths: eager (a growing DynamicCache), static (a pre-allocated StaticCache) and compiled (static cache plus
torch.compile; mode "reduce-overhead" uses CUDA graphs on a GPU).

Why: on a GPU a small model's decode step is hundreds of tiny kernels launched one by one from Python, so eager
decoding of SmolLM2-135M reached about 0.3 % of the H200's bandwidth roofline (issue 14; gpt-fast's generate.py
compiles its decode step with mode="reduce-overhead" for the same reason). A static cache keeps every tensor at a
fixed address and shape, which CUDA graphs need; the prefill (one call of a prompt-dependent length) stays eager.

Choice: `choose_path(device)` gives "compiled" on CUDA and "eager" on CPU (on two cores compilation costs far more
than the launches it saves), unless the caller or $ELLM_DECODE_PATH asks for another. A compiled run that fails
(a missing compiler, an unsupported op) falls back to eager once per model, and the result says so in its note.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
import weakref
from dataclasses import dataclass

from live_demo.errors import LiveDemoError

PATHS = ("eager", "static", "compiled")
ENV_VAR = "ELLM_DECODE_PATH"
CACHE_BUCKET = 256  # static caches are sized in multiples of this, so similar runs reuse compiled graphs
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> compiled module
_FAILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> why compiling failed
_SHAPES_SEEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(tokens, cache len): seconds}
_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(positions, batch): StaticCache}


@dataclass
class DecodePath:
    """How one run decodes: its cache kind and whether steps after the prefill go through torch.compile."""

    name: str = "eager"
    note: str = ""

    def __post_init__(self):
        if self.name not in PATHS:
            raise ValueError(f"decode path must be one of {PATHS}, got {self.name!r}")

    @property
    def static(self) -> bool:
        return self.name in ("static", "compiled")

    def new_cache(self, model, max_len: int, batch: int = 1):
        """An empty KV cache: DynamicCache for eager, else a StaticCache of at least `max_len` positions.

        Static caches are kept per model, size and batch and reset for the next run, as transformers' generate
        does: CUDA graphs are recorded for the cache's tensor addresses, and a new cache per run would make them
        record again (or give up on graphs) every time.
        """
        from transformers import DynamicCache, StaticCache

        if not self.static:
            return DynamicCache(config=model.config)
        size = min(-(-max_len // CACHE_BUCKET) * CACHE_BUCKET, model.config.max_position_embeddings)
        pool = _CACHES.setdefault(model, {})
        cache = pool.get((size, batch))
        if cache is None:
            cache = pool[(size, batch)] = StaticCache(config=model.config, max_cache_len=size)
        else:
            cache.reset()
        return cache

    def step(self, model, ids, cache, keep: int = 0, prefill: bool = False):
        """One forward pass (see forward below); compiled for decode steps on the compiled path."""
        if self.name != "compiled" or prefill:
            return forward(model, ids, cache, keep)
        compiled = _compiled(model)
        key = (ids.shape[-1], _cache_len(cache), keep)
        seen = _SHAPES_SEEN.setdefault(model, {})
        start = time.perf_counter()
        logits = forward(compiled, ids, cache, keep, model_class=type(model)).clone()  # graphs reuse outputs
        if key not in seen:
            seen[key] = time.perf_counter() - start  # the first call of a shape compiles (and records) it
        return logits


def compile_seconds(model) -> float:
    """Seconds spent in first calls of each compiled shape of `model` (compilation and graph capture)."""
    return sum(_SHAPES_SEEN.get(model, {}).values())


def _cache_len(cache) -> int:
    layers = getattr(cache, "layers", None) or []
    return int(getattr(layers[0], "max_cache_len", 0)) if layers else 0


def _compiled(model):
    import torch

    if model not in _COMPILED:
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)  # 1..k+1 tokens
        mode = "reduce-overhead" if next(model.parameters()).device.type == "cuda" else "default"
        _COMPILED[model] = torch.compile(model, mode=mode)  # dynamic=None: a second shape compiles a dynamic graph
    return _COMPILED[model]


def choose_path(device: str, requested: str | None = None, model=None) -> DecodePath:
    """The decode path for `device` ("cpu"/"cuda"): requested, else $ELLM_DECODE_PATH, else compiled on CUDA.

    A model whose compilation failed earlier gets eager, with the reason in the note.
    """
    name = requested or os.environ.get(ENV_VAR, "").strip() or ("compiled" if device == "cuda" else "eager")
    if name not in PATHS:
        raise ValueError(f"decode path must be one of {PATHS}, got {name!r} (check ${ENV_VAR})")
    if name == "compiled" and model is not None and model in _FAILED:
        return DecodePath("eager", f"eager fallback: compiling failed earlier ({_FAILED[model]})")
    if name == "eager" and device == "cpu" and not requested and not os.environ.get(ENV_VAR):
        return DecodePath("eager", "eager on the CPU: compiling on a few cores costs more than it saves")
    return DecodePath(name, "static KV cache and torch.compile (CUDA graphs)" if name == "compiled" and
                      device == "cuda" else "")


def run_with_fallback(path: DecodePath, model, run):
    """run(path); when the compiled path fails, once more on the eager path with the reason in its note."""
    if path.name != "compiled":
        return run(path)
    try:
        return run(path)
    except LiveDemoError:
        raise
    except (RuntimeError, NotImplementedError, AttributeError, TypeError, ImportError, AssertionError) as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        _FAILED[model] = reason
        return run(DecodePath("eager", f"eager fallback: the compiled path failed ({reason})"))


def forward(model, ids, cache, keep: int = 0, model_class=None):
    """One forward pass over `ids` (1, n) extending `cache` in place; returns logits (1, n, vocab).

    keep > 0 asks for the logits of the last `keep` positions only, (1, keep, vocab), where the model supports
    it: a 110-token prefill then skips 109 of 110 vocabulary projections (49k x 576 each for SmolLM2), which on
    a 2-core CPU is a visible share of a short generation.
    """
    if keep and _supports_logits_to_keep(model_class or type(model)):
        return model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=keep).logits
    logits = model(input_ids=ids, cache=cache, use_cache=True).logits
    return logits[:, -keep:] if keep else logits


@functools.cache
def _supports_logits_to_keep(model_class) -> bool:
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters
