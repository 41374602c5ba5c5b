"""Tiny random-init Llama models and an offline BPE tokenizer, built in milliseconds for tests.

The tokenizer is trained on the text files shipped in live_demo/data, so nothing is downloaded.
Every Linear has in_features divisible by 32, so group-wise int4 (g32) applies to all of them.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
TINY_VOCAB = 512
TINY_HIDDEN = 64
TINY_INTERMEDIATE = 128


def _corpus_lines() -> list[str]:
    lines = (DATA_DIR / "eval_text.txt").read_text().splitlines()
    qa = json.loads((DATA_DIR / "qa.json").read_text())
    for item in qa["items"]:
        lines += [item["context"], item["question"], item["answer"]]
    return [line for line in lines if line.strip()]


@functools.lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB,
        min_frequency=2,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus_lines(), trainer)
    return tok.to_str()


def build_tiny_tokenizer():
    """A byte-level BPE tokenizer (vocab <= 512) trained offline on the shipped data files."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<pad>",
    )


def _tiny_config(vocab_size: int, layers: int, heads: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=TINY_HIDDEN,
        intermediate_size=TINY_INTERMEDIATE,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=1,
    )


def _build(vocab_size: int, layers: int, heads: int, seed: int, device: str):
    import torch
    from transformers import LlamaForCausalLM

    # transformers initialises weights from torch's default generator; fork_rng seeds it inside this block only
    # and restores the caller's RNG state afterwards, so building a tiny model never disturbs anyone's sampling
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        model = LlamaForCausalLM(_tiny_config(vocab_size, layers, heads))
    model.generation_config.pad_token_id = 1
    return model.to(device).eval()


def build_tiny_model(device: str = "cpu", seed: int = 0):
    """(model, tokenizer): a 2-layer random Llama (~0.1M params) with the offline tokenizer."""
    tok = build_tiny_tokenizer()
    return _build(len(tok), layers=2, heads=4, seed=seed, device=device), tok


def build_tiny_draft(tokenizer, device: str = "cpu", seed: int = 1):
    """A 1-layer random Llama sharing the tiny tokenizer, used as a draft model in tests."""
    return _build(len(tokenizer), layers=1, heads=2, seed=seed, device=device)
