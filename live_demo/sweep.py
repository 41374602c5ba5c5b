"""When each technique pays: decode throughput against batch size, with the memory bandwidth it achieves.

At batch 1 a decode step reads every weight once to produce one token per sequence, so it is memory-bound and
fewer weight bytes (quantization) help; as the batch grows the same read serves more tokens, until the step
becomes compute-bound and dequantization overhead makes quantization stop paying. For each method and batch:

- tokens_per_s = batch x decode steps / seconds (greedy, the same prompt in every row, after the prefill);
- weights_gbps = weight bytes x decode steps / seconds / 1e9: the weights read per second;
- achieved_gbps adds the KV cache read per step: 2 (K and V) x layers x KV heads x head dim x bytes per value x
  positions x batch, where positions is the static cache's full length on the static/compiled paths (attention
  reads every slot, masked or not) and the mean context on the eager path. Activations are not counted, so it
  is still a lower bound on the bytes moved;
- pct_of_peak = achieved_gbps / peak_gbps, where peak_gbps is this device's measured copy bandwidth (bytes read
  plus bytes written by a large device-to-device copy), so the figure needs no datasheet.
"""

from __future__ import annotations

import gc
import threading
import time

from live_demo.decoding import oom_guard, spread, synchronize
from live_demo.errors import OutOfMemoryError, RunCancelled, check_int

BATCHES = (1, 2, 4, 8, 16, 32, 64)


def copy_bandwidth_gbps(device: str, megabytes: int | None = None, repeats: int = 5) -> float:
    """Measured device memory bandwidth in GB/s: 2 x bytes / seconds of the median copy of a large buffer."""
    import torch

    size = (megabytes or (512 if device == "cuda" else 64)) * 2**20
    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        dst.copy_(src)
        synchronize(device)
        times.append(time.perf_counter() - start)
    del src, dst
    return 2 * size / spread(times)["median"] / 1e9


def kv_bytes_per_step(config, positions: int, batch: int, value_bytes: int) -> int:
    """Bytes of K and V read by one decode step: 2 x layers x KV heads x head dim x value bytes x positions x batch."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * heads * head_dim * value_bytes * positions * batch


def _kv_positions(path, prompt_len: int, new_tokens: int) -> int:
    from live_demo.fastpath import CACHE_BUCKET

    if path.static:
        return -(-(prompt_len + new_tokens + 1) // CACHE_BUCKET) * CACHE_BUCKET
    return prompt_len + new_tokens // 2


def _value_bytes(dtype: str) -> int:
    return 4 if dtype == "float32" else 2


def batched_decode_seconds(model, prompt_ids: list[int], batch: int, new_tokens: int, path) -> float:
    """Seconds of `new_tokens - 1` greedy decode steps at `batch` sequences (the prefill is not timed)."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode(), oom_guard():
        cache = path.new_cache(model, len(prompt_ids) + new_tokens + 1, batch)
        ids = torch.tensor([prompt_ids] * batch, device=device)
        logits = path.step(model, ids, cache, keep=1, prefill=True)[:, -1]
        token = torch.argmax(logits, dim=-1, keepdim=True)  # (batch, 1)
        synchronize(device.type)
        start = time.perf_counter()
        for _ in range(new_tokens - 1):
            logits = path.step(model, token, cache, keep=1)[:, -1]
            token = torch.argmax(logits, dim=-1, keepdim=True)
        synchronize(device.type)
        return time.perf_counter() - start


def decode_sweep(lm, methods: list[str], batches: tuple = BATCHES, new_tokens: int = 32, repeats: int = 3,
                 path=None, prompt: str = "Explain why the sky is blue.", stop_event: threading.Event | None = None,
                 progress=None, source: str = "page"):
    """A reports.SweepReport: for each method ("baseline" = the loaded model) and batch, tokens/s (median and
    min-max of `repeats`), achieved weight bandwidth and its share of the measured copy bandwidth.

    A batch that runs out of memory ends that method's sweep (recorded as {"error": ...}). Raises BadInputError
    for a bad count, ValueError for an unknown method.
    """
    from live_demo.compression import calibration_ids
    from live_demo.decoding import chat_prompt_ids
    from live_demo.fastpath import DecodePath, choose_path
    from live_demo.quantization import QuantMethod, quantize_copy, weight_bytes
    from live_demo.quantization_names import weight_format
    from live_demo.reports import RunInfo, SweepReport, short_dtype

    check_int("new_tokens", new_tokens, 2, 512)
    check_int("repeats", repeats, 1, 20)
    for b in batches:
        check_int("batch", b, 1, 1024)
    for m in methods:
        if m != "baseline":
            QuantMethod.from_name(m)
    note = progress or (lambda f, m: None)
    decode = path if isinstance(path, DecodePath) else choose_path(lm.device, path, lm.model)
    prompt_ids = chat_prompt_ids(lm.tokenizer, prompt)
    note(0.0, "Measuring the device's copy bandwidth")
    peak = copy_bandwidth_gbps(lm.device)
    rows, calibration = [], None
    for n, method in enumerate(methods):
        if method != "baseline" and QuantMethod.from_name(method).kind == "dynamic-outlier":
            calibration = calibration or calibration_ids(lm.tokenizer)
        model = lm.model if method == "baseline" else quantize_copy(lm.model, method, calibration)
        name = short_dtype(lm.dtype) if method == "baseline" else method
        wbytes = weight_bytes(model)["weight_bytes"]
        batched_decode_seconds(model, prompt_ids, 1, 4, decode)  # warm-up (and compilation of the 1-token step)
        for i, batch in enumerate(batches):
            if stop_event is not None and stop_event.is_set():
                raise RunCancelled("Stopped by the user.")
            note((n + i / len(batches)) / len(methods), f"{name}: batch {batch}")
            try:
                if decode.name == "compiled":  # a new batch shape compiles (or records a CUDA graph): not timed
                    batched_decode_seconds(model, prompt_ids, batch, 3, decode)
                seconds = [batched_decode_seconds(model, prompt_ids, batch, new_tokens, decode)
                           for _ in range(repeats)]
            except OutOfMemoryError as exc:
                rows.append({"method": name, "batch": batch, "error": str(exc)})
                break
            steps = new_tokens - 1
            rate = spread([batch * steps / s for s in seconds])
            per_step = spread(seconds)["median"] / steps
            kv = kv_bytes_per_step(lm.model.config, _kv_positions(decode, len(prompt_ids), new_tokens), batch,
                                   _value_bytes(lm.dtype))
            achieved = (wbytes + kv) / per_step / 1e9
            rows.append({"method": name, "weight_format": weight_format(name), "batch": batch,
                         "tokens_per_s": rate["median"], "tokens_per_s_min": rate["min"],
                         "tokens_per_s_max": rate["max"], "runs": rate["n"], "weight_bytes": wbytes,
                         "kv_bytes_per_step": kv, "weights_gbps": wbytes / per_step / 1e9,
                         "achieved_gbps": achieved, "pct_of_peak": 100 * achieved / peak})
        if model is not lm.model:
            del model
            gc.collect()
    note(1.0, "Done")
    return SweepReport(RunInfo.from_model(lm), peak, rows, new_tokens, decode.name, decode.note, source)
