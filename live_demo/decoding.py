"""Plain decoding on the KV cache, prompt building and timing helpers shared by the three techniques."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field

from live_demo.errors import (
    EmptyPromptError,
    OutOfMemoryError,
    PromptTooLongError,
    RunCancelled,
    check_int,
    check_text,
)
from live_demo.fastpath import forward  # noqa: F401  (one forward pass; re-exported for compression)

MAX_PROMPT_TOKENS = 1024
MAX_NEW_TOKENS = 256


@dataclass
class DecodeResult:
    """Tokens produced by a decoding run plus its wall-clock cost."""

    prompt_len: int
    new_ids: list[int]
    seconds: float
    target_calls: int
    prefill_seconds: float = 0.0
    text: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        """New tokens per second of the whole run, prefill included."""
        return len(self.new_ids) / self.seconds if self.seconds > 0 else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens per second after the first one (the prompt forward pass excluded)."""
        decode_s = self.seconds - self.prefill_seconds
        return (len(self.new_ids) - 1) / decode_s if decode_s > 0 and len(self.new_ids) > 1 else 0.0


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so wall-clock timings measure the work and not the launch."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def check_new_tokens(max_new_tokens: int, cap: int = MAX_NEW_TOKENS) -> int:
    """max_new_tokens when it is a whole number (a bool is not) from 1 to `cap`; else BadInputError."""
    return check_int("max_new_tokens", max_new_tokens, 1, cap)


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of user text, as text: a typed `<|im_start|>` or `<|endoftext|>` stays characters.

    Special-token strings inside user text are not parsed into control tokens (split_special_tokens), so pasted
    text cannot forge a chat-turn boundary or an end of sequence.
    """
    return list(tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True))


def encode_markup(tokenizer, text: str) -> list[int]:
    """Token ids of the chat template's own text, whose special-token strings are real control tokens."""
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []


PLACEHOLDER = "\ue000USER\ue000"  # a private-use character: never part of a template or a typical text


def chat_template_parts(tokenizer) -> tuple[str, str] | None:
    """(template text before, after) the user message, or None when the tokenizer has no chat template."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    text = tokenizer.apply_chat_template([{"role": "user", "content": PLACEHOLDER}], tokenize=False,
                                         add_generation_prompt=True)
    before, _, after = text.partition(PLACEHOLDER)
    return before, after


def check_prompt(text: str, tokenizer, cap: int = MAX_PROMPT_TOKENS) -> list[int]:
    """Token ids of a user prompt, or a clear error for an empty, too-long or non-text (e.g. list) prompt."""
    if text is None:
        raise EmptyPromptError("The prompt is empty: type some text first.")
    check_text("prompt", text)
    if not text.strip():
        raise EmptyPromptError("The prompt is empty: type some text first.")
    ids = encode_text(tokenizer, text)
    if len(ids) > cap:
        raise PromptTooLongError(
            f"The prompt has {len(ids)} tokens; the cap is {cap}. Shorten it or raise the cap."
        )
    return ids


def chat_prompt_ids(tokenizer, user_text: str, cap: int = MAX_PROMPT_TOKENS) -> list[int]:
    """Wrap a user message in the model's chat template when it has one (SmolLM2-Instruct does).

    The template's text is encoded with its special tokens and the user's text as plain text (encode_text).
    """
    user_ids = check_prompt(user_text, tokenizer, cap)
    parts = chat_template_parts(tokenizer)
    ids = user_ids if parts is None else \
        encode_markup(tokenizer, parts[0]) + user_ids + encode_markup(tokenizer, parts[1])
    if len(ids) > cap:
        raise PromptTooLongError(f"The prompt has {len(ids)} tokens with the chat template; the cap is {cap}.")
    return ids


def new_cache(model):
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def crop_to(cache, length: int) -> None:
    """Keep the first `length` positions of a KV cache.

    DynamicCache: transformers 5.x crop() takes -tokens_to_remove. StaticCache: its layers write at a running
    position (cumulative_length); rewinding it in place keeps the tensors' addresses (CUDA graphs need that), and
    the causal mask hides the stale entries beyond it until they are overwritten.
    """
    from transformers import StaticCache

    if isinstance(cache, StaticCache):
        for layer in cache.layers:
            layer.cumulative_length.fill_(length)
        return
    remove = cache.get_seq_length() - length
    if remove > 0:
        cache.crop(-remove)


def eos_ids(tokenizer, model) -> set[int]:
    ids = set()
    for value in (getattr(tokenizer, "eos_token_id", None), getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


def plain_decode(
    model,
    prompt_ids: list[int],
    max_new_tokens: int,
    stop_ids: set[int] | None = None,
    stop_event: threading.Event | None = None,
    temperature: float = 0.0,
    seed: int = 0,
    on_token=None,
    path=None,
) -> DecodeResult:
    """Token-by-token decoding on the KV cache: greedy when temperature == 0, else sampling.

    on_token(i, max_new_tokens) is called after the i-th new token (progress reporting). path: a
    fastpath.DecodePath or its name; None = fastpath.choose_path (compiled on CUDA, eager on CPU). The result's
    extra holds "decode_path" and "decode_note" (e.g. why a compiled run fell back to eager).
    """
    from live_demo.fastpath import DecodePath, choose_path, run_with_fallback

    device = next(model.parameters()).device
    chosen = path if isinstance(path, DecodePath) else choose_path(device.type, path, model)
    return run_with_fallback(chosen, model, lambda p: _plain_decode(model, prompt_ids, max_new_tokens, stop_ids,
                                                                    stop_event, temperature, seed, on_token, p))


def _plain_decode(model, prompt_ids, max_new_tokens, stop_ids, stop_event, temperature, seed, on_token, path):
    import torch

    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    stop_ids = stop_ids or set()
    new_ids: list[int] = []
    synchronize(device.type)
    start = time.perf_counter()
    with torch.inference_mode(), oom_guard():
        cache = path.new_cache(model, len(prompt_ids) + max_new_tokens + 1)
        logits = path.step(model, torch.tensor([prompt_ids], device=device), cache, keep=1, prefill=True)[0, -1]
        synchronize(device.type)
        prefill_s = time.perf_counter() - start
        calls = 1
        while len(new_ids) < max_new_tokens:
            token = pick_token(logits, temperature, gen)
            new_ids.append(token)
            if on_token is not None:
                on_token(len(new_ids), max_new_tokens)
            if token in stop_ids or len(new_ids) >= max_new_tokens:
                break
            if stop_event is not None and stop_event.is_set():
                raise RunCancelled("Stopped by the user.")
            logits = path.step(model, torch.tensor([[token]], device=device), cache, keep=1)[0, -1]
            calls += 1
    synchronize(device.type)
    return DecodeResult(len(prompt_ids), new_ids, time.perf_counter() - start, calls, prefill_s,
                        extra={"decode_path": path.name, "decode_note": path.note})


def pick_token(logits, temperature: float, gen) -> int:
    """argmax for greedy; otherwise a sample from softmax(logits / temperature) using `gen` (on CPU)."""
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / temperature, dim=-1).cpu()
    return int(torch.multinomial(probs, 1, generator=gen))


class oom_guard:
    """Turn a CUDA or CPU allocation failure into OutOfMemoryError with advice."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return False
        import torch

        if issubclass(exc_type, torch.cuda.OutOfMemoryError) or (
            issubclass(exc_type, RuntimeError) and "out of memory" in str(exc).lower()
        ):
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise OutOfMemoryError(
                "Ran out of memory. Use fewer prompt or new tokens, a smaller model, or a quantized copy."
            ) from exc
        return False


