"""One call per technique, returning plain data. Used by the page, the CLI benchmark and the tests."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from live_demo.decoding import (
    MAX_NEW_TOKENS,
    chat_prompt_ids,
    check_new_tokens,
    decode_perplexity,
    eos_ids,
    plain_decode,
)
from live_demo.errors import RECOVERABLE_ERRORS, RunCancelled

DATA_DIR = Path(__file__).resolve().parent / "data"
QUANT_PROMPT = "Explain in two sentences why the sky is blue."
SPEC_PROMPTS = {
    "chat": "Write a short story about a robot who learns to paint.",
    "code-copy": (
        "Repeat the following code exactly, then stop:\n"
        "def add(a, b):\n    return a + b\n\n"
        "def subtract(a, b):\n    return a - b\n\n"
        "def multiply(a, b):\n    return a * b\n\n"
        "def divide(a, b):\n    if b == 0:\n        raise ValueError('division by zero')\n    return a / b\n"
    ),
    "summary": (
        "Summarise this paragraph in one sentence: The lighthouse on the northern cape was built from local "
        "granite in the middle of the nineteenth century. For more than a hundred years a keeper and his family "
        "lived in the small stone house beside the tower, and every evening the keeper climbed the stairs to "
        "light the lamp."
    ),
}
COPY_HEAVY = ("code-copy",)


def eval_text() -> str:
    return (DATA_DIR / "eval_text.txt").read_text()


def eval_ids(tokenizer, max_tokens: int = 512) -> list[int]:
    return tokenizer.encode(eval_text(), add_special_tokens=False)[:max_tokens]


def calibration_ids(tokenizer) -> list[list[int]]:
    """Token ids of the 24 QA contexts: int8-dynamic-outlier's calibration text, disjoint from the eval text."""
    from live_demo.compression import load_qa_set

    return [tokenizer.encode(item["context"], add_special_tokens=False) for item in load_qa_set()["items"]]


# ---------------------------------------------------------------- quantization

def run_quantization(lm, methods: list[str], eval_tokens: int = 512, max_new_tokens: int = 32,
                     prompt: str = QUANT_PROMPT, stop_event: threading.Event | None = None,
                     progress=None, repeats: int = 1, keep_going: bool = False,
                     decode_ppl: bool = False) -> dict:
    """Baseline plus each method: bytes, per-layer error, perplexity, decode tokens/s and the greedy answer.

    keep_going=True (the benchmark) records a method that fails on this machine as {"error": ...} and goes on
    with the next one; the page leaves it False so the user sees the failure for the method they picked.
    decode_ppl=True adds `decode_perplexity` (one token per call, see decoding.decode_perplexity) for the
    baseline and the dynamic-activation methods, whose error depends on how many tokens share a call.
    """
    from live_demo.quantization import (
        QuantMethod,
        measure_model,
        per_layer_error,
        quantize_copy,
        weight_bytes,
    )

    check_new_tokens(max_new_tokens)
    for method in methods:
        QuantMethod.from_name(method)
    ids = eval_ids(lm.tokenizer, eval_tokens)
    prompt_ids = chat_prompt_ids(lm.tokenizer, prompt)
    note = progress or (lambda f, m: None)
    note(0.0, f"Measuring the {lm.dtype} baseline")
    baseline = {"method": short_dtype(lm.dtype), **measure_model(lm.model, lm.tokenizer, ids, prompt_ids, max_new_tokens,
                                                    stop_event, repeats)}
    if decode_ppl and any(QuantMethod.from_name(m).kind.startswith("dynamic") for m in methods):
        note(0.0, "Decode perplexity of the baseline (one token per call)")
        baseline["decode_perplexity"] = decode_perplexity(lm.model, ids, stop_event)
    half = quantize_copy(lm.model, "fp16") if lm.dtype == "float32" else lm.model
    fp16 = weight_bytes(half)
    del half
    gc.collect()
    results = {}
    calibration = calibration_ids(lm.tokenizer)  # tokenized once, not once per method
    for n, method in enumerate(methods):
        note((n + 1) / (len(methods) + 1), f"Quantizing a copy: {method}")
        try:
            qmodel = quantize_copy(lm.model, method, calibration)
            metrics = measure_model(qmodel, lm.tokenizer, ids, prompt_ids, max_new_tokens, stop_event, repeats)
            metrics["per_layer_error"] = per_layer_error(lm.model, qmodel)
            if decode_ppl and QuantMethod.from_name(method).kind.startswith("dynamic"):
                metrics["decode_perplexity"] = decode_perplexity(qmodel, ids, stop_event)
                metrics["decode_perplexity_change"] = metrics["decode_perplexity"] / baseline["decode_perplexity"] - 1
        except RECOVERABLE_ERRORS as exc:
            if not keep_going or isinstance(exc, RunCancelled):
                raise
            results[method] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        metrics["perplexity_change"] = metrics["perplexity"] / baseline["perplexity"] - 1
        metrics["speedup_vs_baseline"] = metrics["decode_tokens_per_s"] / baseline["decode_tokens_per_s"]
        metrics["linear_bytes_vs_fp16"] = metrics["linear_weight_bytes"] / fp16["linear_weight_bytes"]
        results[method] = metrics
        del qmodel
        gc.collect()   # a quantized copy holds reference cycles; free it before the next one (~100 MB each)
    note(1.0, "Done")
    return {"baseline": baseline, "fp16": fp16, "methods": results, "eval_tokens": len(ids),
            "max_new_tokens": max_new_tokens, "num_params": lm.num_params}


