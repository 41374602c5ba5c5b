"""The real `llmlingua` 0.2.2 library as a peer, made to run offline with transformers 5.x.

Two adapters (see docs/live_demo.md):
1. llmlingua's constructor asks tiktoken for the gpt-3.5 encoding, which downloads a file. It is used only to
   count tokens, so the demo's own tokenizer is substituted before construction.
2. llmlingua iterates past_key_values as legacy (key, value) tuples; transformers 5.x passes a DynamicCache
   under the name `cache`. A thin wrapper translates in both directions.
The NLTK sentence filter (needs downloaded punkt data) stays off.
"""

from __future__ import annotations

import copy
import importlib.util
import time
import types

from live_demo.decoding import encode_text


class _LocalEncoding:
    """Stands in for a tiktoken Encoding: only encode/decode are used by llmlingua."""

    def __init__(self, tokenizer):
        self._tok = tokenizer

    def encode(self, text, **kwargs):
        return self._tok.encode(text, add_special_tokens=False)

    def decode(self, ids, **kwargs):
        return self._tok.decode(ids)


class _LegacyCacheModel:
    """Wraps a transformers 5.x causal LM so it accepts and returns legacy tuple caches."""

    def __init__(self, model):
        self._model = model
        self.config = model.config
        self.device = next(model.parameters()).device

    def __call__(self, input_ids=None, attention_mask=None, past_key_values=None, use_cache=True, **kwargs):
        from transformers import DynamicCache

        cache = None
        if past_key_values is not None:
            cache = DynamicCache(config=self._model.config)
            for layer_idx, (key, value) in enumerate(past_key_values):
                cache.update(key, value, layer_idx)
        out = self._model(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=use_cache,
                          **kwargs)
        legacy = [(layer.keys, layer.values) for layer in out.cache.layers] if use_cache else None
        return types.SimpleNamespace(logits=out.logits, past_key_values=legacy)

    def __getattr__(self, name):
        return getattr(self._model, name)


def llmlingua_available() -> bool:
    return importlib.util.find_spec("llmlingua") is not None


class LLMLinguaPeer:
    """llmlingua.PromptCompressor driven by an already-loaded model and tokenizer (no downloads)."""

    def __init__(self, model, tokenizer):
        if not llmlingua_available():
            raise ValueError("llmlingua is not installed; pip install llmlingua==0.2.2 to compare with it")
        import llmlingua.prompt_compressor as lpc

        self.tokenizer = tokenizer
        lpc.tiktoken.encoding_for_model = lambda name: _LocalEncoding(tokenizer)  # adapter 1 (no download)
        pc = object.__new__(lpc.PromptCompressor)  # skip __init__: it would load a model by name
        pc.model_name = "local"
        pc.use_llmlingua2 = False
        pc.retrieval_model = None
        pc.retrieval_model_name = None
        pc.open_api_config = {}
        pc.cache_bos_num = 10
        pc.prefix_bos_num = 100
        pc.oai_tokenizer = _LocalEncoding(tokenizer)
        pc.tokenizer = copy.deepcopy(tokenizer)  # llmlingua sets left padding; keep the shared tokenizer intact
        pc.tokenizer.padding_side = "left"
        if pc.tokenizer.pad_token_id is None:
            pc.tokenizer.pad_token_id = tokenizer.eos_token_id
        pc.device = str(next(model.parameters()).device)
        pc.model = _LegacyCacheModel(model)  # adapter 2 (legacy KV tuples)
        pc.context_idxs = []
        pc.max_position_embeddings = model.config.max_position_embeddings
        self.pc = pc

    def compress_ids(self, context: str, instruction: str, question: str, ratio: float):
        """(kept context token ids, seconds, instruction+question tokens) at the same whole-prompt ratio."""
        from live_demo.compression import context_budget

        ctx_ids = encode_text(self.tokenizer, context)
        other = len(encode_text(self.tokenizer, instruction))
        other += len(encode_text(self.tokenizer, question))
        target = context_budget(len(ctx_ids), other, ratio)
        start = time.perf_counter()
        out = self.pc.compress_prompt([context], target_token=target, use_context_level_filter=False,
                                      use_sentence_level_filter=False, iterative_size=64)
        seconds = time.perf_counter() - start
        kept = self.tokenizer.encode(out["compressed_prompt"].strip(), add_special_tokens=False)
        return kept, seconds, other
