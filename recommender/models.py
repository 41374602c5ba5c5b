"""Model architectures: presets (data/models.yaml), a bare parameter count, or a HF config.json."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .errors import RecommenderInputError, check_number, shorten, unknown_id_error

DATA_DIR = Path(__file__).parent / "data"
MAX_PARAMS_B = 10_000.0   # 10T parameters: anything larger is treated as a typo
MAX_CONFIG_BYTES = 1_000_000   # real config.json files are a few KB; 1 MB caps pastes and uploads alike
MAX_FIELD_VALUE = 10_000_000

# Model types whose MLP is gated (SwiGLU/GeGLU: three FFN matrices).
GATED_MODEL_TYPES = {
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3",
    "gemma3_text", "phi3", "cohere", "olmo", "olmo2", "deepseek_v2", "deepseek_v3", "granite", "internlm2",
    "starcoder2_gated", "smollm3", "exaone", "yi", "baichuan",
}


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts the cost model needs (HF naming in comments)."""

    id: str
    name: str
    layers: int                 # num_hidden_layers
    hidden: int                 # hidden_size
    heads: int                  # num_attention_heads
    kv_heads: int               # num_key_value_heads (GQA/MQA)
    head_dim: int               # explicit head_dim or hidden // heads
    ffn: int                    # intermediate_size (per expert for MoE)
    vocab: int
    context: int
    ffn_gated: bool = True
    experts: int = 1
    experts_active: int = 1
    sliding_window: int = 0
    sliding_window_layers: float = 0.0
    tied_embeddings: bool = False
    learned_positions: int = 0
    params_b: float | None = None         # published total, if known
    active_params_b: float | None = None  # published active (MoE), if known
    hf_id: str = ""
    source: str = ""
    synthetic: bool = False               # shape invented from a bare parameter count

    def __post_init__(self):
        for field in ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "context"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                raise RecommenderInputError(f"model field '{field}' must be a positive integer, got {value!r}")
        if self.heads % self.kv_heads:
            raise RecommenderInputError(
                f"num_attention_heads ({self.heads}) must be a multiple of num_key_value_heads ({self.kv_heads})")
        if not 1 <= self.experts_active <= self.experts:
            raise RecommenderInputError(
                f"experts per token ({self.experts_active}) must be between 1 and the expert count ({self.experts})")

    # ---- parameter counts (our own count from the config fields) ----
    @property
    def attention_params_per_layer(self) -> int:
        # Q and O are h x (n_q*d); K and V are h x (n_kv*d) each (GQA shrinks K/V only).
        return 2 * self.hidden * self.heads * self.head_dim + 2 * self.hidden * self.kv_heads * self.head_dim

    @property
    def ffn_params_per_expert(self) -> int:
        # gated MLP: gate, up, down; plain MLP: up, down.
        return (3 if self.ffn_gated else 2) * self.hidden * self.ffn

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden + self.learned_positions * self.hidden

    @property
    def head_params(self) -> int:
        """Output projection (lm_head); zero extra when tied to the input embedding."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    @property
    def lm_head_read_params(self) -> int:
        """Parameters read by the output projection each step (tied or not)."""
        return self.vocab * self.hidden

    @property
    def layer_params(self) -> int:
        router = self.hidden * self.experts if self.experts > 1 else 0
        norms = 2 * self.hidden
        return self.attention_params_per_layer + self.experts * self.ffn_params_per_expert + router + norms

    @property
    def body_params(self) -> int:
        """Transformer blocks only (what weight quantization converts)."""
        return self.layers * self.layer_params

    @property
    def total_params(self) -> int:
        return self.body_params + self.embedding_params + self.head_params + self.hidden

    @property
    def active_body_params(self) -> int:
        """Block parameters touched per token (MoE: only the routed experts)."""
        per_layer = self.layer_params - (self.experts - self.experts_active) * self.ffn_params_per_expert
        return self.layers * per_layer

    @property
    def active_params(self) -> int:
        return self.active_body_params + self.lm_head_read_params

    @property
    def total_params_b(self) -> float:
        return self.total_params / 1e9

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def attention_kind(self) -> str:
        if self.kv_heads == 1:
            return "MQA"
        if self.kv_heads < self.heads:
            return "GQA"
        return "MHA"

    @classmethod
    def from_name(cls, name: str) -> ModelSpec:
        """Look up a preset by id (case-insensitive); suggests close ids when unknown."""
        presets = model_presets()
        key = str(name).strip().lower()
        if key in presets:
            return presets[key]
        raise unknown_id_error("model", str(name), list(presets))

    @classmethod
    def from_params(cls, params_b: float) -> ModelSpec:
        """A Llama-shaped stand-in with the given parameter count (full multi-head attention: KV upper bound)."""
        params_b = check_number("model size (billions of parameters)", params_b, low=0.01, high=MAX_PARAMS_B)
        p = params_b * 1e9
        vocab = 32_000
        # Llama-family aspect ratio: layers ~ hidden/128 and block params ~ 12 h^2 (Kaplan et al. 2020 eq. 2.1)
        hidden = max(256, int(round((p * 128 / 12) ** (1 / 3) / 128)) * 128)
        layers = max(2, hidden // 128)
        attn = 4 * hidden * hidden
        ffn = max(128, int((p - 2 * vocab * hidden) / layers - attn - 2 * hidden) // (3 * hidden))
        return cls(id=f"custom-{params_b:g}b", name=f"Custom {params_b:g}B (Llama-shaped)", layers=layers,
                   hidden=hidden, heads=hidden // 128, kv_heads=hidden // 128, head_dim=128, ffn=ffn,
                   vocab=vocab, context=4096, params_b=p / 1e9, synthetic=True,
                   source="synthetic Llama-like shape from a parameter count; paste config.json for exact KV sizes")


    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(total_params_b=round(self.total_params_b, 3), attention=self.attention_kind,
                   active_params_b=round(self.active_params / 1e9, 3))
        return out

@lru_cache(maxsize=1)
def model_presets() -> dict[str, ModelSpec]:
    """All presets from data/models.yaml, keyed by id."""
    rows = yaml.safe_load((DATA_DIR / "models.yaml").read_text())
    return {row["id"]: ModelSpec(**row) for row in rows}


def _first(config: dict, *keys, default=None):
    for key in keys:
        if key in config and config[key] is not None:
            return config[key]
    return default


def _positive_int(config: dict, label: str, *keys, default=None) -> int:
    value = _first(config, *keys, default=default)
    if value is None:
        raise RecommenderInputError(f"config.json has no {label} (looked for: {', '.join(keys)})")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value <= 0 or value != int(value):
        raise RecommenderInputError(f"config.json field {label} must be a positive integer, got {shorten(value)}")
    if value > MAX_FIELD_VALUE:
        raise RecommenderInputError(f"config.json field {label} is implausibly large ({value:g}); "
                                    f"the limit is {MAX_FIELD_VALUE:,}")
    return int(value)


def _optional_int(config: dict, label: str, *keys, missing: int) -> int:
    """A positive integer field that may be absent, null or 0 (then `missing`); anything else malformed raises."""
    if not _first(config, *keys):
        return missing
    return _positive_int(config, label, *keys)


def check_config_size(size_bytes: int) -> None:
    """Refuse a config.json over MAX_CONFIG_BYTES before reading it (uploads, pastes and CLI files)."""
    if size_bytes > MAX_CONFIG_BYTES:
        raise RecommenderInputError(
            f"config.json is too large ({size_bytes / 1e6:.1f} MB; the limit is {MAX_CONFIG_BYTES / 1e6:g} MB): "
            "a Hugging Face config.json is a few KB, so check that this is the right file")


def _parse_config(config: dict | str | bytes) -> dict:
    if isinstance(config, bytes):
        check_config_size(len(config))
        try:
            config = config.decode("utf-8")
        except UnicodeDecodeError:
            raise RecommenderInputError("config.json is not UTF-8 text") from None
    if isinstance(config, str):
        if not config.strip():
            raise RecommenderInputError("config.json is empty: paste the model's config.json text")
        check_config_size(len(config.encode("utf-8", errors="replace")))
        try:
            config = json.loads(config)
        except RecursionError:
            raise RecommenderInputError("config.json is nested too deeply to be a model config") from None
        except json.JSONDecodeError as exc:
            raise RecommenderInputError(f"config.json is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(config, dict):
        raise RecommenderInputError("config.json must be a JSON object ({...})")
    if isinstance(config.get("text_config"), dict):   # multimodal wrappers keep the LM in text_config
        config = {**config, **config["text_config"]}
    return config


def _sliding_window(config: dict, layers: int) -> tuple[int, float]:
    if config.get("use_sliding_window") is False:   # Qwen2 configs carry a window they do not use
        return 0, 0.0
    window = _optional_int(config, "sliding_window", "sliding_window", missing=0)
    if not window:
        return 0, 0.0
    layer_types = config.get("layer_types")
    if isinstance(layer_types, list) and layer_types:
        share = sum(1 for t in layer_types if "sliding" in str(t)) / len(layer_types)
    elif config.get("model_type") == "gemma2":
        share = 0.5   # Gemma-2 alternates local (sliding) and global layers
    elif config.get("sliding_window_pattern"):
        # Gemma-3: 1 global layer every `pattern`
        pattern = _positive_int(config, "sliding_window_pattern", "sliding_window_pattern")
        share = (pattern - 1) / pattern
    else:
        share = 1.0
    return window, share


def model_from_hf_config(config: dict | str | bytes, name: str = "custom (config.json)") -> ModelSpec:
    """Build a ModelSpec from a parsed or raw HF config.json; raises RecommenderInputError when malformed."""
    cfg = _parse_config(config)
    layers = _positive_int(cfg, "number of layers", "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    hidden = _positive_int(cfg, "hidden size", "hidden_size", "n_embd", "d_model", "dim")
    heads = _positive_int(cfg, "attention heads", "num_attention_heads", "n_head", "num_heads", "n_heads")
    if cfg.get("multi_query") is True:              # Falcon-7B / GPTBigCode style MQA
        kv_default = 1
    else:
        kv_default = heads
    kv_heads = _positive_int(cfg, "KV heads", "num_key_value_heads", "n_head_kv", "num_kv_heads",
                             "multi_query_group_num", default=kv_default)
    head_dim = _positive_int(cfg, "head_dim", "head_dim", default=max(1, hidden // heads))
    ffn = _positive_int(cfg, "FFN size", "moe_intermediate_size", "intermediate_size", "n_inner", "ffn_dim",
                        "ffn_hidden_size", default=4 * hidden)
    vocab = _positive_int(cfg, "vocabulary size", "vocab_size", "padded_vocab_size")
    context = _positive_int(cfg, "context length", "max_position_embeddings", "n_positions", "max_seq_len",
                            "seq_length", "n_ctx", default=4096)
    experts = _optional_int(cfg, "expert count", "num_local_experts", "num_experts", "n_routed_experts", missing=1)
    active = _optional_int(cfg, "experts per token", "num_experts_per_tok", "num_experts_per_token", "moe_topk",
                           missing=1)
    model_type = str(cfg.get("model_type", "")).lower()
    act = str(cfg.get("hidden_act", cfg.get("hidden_activation", cfg.get("activation_function", "")))).lower()
    gated = model_type in GATED_MODEL_TYPES or "silu" in act or "swiglu" in act or act.startswith("gelu_pytorch_tanh") \
        and model_type.startswith("gemma")
    window, window_share = _sliding_window(cfg, layers)
    positions = 0   # learned position embeddings add parameters (GPT-2, StarCoder, OPT)
    if model_type in ("gpt2", "gpt_bigcode"):
        positions = _optional_int(cfg, "n_positions", "n_positions", missing=0)
    elif model_type == "opt":
        positions = _optional_int(cfg, "max_position_embeddings", "max_position_embeddings", missing=0)
    tied = bool(cfg.get("tie_word_embeddings", model_type in ("gpt2", "gpt_bigcode", "opt", "falcon", "gemma",
                                                             "gemma2")))
    label = " ".join(str(cfg.get("_name_or_path") or name).split())   # one line, no control characters
    try:
        return ModelSpec(id="custom-config", name=str(label)[:80], layers=layers, hidden=hidden, heads=heads,
                         kv_heads=kv_heads, head_dim=head_dim, ffn=ffn, vocab=vocab, context=context,
                         ffn_gated=gated, experts=experts, experts_active=min(active, experts),
                         sliding_window=window, sliding_window_layers=window_share, tied_embeddings=tied,
                         learned_positions=positions, source="user config.json")
    except RecommenderInputError as exc:
        raise RecommenderInputError(f"config.json: {exc}") from None


def resolve_model(model: str | ModelSpec | None = None, params_b: float | None = None,
                  config: dict | str | bytes | None = None) -> ModelSpec:
    """A preset id, a parameter count, or a config.json, in that order of preference."""
    if isinstance(model, ModelSpec):
        return model
    if config is not None:
        return model_from_hf_config(config)
    if model:
        return ModelSpec.from_name(model)
    if params_b is not None:
        return ModelSpec.from_params(params_b)
    raise RecommenderInputError("give a model preset id (--model), a size (--params-b) or a config.json")
