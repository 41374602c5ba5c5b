"""Quality kept by prompt compression, measured on the project's QA set.

For each item the small LM scores the reference answer after the full prompt and after the compressed one.
Per-item quality = exp(mean log p(answer tokens | prompt)), the geometric-mean probability of the answer.
quality_kept = sum(quality compressed) / sum(quality full). Optionally, greedy answers are generated and scored
by token F1 against the reference (SQuAD-style).
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

from live_demo.compression import CompressionSettings, compress, load_qa_set
from live_demo.decoding import (
    chat_template_parts,
    encode_markup,
    encode_text,
    eos_ids,
    oom_guard,
    plain_decode,
    synchronize,
)
from live_demo.errors import RunCancelled

SPLITS = ("all", "dev", "held-out")


def qa_split(item_id: str) -> str:
    """Fixed tuning split: odd-numbered items (q01, q03, ...) are "dev", even-numbered ones "held-out"."""
    digits = re.sub(r"\D", "", item_id)
    return "dev" if digits and int(digits) % 2 else "held-out"


def prompt_parts(tokenizer, instruction: str, question: str) -> tuple[list[int], list[int]]:
    """Token ids before and after the context, using the chat template when the tokenizer has one.

    The template's own text is encoded with its special tokens; the instruction and the question, which may come
    from a user's QA file, are encoded as plain text (decoding.encode_text).
    """
    parts = chat_template_parts(tokenizer)
    head, tail = parts if parts is not None else ("", "\nAnswer:")
    before = encode_markup(tokenizer, head) + encode_text(tokenizer, f"{instruction}\n\nContext: ")
    after = encode_text(tokenizer, f"\n\nQuestion: {question}")
    after += encode_markup(tokenizer, tail) if parts is not None else encode_text(tokenizer, tail)
    return before, after


def answer_score(model, prompt_ids: list[int], answer_ids: list[int]) -> tuple[float, float]:
    """(geometric-mean probability of the answer tokens, seconds of the forward pass)."""
    import torch

    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids + answer_ids], device=device)
    with torch.inference_mode(), oom_guard():
        synchronize(device.type)
        start = time.perf_counter()
        logits = model(input_ids=ids, use_cache=False).logits[0]
        synchronize(device.type)
        seconds = time.perf_counter() - start
    n = len(answer_ids)
    logp = torch.log_softmax(logits[-n - 1:-1].float(), dim=-1)
    mean_logp = logp.gather(-1, ids[0, -n:].unsqueeze(-1)).mean()
    return float(torch.exp(mean_logp)), seconds


def _normalize(text: str) -> list[str]:
    text = re.sub(r"\b(a|an|the)\b", " ", re.sub(r"[^\w\s]", " ", text.lower()))
    return text.split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style bag-of-words F1 between a predicted and a reference answer."""
    pred, ref = _normalize(prediction), _normalize(reference)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def evaluate(model, tokenizer, methods: list[str], ratio: float = 2.0, limit: int | None = None,
             generate: bool = False, max_answer_tokens: int = 12, peer=None,
             stop_event: threading.Event | None = None, progress=None, split: str = "all", qa: dict | None = None,
             ) -> dict:
    """Per method: achieved ratio, quality_kept, compression seconds, prefill seconds saved (and F1 if generate).

    `methods` are CompressionSettings presets ("ours", "lingua", "selective-word", "random", ...) or "llmlingua"
    (needs `peer`, an LLMLinguaPeer). `split` restricts the items to the dev or held-out half (see qa_split).
    `qa` is a QA set as load_qa_set returns it (default: the project's).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    qa = qa or load_qa_set()
    items = [i for i in qa["items"] if split == "all" or qa_split(i["id"]) == split]
    items = items[:limit] if limit else items
    instruction = qa["instruction"]
    stops = eos_ids(tokenizer, model)
    totals = {m: {"quality": 0.0, "full_quality": 0.0, "seconds": 0.0, "orig": 0, "comp": 0,
                  "prefill_full": 0.0, "prefill_comp": 0.0, "f1": 0.0, "f1_full": 0.0} for m in methods}
    examples = {}
    for n, item in enumerate(items):
        if stop_event is not None and stop_event.is_set():
            raise RunCancelled("Stopped by the user.")
        if progress:
            progress(n / len(items), f"QA item {n + 1}/{len(items)}")
        before, after = prompt_parts(tokenizer, instruction, item["question"])
        answer_ids = encode_text(tokenizer, item["answer"])
        context_ids = encode_text(tokenizer, item["context"])
        full_q, full_s = answer_score(model, before + context_ids + after, answer_ids)
        full_answer = _generate(model, tokenizer, before + context_ids + after, max_answer_tokens, stops) \
            if generate else ""
        for method in methods:
            if method == "llmlingua":
                kept_ids, secs, other = peer.compress_ids(item["context"], instruction, item["question"], ratio)
            else:
                res = compress(model, tokenizer, item["context"], item["question"], instruction,
                               CompressionSettings.from_name(method, ratio), stop_event=stop_event)
                kept_ids, secs, other = res.kept_ids, res.seconds, res.other_tokens
                examples.setdefault(method, res)
            q, s = answer_score(model, before + kept_ids + after, answer_ids)
            t = totals[method]
            t["quality"] += q
            t["full_quality"] += full_q
            t["seconds"] += secs
            t["orig"] += len(context_ids) + other
            t["comp"] += len(kept_ids) + other
            t["prefill_full"] += full_s
            t["prefill_comp"] += s
            if generate:
                t["f1"] += token_f1(_generate(model, tokenizer, before + kept_ids + after, max_answer_tokens,
                                              stops), item["answer"])
                t["f1_full"] += token_f1(full_answer, item["answer"])
    out = {}
    for method, t in totals.items():
        row = {
            "ratio": t["orig"] / max(t["comp"], 1),
            "quality_kept": t["quality"] / t["full_quality"] if t["full_quality"] else 0.0,
            "seconds": t["seconds"] / len(items),
            "prefill_seconds_full": t["prefill_full"] / len(items),
            "prefill_seconds_compressed": t["prefill_comp"] / len(items),
            "answer_prob_full": t["full_quality"] / len(items),
            "answer_prob_compressed": t["quality"] / len(items),
            "items": len(items),
        }
        if generate:
            row["f1_full"] = t["f1_full"] / len(items)
            row["f1_compressed"] = t["f1"] / len(items)
            row["f1_kept"] = t["f1"] / t["f1_full"] if t["f1_full"] else 0.0
        out[method] = row
    return {"methods": out, "examples": examples}


def _generate(model, tokenizer, prompt_ids, max_new_tokens, stops) -> str:
    run = plain_decode(model, prompt_ids, max_new_tokens, stops)
    return tokenizer.decode(run.new_ids, skip_special_tokens=True)