def short_dtype(dtype: str) -> str:
    """float32 -> fp32, float16 -> fp16, bfloat16 -> bf16 (the names used in the run history)."""
    return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(dtype, dtype)


def absmax_explainer(lm, layer: str, bits: int, granularity: str, group_size: int = 32) -> dict:
    """Survey Eq. (1) applied to one real weight matrix of the loaded model."""
    from live_demo.quantization import explain_absmax

    try:
        weight = lm.model.get_submodule(layer).weight
    except AttributeError as exc:
        raise ValueError(f"Layer {layer!r} not found in {lm.model_id}") from exc
    return explain_absmax(weight, bits, granularity, group_size)


def linear_layer_names(lm) -> list[str]:
    from live_demo.quantization import _linear_names

    return _linear_names(lm.model)


# ---------------------------------------------------------------- prompt compression

def run_compression(lm, context: str, question: str, instruction: str, method: str, ratio: float,
                    reference_answer: str | None = None, stop_event: threading.Event | None = None) -> dict:
    """Compress one prompt and measure prefill time (and answer quality when a reference is given)."""
    from live_demo.compression import CompressionSettings, compress
    from live_demo.qa_eval import answer_score, prompt_parts

    settings = CompressionSettings.from_name(method, ratio)
    result = compress(lm.model, lm.tokenizer, context, question, instruction, settings, stop_event=stop_event)
    before, after = prompt_parts(lm.tokenizer, instruction, question)
    answer_ids = lm.tokenizer.encode(reference_answer or " ", add_special_tokens=False) or [0]
    answer_score(lm.model, before + result.context_ids + after, answer_ids)  # warm-up
    full_q, full_s = answer_score(lm.model, before + result.context_ids + after, answer_ids)
    comp_q, comp_s = answer_score(lm.model, before + result.kept_ids + after, answer_ids)
    out = {"result": result, **result.as_dict(), "prefill_seconds_full": full_s,
           "prefill_seconds_compressed": comp_s, "compressed_context": result.compressed_context(lm.tokenizer)}
    if reference_answer:
        out.update({"answer_prob_full": full_q, "answer_prob_compressed": comp_q,
                    "quality_kept": comp_q / full_q if full_q > 0 else 0.0})
    return out


def run_compression_eval(lm, ratio: float = 2.0, limit: int | None = None, with_llmlingua: bool = True,
                         methods: tuple = ("ours", "lingua", "selective-word", "random"), generate: bool = False,
                         stop_event: threading.Event | None = None, progress=None) -> dict:
    """Quality kept over the QA set for our methods, random drop and (when installed) llmlingua."""
    from live_demo.llmlingua_peer import LLMLinguaPeer, llmlingua_available
    from live_demo.qa_eval import evaluate

    methods = list(methods)
    peer = None
    if with_llmlingua and llmlingua_available():
        peer = LLMLinguaPeer(lm.model, lm.tokenizer)
        methods.append("llmlingua")
    out = evaluate(lm.model, lm.tokenizer, methods, ratio, limit=limit, generate=generate, peer=peer,
                   stop_event=stop_event, progress=progress)
    return out


# ---------------------------------------------------------------- speculative decoding

