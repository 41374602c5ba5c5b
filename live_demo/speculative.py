"""Speculative decoding written on the target's KV cache: draft k tokens, verify them in one target pass.

Greedy: accept the longest prefix of the draft that matches the target's argmax, then emit the target's own
token (a correction, or a bonus when every draft token was accepted). The output equals plain greedy decoding.
Sampling: accept draft token x with probability min(1, p(x) / q(x)); on the first rejection sample from
normalize(max(p - q, 0)) (Leviathan et al., 2023, Alg. 1; Chen et al., 2023). The output is distributed as
sampling from the target alone.

Drafters: another model with the same tokenizer, self-drafts derived from the target (an int8 copy, or its
first layers with the final norm and head), and prompt lookup, which copies the tokens that followed the latest
earlier occurrence of the current n-gram (LLMA, Yang et al., 2023).
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field

from live_demo.decoding import (
    DecodeResult,
    crop_to,
    oom_guard,
    synchronize,
)
from live_demo.errors import BadInputError, RunCancelled, TokenizerMismatchError, check_int

DRAFTERS = ("prompt-lookup", "int8-self", "early-exit", "draft-model")
# drafters that read no weights: their cost per proposal is a search in the token history, not a forward pass
DRAFT_FREE = ("prompt-lookup",)


@dataclass(frozen=True)
class SpecConfig:
    """Draft length, budget and sampling settings of one speculative run.

    Raises BadInputError (a ValueError) for a draft_len outside 1-16, max_new_tokens outside 1-512 (a bool is
    not a count) or a temperature outside 0-5.
    """

    draft_len: int = 4
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy
    seed: int = 0

    def __post_init__(self):
        check_int("draft_len", self.draft_len, 1, 16)
        check_int("max_new_tokens", self.max_new_tokens, 1, 512)
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) \
                or not 0 <= self.temperature <= 5:
            raise BadInputError(f"temperature must be a number between 0 and 5, got {self.temperature!r}")
        check_int("seed", self.seed, 0)


@dataclass
class SpecResult(DecodeResult):
    """A speculative run: tokens, which ones came from the draft, and acceptance statistics."""

    from_draft: list[bool] = field(default_factory=list)
    drafted: int = 0
    accepted: int = 0
    rounds: int = 0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def mean_accepted_len(self) -> float:
        """Draft tokens accepted per verification round (the target's own token not counted)."""
        return self.accepted / self.rounds if self.rounds else 0.0

    @property
    def target_calls_per_token(self) -> float:
        """Target forward passes (prefill included) per generated token; plain decoding gives 1.0."""
        return self.target_calls / len(self.new_ids) if self.new_ids else 0.0

    def stats(self) -> dict:
        return {
            "new_tokens": len(self.new_ids),
            "acceptance_rate": self.acceptance_rate,
            "mean_accepted_len": self.mean_accepted_len,
            "target_calls_per_token": self.target_calls_per_token,
            "target_calls": self.target_calls,
            "drafted": self.drafted,
            "accepted": self.accepted,
            "tokens_per_s": self.tokens_per_s,
            "seconds": self.seconds,
        }


# ---------------------------------------------------------------- drafters

class PromptLookupDrafter:
    """Copy what followed the earlier position whose preceding tokens agree longest with the current tail.

    For every earlier occurrence of the last token, count how many tokens before it agree with the tokens before
    the current position (up to `max_match`), and propose the tokens that followed the best one; ties go to the
    most recent. A match shorter than `min_match` proposes nothing: single-token matches are mostly coincidences
    in chat text, and on a CPU every rejected proposal still costs a wider verification pass. Choosing the
    longest agreement, rather than the latest (or earliest) fixed-size n-gram, picks the right copy when a text
    repeats a pattern with variations, as code does (measured on the code-copy prompt: acceptance 0.66 with the
    latest 3-gram, 0.82 with the earliest, 0.94 with the longest agreement).
    """

    name = "prompt-lookup"

    def __init__(self, min_match: int = 2, max_match: int = 32):
        if not 1 <= min_match <= max_match:
            raise ValueError(f"prompt lookup needs 1 <= min_match <= max_match, got {min_match} and {max_match}")
        self.min_match = min_match
        self.max_match = max_match

    def reset(self, prompt_ids: list[int], path=None, max_len: int = 0) -> None:
        return None

    def propose(self, seq: list[int], k: int, temperature: float, gen):
        end = len(seq) - 1
        best, best_len = -1, 0
        for j in range(end - 1, -1, -1):  # j: an earlier position holding the current last token
            if seq[j] != seq[end]:
                continue
            m = 1
            while m < self.max_match and j - m >= 0 and seq[j - m] == seq[end - m]:
                m += 1
            if m > best_len:
                best, best_len = j, m
        if best_len < self.min_match:
            return [], None
        return seq[best + 1:best + 1 + k], None  # None: a deterministic proposal, q is one-hot

    def rollback(self, length: int) -> None:
        return None


class ModelDrafter:
    """Autoregressive drafting with a smaller causal LM that keeps its own KV cache."""

    def __init__(self, model, name: str = "draft-model"):
        self.model = model
        self.name = name
        self.device = next(model.parameters()).device
        self.cache = None
        self.cached: list[int] = []
        self.path = None

    def reset(self, prompt_ids: list[int], path=None, max_len: int = 0) -> None:
        """Start a run: an empty cache on `path` (a fastpath.DecodePath; eager when None)."""
        from live_demo.fastpath import DecodePath

        self.path = path or DecodePath("eager")
        self.cache = self.path.new_cache(self.model, max_len or len(prompt_ids) + 64)
        self.cached = []

    def _feed(self, ids: list[int]):
        import torch

        logits = self.path.step(self.model, torch.tensor([ids], device=self.device), self.cache, keep=1,
                                prefill=not self.cached)[0, -1]
        self.cached += ids
        return logits

    def propose(self, seq: list[int], k: int, temperature: float, gen):
        import torch

        # Bring the draft cache up to date with everything but the last token, then feed the last one.
        common = 0
        while common < min(len(self.cached), len(seq) - 1) and self.cached[common] == seq[common]:
            common += 1
        crop_to(self.cache, common)
        self.cached = self.cached[:common]
        logits = self._feed(seq[common:])
        tokens, dists = [], []
        for i in range(k):
            if temperature > 0:
                probs = torch.softmax(logits.float() / temperature, dim=-1)
                token = int(torch.multinomial(probs.cpu(), 1, generator=gen))
                dists.append(probs)
            else:
                token = int(torch.argmax(logits))
            tokens.append(token)
            if i < k - 1:
                logits = self._feed([token])
        return tokens, (dists if temperature > 0 else None)

    def rollback(self, length: int) -> None:
        return None  # propose() re-syncs against the accepted sequence


def early_exit_model(model, num_layers: int):
    """A shallow LM made of the target's first `num_layers` blocks plus its final norm and head.

    The new module shares (does not copy) the target's weights and never modifies the target.
    """
    from transformers import AutoModelForCausalLM

    total = model.config.num_hidden_layers
    if not 1 <= num_layers < total:
        raise ValueError(f"early-exit layers must be between 1 and {total - 1}, got {num_layers}")
    cfg = copy.deepcopy(model.config)
    cfg.num_hidden_layers = num_layers
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = cfg.layer_types[:num_layers]
    import torch

    with torch.device("meta"):
        shallow = AutoModelForCausalLM.from_config(cfg)
    shallow.model.embed_tokens = model.model.embed_tokens
    shallow.model.layers = torch.nn.ModuleList(list(model.model.layers[:num_layers]))
    shallow.model.norm = model.model.norm
    shallow.model.rotary_emb = model.model.rotary_emb
    shallow.lm_head = model.lm_head
    shallow.generation_config = copy.deepcopy(model.generation_config)
    return shallow.eval()


def default_early_exit_layers(target) -> int:
    """A quarter of the target's blocks (at least one): 7 of SmolLM2-135M's 30."""
    return max(1, target.config.num_hidden_layers // 4)


def build_drafter(name: str, target, draft_model=None, early_exit_layers: int | None = None):
    """A drafter by name; `draft_model` is required for 'draft-model'.

    early_exit_layers: None = default_early_exit_layers(target); any other value must be a whole number from 1 to
    the target's layers - 1 (0 raises BadInputError rather than silently becoming the default).
    """
    if name not in DRAFTERS:
        raise BadInputError(f"unknown drafter {name!r}; choose one of {DRAFTERS}")
    if name == "prompt-lookup":
        return PromptLookupDrafter()
    if name == "draft-model":
        if draft_model is None:
            raise BadInputError("The 'draft-model' drafter needs a draft model: enter a draft model id")
        check_draft_vocab(target, draft_model)
        return ModelDrafter(draft_model, name)
    if name == "int8-self":
        device = next(target.parameters()).device.type
        from live_demo.quantization import quantize_copy

        return ModelDrafter(quantize_copy(target, "int8-dynamic" if device == "cpu" else "int8-weight-only"), name)
    layers = default_early_exit_layers(target) if early_exit_layers is None else \
        check_int("early_exit_layers", early_exit_layers, 1, target.config.num_hidden_layers - 1)
    return ModelDrafter(early_exit_model(target, layers), name)


def check_draft_vocab(target, draft) -> None:
    """TokenizerMismatchError when a draft model's vocabulary differs in size from the target's.

    Speculative decoding exchanges token ids; a draft with another vocabulary fails with an index error (or,
    worse, proposes unrelated tokens). `models.check_same_tokenizer` compares the tokenizers themselves where
    both are at hand; this check needs only the two models and runs wherever a draft model is used.
    """
    sizes = [m.get_input_embeddings().num_embeddings for m in (target, draft)]
    if sizes[0] != sizes[1]:
        raise TokenizerMismatchError(f"The draft model's vocabulary has {sizes[1]} tokens and the target's "
                                     f"{sizes[0]}: speculative decoding needs one shared tokenizer. Pick a draft "
                                     "from the target's model family.")


# ---------------------------------------------------------------- the draft-and-verify loop

def speculative_decode(target, drafter, prompt_ids: list[int], config: SpecConfig, stop_ids: set[int] | None = None,
                       stop_event: threading.Event | None = None, on_token=None, path=None) -> SpecResult:
    """Draft with `drafter`, verify with `target` on its KV cache. The target cache always holds seq[:-1].

    on_token(n, max_new_tokens) is called after every verification round with the tokens generated so far.
    path: a fastpath.DecodePath or name (None = compiled on CUDA, eager on CPU); the target's verification passes
    after the prefill and a model drafter's steps go through it. Raises TokenizerMismatchError when a model
    drafter's vocabulary differs from the target's.
    """
    from live_demo.fastpath import DecodePath, choose_path, run_with_fallback

    if getattr(drafter, "model", None) is not None:
        check_draft_vocab(target, drafter.model)
    device = next(target.parameters()).device
    chosen = path if isinstance(path, DecodePath) else choose_path(device.type, path, target)
    return run_with_fallback(chosen, target, lambda p: _speculative_decode(target, drafter, prompt_ids, config,
                                                                           stop_ids, stop_event, on_token, p))


def _speculative_decode(target, drafter, prompt_ids, config, stop_ids, stop_event, on_token, path) -> SpecResult:
    import torch

    device = next(target.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    stop_ids = stop_ids or set()
    seq = list(prompt_ids)
    new_ids: list[int] = []
    from_draft: list[bool] = []
    drafted = accepted = rounds = 0
    synchronize(device.type)
    start = time.perf_counter()
    prefill_s = 0.0
    calls = 0
    with torch.inference_mode(), oom_guard():
        max_len = len(prompt_ids) + config.max_new_tokens + config.draft_len + 2
        drafter.reset(prompt_ids, path, max_len)
        cache = path.new_cache(target, max_len)
        # The target cache holds seq[:-1] after every round. The first round is the prefill: it feeds the whole
        # prompt plus a first proposal, so a draft found in the prompt is verified without an extra pass.
        while len(new_ids) < config.max_new_tokens and not (new_ids and new_ids[-1] in stop_ids):
            if stop_event is not None and stop_event.is_set():
                raise RunCancelled("Stopped by the user.")
            k = min(config.draft_len, config.max_new_tokens - len(new_ids) - 1)
            proposal, q_dists = drafter.propose(seq, k, config.temperature, gen) if k > 0 else ([], None)
            proposal = proposal[:k]
            cached = len(seq) - 1 if new_ids else 0
            feed = torch.tensor([seq[cached:] + proposal], device=device)
            logits = path.step(target, feed, cache, keep=len(proposal) + 1, prefill=calls == 0)[0]  # (1+k, vocab)
            calls += 1
            rounds += 1 if proposal else 0
            drafted += len(proposal)
            n_ok, next_token = _accept(logits, proposal, q_dists, config.temperature, gen)
            accepted += n_ok
            crop_to(cache, len(seq) + n_ok)  # keep seq and the accepted drafts; next_token is not cached yet
            emitted = proposal[:n_ok] + [next_token]
            flags = [True] * n_ok + [False]
            for token, flag in zip(emitted, flags, strict=False):
                if len(new_ids) >= config.max_new_tokens:
                    break
                seq.append(token)
                new_ids.append(token)
                from_draft.append(flag)
                if token in stop_ids:
                    break
            drafter.rollback(len(seq))
            if on_token is not None:
                on_token(len(new_ids), config.max_new_tokens)
            if calls == 1:
                synchronize(device.type)
                prefill_s = time.perf_counter() - start
    synchronize(device.type)
    return SpecResult(len(prompt_ids), new_ids, time.perf_counter() - start, calls, prefill_s,
                      extra={"decode_path": path.name, "decode_note": path.note},
                      from_draft=from_draft, drafted=drafted, accepted=accepted, rounds=rounds)


def _accept(logits, proposal: list[int], q_dists, temperature: float, gen) -> tuple[int, int]:
    """(number of draft tokens accepted, the target's next token) for one verification pass."""
    import torch

    if temperature <= 0:
        target_tokens = torch.argmax(logits, dim=-1).tolist()
        n_ok = 0
        while n_ok < len(proposal) and proposal[n_ok] == target_tokens[n_ok]:
            n_ok += 1
        return n_ok, target_tokens[n_ok]
    p = torch.softmax(logits.float() / temperature, dim=-1).cpu()
    for i, token in enumerate(proposal):
        q_token = float(q_dists[i][token]) if q_dists is not None else 1.0
        p_token = float(p[i, token])
        if float(torch.rand(1, generator=gen)) < min(1.0, p_token / max(q_token, 1e-20)):
            continue
        if q_dists is not None:
            residual = torch.clamp(p[i] - q_dists[i].float().cpu(), min=0)
        else:  # q is one-hot on `token`
            residual = p[i].clone()
            residual[token] = 0
        total = float(residual.sum())
        dist = residual / total if total > 0 else p[i]
        return i, int(torch.multinomial(dist, 1, generator=gen))
    return len(proposal), int(torch.multinomial(p[len(proposal)], 1, generator=gen))


def hf_generate(target, prompt_ids: list[int], max_new_tokens: int, assistant=None, lookup_k: int | None = None,
                draft_len: int = 4, static: bool = False) -> DecodeResult:
    """transformers' own greedy generate, optionally with assisted generation or prompt lookup, timed.

    static=True asks generate for its static cache (cache_implementation="static"), which transformers compiles
    on a GPU: the peer of our compiled path.
    """
    import torch

    device = next(target.parameters()).device
    kwargs = {"max_new_tokens": max_new_tokens, "do_sample": False,
              "pad_token_id": target.generation_config.pad_token_id or 0}
    if static:
        kwargs["cache_implementation"] = "static"
    if assistant is not None:
        assistant.generation_config.num_assistant_tokens = draft_len
        assistant.generation_config.num_assistant_tokens_schedule = "constant"
        assistant.generation_config.assistant_confidence_threshold = 0.0
        kwargs["assistant_model"] = assistant
    if lookup_k:
        kwargs["prompt_lookup_num_tokens"] = lookup_k
    ids = torch.tensor([prompt_ids], device=device)
    with torch.inference_mode(), oom_guard():
        synchronize(device.type)
        start = time.perf_counter()
        out = target.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
        synchronize(device.type)
    new = out[0, len(prompt_ids):].tolist()
    return DecodeResult(len(prompt_ids), new, time.perf_counter() - start, 0)