def perplexity(model, ids: list[int], stop_event: threading.Event | None = None) -> float:
    """exp(mean next-token NLL) of `ids` under the model, in one forward pass."""
    import math

    import torch

    if len(ids) < 2:
        raise ValueError("perplexity needs at least 2 tokens of evaluation text")
    device = next(model.parameters()).device
    with torch.inference_mode(), oom_guard():
        x = torch.tensor([ids], device=device)
        logits = model(input_ids=x, use_cache=False).logits[0, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="mean")
    return float(math.exp(float(nll)))


def decode_perplexity(model, ids: list[int], stop_event: threading.Event | None = None) -> float:
    """Perplexity of `ids` fed one token per forward pass on the KV cache, as decoding feeds them.

    Equal to perplexity() for models whose result does not depend on the batch, but not for dynamic activation
    quantization: torch.ao's dynamic int8 picks one activation scale per call, so a 512-token pass shares one scale
    across 512 tokens (and any token with an outlier coarsens the other 511), while decoding quantizes each token
    on its own. 512 calls instead of one: about a minute for SmolLM2-135M on two CPU cores.
    """
    import math

    import torch

    if len(ids) < 2:
        raise ValueError("perplexity needs at least 2 tokens of evaluation text")
    device = next(model.parameters()).device
    nll = 0.0
    with torch.inference_mode(), oom_guard():
        cache = new_cache(model)
        logits = forward(model, torch.tensor([ids[:1]], device=device), cache, keep=1)[0, -1]
        for token in ids[1:]:
            if stop_event is not None and stop_event.is_set():
                raise RunCancelled("Stopped by the user.")
            nll -= float(torch.log_softmax(logits.float(), dim=-1)[token])
            logits = forward(model, torch.tensor([[token]], device=device), cache, keep=1)[0, -1]
    return math.exp(nll / (len(ids) - 1))


def spread(values: list[float]) -> dict:
    """{"median", "min", "max", "n"} of repeated measurements (the page and the bench JSON report all four)."""
    if not values:
        raise ValueError("spread needs at least one measurement")
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def median_run(runs: list, attribute: str = "tokens_per_s") -> tuple:
    """(the run whose `attribute` is the median one, spread of that attribute over all runs).

    With an even count the lower-middle run is returned and the spread's median is the mean of the two middle
    values. Reporting the median and the range, rather than the best run, keeps a bimodal method visible.
    """
    values = [getattr(r, attribute) for r in runs]
    order = sorted(range(len(runs)), key=values.__getitem__)
    return runs[order[(len(runs) - 1) // 2]], spread(values)