def run_speculative(lm, prompt: str, drafter_name: str, draft_len: int = 4, max_new_tokens: int = 64,
                    temperature: float = 0.0, draft_lm=None, early_exit_layers: int | None = None,
                    compare: bool = True, seed: int = 0, repeats: int = 1,
                    stop_event: threading.Event | None = None) -> dict:
    """Our draft-and-verify loop, plus plain decoding and transformers' assisted generation for comparison.

    With repeats > 1 each timing is taken that many times, interleaved, and the fastest run is reported.
    """
    from live_demo.speculative import SpecConfig, build_drafter, hf_generate, speculative_decode

    check_new_tokens(max_new_tokens, MAX_NEW_TOKENS)
    config = SpecConfig(draft_len=draft_len, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    prompt_ids = chat_prompt_ids(lm.tokenizer, prompt)
    stops = eos_ids(lm.tokenizer, lm.model)
    drafter = build_drafter(drafter_name, lm.model, draft_lm.model if draft_lm else None, early_exit_layers)
    plain_decode(lm.model, prompt_ids, 2, stops)  # warm-up
    spec = _fastest(lambda: speculative_decode(lm.model, drafter, prompt_ids, config, stops, stop_event), repeats)
    out = {"spec": spec, "stats": spec.stats(), "drafter": drafter_name, "draft_len": draft_len,
           "temperature": temperature, "tokens": [lm.tokenizer.decode([t]) for t in spec.new_ids],
           "text": lm.tokenizer.decode(spec.new_ids, skip_special_tokens=True)}
    if not compare:
        return out
    plain = _fastest(lambda: plain_decode(lm.model, prompt_ids, max_new_tokens, stops, stop_event, temperature,
                                          seed), repeats)
    out["plain_tokens_per_s"] = plain.tokens_per_s
    out["identical_to_greedy"] = spec.new_ids == plain.new_ids if temperature == 0 else None
    if temperature == 0:
        if drafter_name == "prompt-lookup":
            hf = _fastest(lambda: hf_generate(lm.model, prompt_ids, len(spec.new_ids), lookup_k=draft_len), repeats)
        else:
            hf = _fastest(lambda: hf_generate(lm.model, prompt_ids, len(spec.new_ids), assistant=drafter.model,
                                              draft_len=draft_len), repeats)
        out["transformers_assisted_tokens_per_s"] = hf.tokens_per_s
    return out


def _fastest(run, repeats: int):
    """The run with the highest tokens/s out of `repeats` (wall-clock noise on a shared CPU is one-sided)."""
    best = run()
    for _ in range(max(repeats, 1) - 1):
        again = run()
        if again.tokens_per_s > best.tokens_per_s:
            best = again
    return best


def project_on_gpu(gpu_id: str, target_params: int, draft_params: int, acceptance_rate: float,
                   draft_len: int) -> dict:
    """Projected GPU speedup from the measured acceptance, via the recommender's cost model (a projection)."""
    from recommender.api import project_speculative_speedup

    return project_speculative_speedup(gpu_id, target_params / 1e9, draft_params / 1e9, acceptance_rate,
                                       draft_len, weights="fp16")


def drafter_params(lm, drafter_name: str, draft_lm=None, early_exit_layers: int | None = None) -> int:
    """fp16-equivalent parameters a drafter reads per token, for the GPU projection.

    Prompt lookup reads no weights; it is given the projection's floor of 1M so the cost model stays defined.
    The int8 self-draft reads the target's parameters at half the bytes, i.e. half the fp16-equivalent params.
    """
    floor = 1_000_000  # recommender.api: draft size >= 0.001 B params
    if drafter_name == "prompt-lookup":
        return floor
    if drafter_name == "draft-model" and draft_lm is not None:
        return max(floor, draft_lm.num_params)
    if drafter_name == "early-exit":
        cfg = lm.model.config
        layers = early_exit_layers or max(1, cfg.num_hidden_layers // 4)
        embed = cfg.vocab_size * cfg.hidden_size
        return max(floor, int(embed + (lm.num_params - embed) * layers / cfg.num_hidden_layers))
    return max(floor, lm.num_params // 2)


def history_metrics_quant(result: dict, method: str) -> dict:
    """The metrics a quantization history row stores (the recommender's calibration reads these keys)."""
    row = result["baseline"] if method == "baseline" else result["methods"][method]
    return {k: row[k] for k in ("decode_tokens_per_s", "weight_bytes", "perplexity", "linear_weight_bytes")} | {
        "num_params": result["num_params"]}
