"""The live demo's public face: the pages, the CLI and the benchmark use only this module.

One call per technique (run_quantization, run_compression, run_compression_eval, run_speculative), each returning
a typed report (live_demo.reports) whose `record(history)` writes its run-history rows; the lists the page offers
(quantization methods, drafters, compression presets, prompts); model loading; and the process-wide run gate.
Importing it stays cheap: torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import gc
import json
import threading
from pathlib import Path

from live_demo import views
from live_demo.compression import PRESETS as COMPRESSION_PRESETS
from live_demo.compression import calibration_ids, load_qa_set  # noqa: F401  (calibration_ids re-exported)
from live_demo.decoding import (
    MAX_NEW_TOKENS,
    chat_prompt_ids,
    check_new_tokens,
    decode_perplexity,
    encode_text,
    eos_ids,
    median_run,
    plain_decode,
)
from live_demo.errors import (
    RECOVERABLE_ERRORS,
    BadInputError,
    BusyError,
    EmptyPromptError,
    LiveDemoError,
    ModelLoadError,
    RunCancelled,
    TokenizerMismatchError,
    check_int,
    check_text,
)
from live_demo.models import (
    DEVICES,
    apply_live_threads,
    check_same_tokenizer,
    live_threads,
    load_draft,
    load_model,
    model_summary,
    usable_cores,
)
from live_demo.quantization import GRANULARITIES
from live_demo.quantization_names import weight_format  # noqa: F401  (re-exported)
from live_demo.reports import (
    CompressionEvalReport,
    CompressionReport,
    QuantizationReport,
    RunInfo,
    SpeculativeReport,
    SweepReport,
    short_dtype,  # noqa: F401  (re-exported)
)
from live_demo.runner import GATE, background_priority
from live_demo.speculative import DRAFT_FREE, DRAFTERS
from live_demo.sweep import BATCHES

__all__ = [  # the public face: what pages, the CLI and the benchmark may use
    "BadInputError", "BusyError", "COMPRESSION_PRESETS", "COPY_HEAVY", "CompressionEvalReport", "CompressionReport",
    "DEVICES", "DRAFTERS", "DRAFT_FREE", "EmptyPromptError", "GATE", "LiveDemoError", "ModelLoadError",
    "QuantizationReport", "RECOVERABLE_ERRORS", "RunCancelled", "SPEC_PROMPTS", "SPEC_PROMPT_NOTES",
    "SpeculativeReport", "TokenizerMismatchError", "absmax_explainer", "apply_live_threads", "background_priority",
    "benchmark_facts", "calibration_ids", "check_same_tokenizer", "draft_free_speedup", "drafter_params",
    "eval_ids", "linear_layer_names", "load_draft", "load_model", "load_qa_set", "model_summary", "prompt_suits",
    "quantization_methods", "run_compression", "run_compression_eval", "run_quantization", "run_speculative",
    "short_dtype", "views", "weight_format", "GRANULARITIES", "run_sweep", "SweepReport", "BATCHES", "decode_path_note",
    "live_threads", "usable_cores",

]

DATA_DIR = Path(__file__).resolve().parent / "data"
BENCH_RESULTS = Path(__file__).resolve().parents[1] / "docs" / "bench_results" / "live_demo_cpu_full.json"
QUANT_PROMPT = "Explain in two sentences why the sky is blue."
# The first prompt is the page's default: it is copy-heavy, so the default drafter (prompt lookup) shows the
# technique working (0% acceptance on the open-ended chat prompt was the page's first impression before).
SPEC_PROMPTS = {
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
    "chat": "Write a short story about a robot who learns to paint.",
}
COPY_HEAVY = ("code-copy",)
# Which drafters each preset prompt suits, and why (shown on the page next to the prompt). The early-exit draft is
# the target's first layers with no training, so it suits none (acceptance 0.006 on the H200, docs/BENCHMARKS.md).
SPEC_PROMPT_NOTES = {
    "code-copy": (("prompt-lookup", "int8-self", "draft-model"),
                  "The answer copies the prompt, so prompt lookup finds most next tokens in it."),
    "summary": (("prompt-lookup", "int8-self", "draft-model"),
                "A summary reuses phrases of the paragraph: prompt lookup finds some of them."),
    "chat": (("int8-self", "draft-model"),
             "Open-ended text copies little from the prompt, so prompt lookup has little to propose; a drafter "
             "that is a trained model (int8 self-draft, a draft model) suits it."),
}


def prompt_suits(preset: str | None, drafter: str) -> str:
    """One sentence on whether the preset prompt suits the drafter ("" for a typed prompt or unknown preset)."""
    if preset not in SPEC_PROMPT_NOTES:
        return ""
    suited, why = SPEC_PROMPT_NOTES[preset]
    extra = " The early-exit draft is untrained, so it suits no prompt here." if drafter == "early-exit" else ""
    return f"This prompt {'suits' if drafter in suited else 'does not suit'} {drafter}. {why}{extra}"


def quantization_methods(device: str) -> list[str]:
    """The quantization methods offered on `device` ("cpu" or "cuda") with the installed libraries."""
    from live_demo.quantization import available_methods

    return available_methods(device)




def benchmark_facts(path: Path | None = None) -> dict:
    """Figures the page quotes, read from the committed CPU benchmark JSON ({} when it is absent or unreadable).

    Keys: prompt_lookup_copy_speedup and int8_self_speedup (tokens/s over plain decoding, the copy-heavy prompt
    and the mean over prompts), device (where they were measured).
    """
    try:
        data = json.loads((path or BENCH_RESULTS).read_text())
        drafters = data["speculative"]["drafters"]
        lookup = drafters["prompt-lookup"]["per_prompt"]["code-copy"]
        int8 = drafters["int8-self"]
        return {"prompt_lookup_copy_speedup": lookup["tokens_per_s"] / lookup["plain_tokens_per_s"],
                "int8_self_speedup": int8["tokens_per_s"] / int8["plain_tokens_per_s"],
                "device": data["model"]["device_name"]}
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return {}


def eval_text() -> str:
    return (DATA_DIR / "eval_text.txt").read_text()


def eval_ids(tokenizer, max_tokens: int = 512) -> list[int]:
    return encode_text(tokenizer, eval_text())[:max_tokens]




# ---------------------------------------------------------------- quantization

def run_quantization(lm, methods: list[str], eval_tokens: int = 512, max_new_tokens: int = 32,
                     prompt: str = QUANT_PROMPT, stop_event: threading.Event | None = None,
                     progress=None, repeats: int = 3, keep_going: bool = False,
                     decode_ppl: bool = False, source: str = "page") -> QuantizationReport:
    """Baseline plus each method: bytes, per-layer error, perplexity, decode tokens/s and the greedy answer.

    Decode speed is the median of `repeats` timed runs, with the min and max beside it. progress(fraction,
    message) moves method by method and token by token. keep_going=True (the benchmark) records a method that
    fails on this machine as {"error": ...} and goes on with the next one; the page leaves it False so the user
    sees the failure for the method they picked. decode_ppl=True adds `decode_perplexity` (one token per call,
    see decoding.decode_perplexity) for the baseline and the dynamic-activation methods, whose error depends on
    how many tokens share a call. Raises BadInputError for a bad count or method list, ValueError for an unknown
    method.
    """
    from live_demo.quantization import (
        QuantMethod,
        measure_model,
        per_layer_error,
        quantize_copy,
        weight_bytes,
    )

    check_new_tokens(max_new_tokens)
    check_int("repeats", repeats, 1, 20)
    check_int("eval_tokens", eval_tokens, 2, 4096)
    if isinstance(methods, str):
        raise BadInputError("methods must be a list of method names, e.g. ['int8-weight-only']")
    specs = {m: QuantMethod.from_name(m) for m in methods}
    ids = eval_ids(lm.tokenizer, eval_tokens)
    prompt_ids = chat_prompt_ids(lm.tokenizer, prompt)
    note = progress or (lambda f, m: None)
    steps = len(methods) + 1

    def tokens(step: int, label: str):
        done = [0]  # tokens over all timed runs of this step

        def on_token(i: int, n: int) -> None:
            done[0] += 1
            note((step + min(done[0] / (n * repeats), 1.0)) / steps, f"{label}: token {i} of {n}")
        return on_token

    base_name = short_dtype(lm.dtype)
    note(0.0, f"Measuring the {lm.dtype} baseline")
    baseline = {"method": base_name, **measure_model(lm.model, lm.tokenizer, ids, prompt_ids, max_new_tokens,
                                                     stop_event, repeats, tokens(0, f"{base_name} baseline"))}
    if decode_ppl and any(s.kind.startswith("dynamic") for s in specs.values()):
        note(0.0, "Decode perplexity of the baseline (one token per call)")
        baseline["decode_perplexity"] = decode_perplexity(lm.model, ids, stop_event)
    half = quantize_copy(lm.model, "fp16") if lm.dtype == "float32" else lm.model
    fp16 = weight_bytes(half)
    del half
    gc.collect()
    results = {}
    calibration = calibration_ids(lm.tokenizer)  # tokenized once, not once per method
    for n, method in enumerate(methods):
        note((n + 1) / steps, f"Quantizing a copy: {method}")
        try:
            qmodel = quantize_copy(lm.model, method, calibration)
            metrics = measure_model(qmodel, lm.tokenizer, ids, prompt_ids, max_new_tokens, stop_event, repeats,
                                    tokens(n + 1, method))
            metrics["per_layer_error"] = per_layer_error(lm.model, qmodel)
            if decode_ppl and specs[method].kind.startswith("dynamic"):
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
    formats = {base_name: weight_format(base_name)} | {m: s.weight_format for m, s in specs.items()}
    return QuantizationReport(RunInfo.from_model(lm), baseline, fp16, results, formats, len(ids), max_new_tokens,
                              source)




def absmax_explainer(lm, layer: str, bits: int, granularity: str, group_size: int = 32) -> dict:
    """Survey Eq. (1) applied to one real weight matrix of the loaded model (see quantization.explain_absmax)."""
    from live_demo.quantization import explain_absmax

    try:
        weight = lm.model.get_submodule(layer).weight
    except AttributeError as exc:
        raise ValueError(f"Layer {layer!r} not found in {lm.model_id}") from exc
    return explain_absmax(weight, bits, granularity, group_size)


def linear_layer_names(lm) -> list[str]:
    """Names of the transformer-block Linear layers of the loaded model, in model order."""
    from live_demo.quantization import linear_names

    return linear_names(lm.model)


# ---------------------------------------------------------------- prompt compression

def run_compression(lm, context: str, question: str, instruction: str, method: str, ratio: float,
                    reference_answer: str | None = None, stop_event: threading.Event | None = None,
                    item_id: str | None = None, source: str = "page") -> CompressionReport:
    """Compress one prompt and measure prefill time (and answer quality when a reference is given).

    context, question, instruction: one text each (a list raises BadInputError); method: one of
    COMPRESSION_PRESETS; ratio: 1-20 (prompt tokens before / after).
    """
    from live_demo.compression import CompressionSettings, compress
    from live_demo.qa_eval import answer_score, prompt_parts

    settings = CompressionSettings.from_name(method, ratio)
    result = compress(lm.model, lm.tokenizer, context, question, instruction, settings, stop_event=stop_event)
    before, after = prompt_parts(lm.tokenizer, instruction, question)
    answer_ids = encode_text(lm.tokenizer, check_text("reference answer", reference_answer or " ")) or [0]
    answer_score(lm.model, before + result.context_ids + after, answer_ids)  # warm-up
    full_q, full_s = answer_score(lm.model, before + result.context_ids + after, answer_ids)
    comp_q, comp_s = answer_score(lm.model, before + result.kept_ids + after, answer_ids)
    report = CompressionReport(RunInfo.from_model(lm), result, method, ratio, result.compressed_context(lm.tokenizer),
                               full_s, comp_s, item_id=item_id, source=source)
    if reference_answer:
        report.answer_prob_full, report.answer_prob_compressed = full_q, comp_q
        report.quality_kept = comp_q / full_q if full_q > 0 else 0.0
    return report


def run_compression_eval(lm, ratio: float = 2.0, limit: int | None = None, with_llmlingua: bool = True,
                         methods: tuple = ("ours", "lingua", "selective-word", "random"), generate: bool = False,
                         stop_event: threading.Event | None = None, progress=None, qa: dict | None = None,
                         source: str = "page") -> CompressionEvalReport:
    """Quality kept over a QA set (default: the shipped one) for our methods, random drop and llmlingua.

    llmlingua joins when installed and with_llmlingua is True. qa: a QA set as load_qa_set returns it.
    """
    from live_demo.llmlingua_peer import LLMLinguaPeer, llmlingua_available
    from live_demo.qa_eval import evaluate

    if limit is not None:
        check_int("limit", limit, 1)
    methods = list(methods)
    peer = None
    if with_llmlingua and llmlingua_available():
        peer = LLMLinguaPeer(lm.model, lm.tokenizer)
        methods.append("llmlingua")
    out = evaluate(lm.model, lm.tokenizer, methods, ratio, limit=limit, generate=generate, peer=peer,
                   stop_event=stop_event, progress=progress, qa=qa)
    return CompressionEvalReport(RunInfo.from_model(lm), ratio, out["methods"], out["examples"], source)


# ---------------------------------------------------------------- speculative decoding

def run_speculative(lm, prompt: str, drafter_name: str, draft_len: int = 4, max_new_tokens: int = 64,
                    temperature: float = 0.0, draft_lm=None, early_exit_layers: int | None = None,
                    compare: bool = True, seed: int = 0, repeats: int = 1,
                    stop_event: threading.Event | None = None, progress=None,
                    source: str = "page") -> SpeculativeReport:
    """Our draft-and-verify loop, plus plain decoding and transformers' own generate for comparison.

    Each timing is taken `repeats` times, interleaved; the report gives the median and the min-max.
    progress(fraction, message) moves token by token. A draft_lm with another tokenizer raises
    TokenizerMismatchError; a list prompt, a bool count or early_exit_layers=0 raise BadInputError.
    """
    from live_demo.fastpath import compile_seconds
    from live_demo.speculative import SpecConfig, build_drafter, hf_generate, speculative_decode

    check_new_tokens(max_new_tokens, MAX_NEW_TOKENS)
    check_int("repeats", repeats, 1, 20)
    config = SpecConfig(draft_len=draft_len, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    if draft_lm is not None:
        check_same_tokenizer(lm.tokenizer, draft_lm.tokenizer, lm.model_id, draft_lm.model_id)
    prompt_ids = chat_prompt_ids(lm.tokenizer, prompt)
    stops = eos_ids(lm.tokenizer, lm.model)
    drafter = build_drafter(drafter_name, lm.model, draft_lm.model if draft_lm else None, early_exit_layers)
    note = progress or (lambda f, m: None)
    plain_decode(lm.model, prompt_ids, 2, stops)  # warm-up
    runs: dict[str, list] = {"speculative": [], "plain": [], "transformers": []}
    for r in range(repeats):
        def on_token(i, n, r=r):
            note((r + i / n) / repeats, f"Speculative decoding: token {i} of {n}")
        runs["speculative"].append(speculative_decode(lm.model, drafter, prompt_ids, config, stops, stop_event,
                                                      on_token))
        if compare:
            runs["plain"].append(plain_decode(lm.model, prompt_ids, max_new_tokens, stops, stop_event, temperature,
                                              seed))
    spec, spec_rate = median_run(runs["speculative"])
    report = SpeculativeReport(RunInfo.from_model(lm), drafter_name, draft_len, temperature, spec,
                               [lm.tokenizer.decode([t]) for t in spec.new_ids],
                               lm.tokenizer.decode(spec.new_ids, skip_special_tokens=True),
                               drafter_params(lm, drafter_name, draft_lm, early_exit_layers), prompt_ids,
                               timings={"speculative": spec_rate}, source=source,
                               decode_path=spec.extra.get("decode_path", "eager"))
    report.decode_note = spec.extra.get("decode_note", "")
    if compile_seconds(lm.model):
        report.decode_note += f"{'; ' if report.decode_note else ''}compiled shapes took " \
                              f"{compile_seconds(lm.model):.1f} s on first use, reused by later runs"
    if not compare:
        return report
    plain, plain_rate = median_run(runs["plain"])
    report.plain_tokens_per_s = plain_rate["median"]
    report.timings["plain"] = plain_rate
    report.identical_to_greedy = spec.new_ids == plain.new_ids if temperature == 0 else None
    if temperature == 0:
        note(1.0, "transformers' generate for comparison")
        for _ in range(repeats):
            if drafter_name in DRAFT_FREE:
                runs["transformers"].append(hf_generate(lm.model, prompt_ids, len(spec.new_ids), lookup_k=draft_len))
            else:
                runs["transformers"].append(hf_generate(lm.model, prompt_ids, len(spec.new_ids),
                                                        assistant=drafter.model, draft_len=draft_len))
        _, hf_rate = median_run(runs["transformers"])
        report.transformers_tokens_per_s = hf_rate["median"]
        report.timings["transformers"] = hf_rate
    return report


def drafter_params(lm, drafter_name: str, draft_lm=None, early_exit_layers: int | None = None) -> int:
    """Parameters (fp16-equivalent) a drafter reads per proposal; 0 for prompt lookup, which reads no weights.

    The int8 self-draft reads the target's parameters at half the bytes, i.e. half the fp16-equivalent params.
    The early-exit draft reads the embedding table plus its share of the blocks.
    """
    from live_demo.speculative import default_early_exit_layers

    if drafter_name in DRAFT_FREE:
        return 0
    if drafter_name == "draft-model" and draft_lm is not None:
        return draft_lm.num_params
    if drafter_name == "early-exit":
        cfg = lm.model.config
        layers = default_early_exit_layers(lm.model) if early_exit_layers is None else early_exit_layers
        embed = cfg.vocab_size * cfg.hidden_size
        return int(embed + (lm.num_params - embed) * layers / cfg.num_hidden_layers)
    return lm.num_params // 2


def draft_free_speedup(target_step_ms: float, verify_step_ms: float, tokens_per_target_call: float) -> dict:
    """Projected speedup of a drafter that reads no weights (prompt lookup), from two decode-step times.

    Each target pass verifies k+1 tokens at cost verify_step_ms (for a memory-bound decode about the cost of a
    batch of k+1, which the recommender's `decode_ms_per_token(..., batch=k+1)` estimates) and yields
    tokens_per_target_call tokens on average (measured); plain decoding yields one per target_step_ms.
    speedup = tokens_per_target_call x target_step_ms / verify_step_ms. The drafter's own cost (a search in the
    token history) is taken as zero. Raises BadInputError for non-positive inputs.
    """
    for name, value in (("target step", target_step_ms), ("verify step", verify_step_ms),
                        ("tokens per target call", tokens_per_target_call)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise BadInputError(f"{name} must be a positive number, got {value!r}")
    per_token = verify_step_ms / tokens_per_target_call
    return {"speedup": target_step_ms / per_token, "spec_ms_per_token": per_token,
            "target_ms_per_token": target_step_ms}


# ---------------------------------------------------------------- batch sweep and decode paths

def run_sweep(lm, methods: list[str], batches: tuple = BATCHES, new_tokens: int = 32, repeats: int = 3,
              stop_event: threading.Event | None = None, progress=None, source: str = "page") -> SweepReport:
    """Decode tokens/s against batch size for the baseline ("baseline") and quantized copies; see live_demo.sweep."""
    from live_demo.sweep import decode_sweep

    return decode_sweep(lm, methods, tuple(batches), new_tokens, repeats, stop_event=stop_event, progress=progress,
                        source=source)


def decode_path_note(device: str) -> str:
    """Which decode path runs on `device` and why (shown on the page)."""
    from live_demo.fastpath import choose_path

    path = choose_path(device)
    return f"Decode path: {path.name}" + (f" ({path.note})" if path.note else "")


