"""Model architectures: presets (data/models.yaml), a bare parameter count, or a HF config.json."""

from __future__ import annotations

import json
import math
import re
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
    # multi-head latent attention (DeepSeek-V2/V3): the cache keeps one latent of kv_lora_rank + qk_rope_head_dim
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    # mixture of experts beyond Mixtral: always-on shared experts, per-expert width, leading dense layers
    shared_experts: int = 0
    moe_ffn: int = 0                      # per-expert intermediate size (0: `ffn`)
    first_dense_layers: int = 0
    dense_ffn: int = 0                    # intermediate size of the dense layers (0: `ffn`)
    mtp_layers: int = 0                   # multi-token-prediction modules (not part of the main model's size)
    mtp_params_b: float | None = None     # published size of those modules, if known
    native_weights: str = ""              # storage format of the released checkpoint (e.g. fp8, mxfp4)
    counted_params: int = 0               # exact count from the model built on the meta device (transformers)
    count_note: str = ""                  # how the parameters were counted
    confidence: str = ""

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
        if self.first_dense_layers >= self.layers and self.experts > 1:
            raise RecommenderInputError(f"first_dense_layers ({self.first_dense_layers}) must be below the layer "
                                        f"count ({self.layers})")

    # ---- parameter counts (our own count from the config fields; docs/cost_model.md §2.1) ----
    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def attention_params_per_layer(self) -> int:
        h, n_q = self.hidden, self.heads
        if self.is_mla:
            # DeepSeek-V2 MLA: Q through an optional low-rank q_lora, K/V through one latent of kv_lora_rank plus a
            # decoupled RoPE key, up-projected per head; output from n_q * v_head_dim (DeepSeek-V2 paper, sec. 2.1)
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            v_dim = self.v_head_dim or self.qk_nope_head_dim
            q = (h * self.q_lora_rank + self.q_lora_rank * n_q * qk + self.q_lora_rank) if self.q_lora_rank \
                else h * n_q * qk
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank \
                + self.kv_lora_rank * n_q * (self.qk_nope_head_dim + v_dim)
            return q + kv + n_q * v_dim * h
        # Q and O are h x (n_q*d); K and V are h x (n_kv*d) each (GQA shrinks K/V only).
        return 2 * h * n_q * self.head_dim + 2 * h * self.kv_heads * self.head_dim

    @property
    def _ffn_matrices(self) -> int:
        return 3 if self.ffn_gated else 2   # gated MLP: gate, up, down; plain MLP: up, down

    @property
    def ffn_params_per_expert(self) -> int:
        """One routed expert's FFN (the whole FFN for a dense model)."""
        return self._ffn_matrices * self.hidden * (self.moe_ffn or self.ffn)

    @property
    def moe_layers(self) -> int:
        """Layers whose FFN is a mixture of experts (all but the leading dense ones)."""
        return self.layers - self.first_dense_layers if self.experts > 1 else 0

    @property
    def routed_expert_params(self) -> int:
        """All routed experts of all MoE layers (what batch decode reads a growing share of)."""
        return self.moe_layers * self.experts * self.ffn_params_per_expert

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

    def _moe_layer_params(self) -> int:
        router = self.hidden * self.experts
        shared = self.shared_experts * self.ffn_params_per_expert
        return self.attention_params_per_layer + self.experts * self.ffn_params_per_expert + shared + router \
            + 2 * self.hidden

    def _dense_layer_params(self) -> int:
        width = self.dense_ffn or self.ffn
        return self.attention_params_per_layer + self._ffn_matrices * self.hidden * width + 2 * self.hidden

    @property
    def layer_params(self) -> int:
        """Mean parameters per transformer block."""
        return self.body_params // self.layers

    @property
    def body_params(self) -> int:
        """Transformer blocks only (what weight quantization converts); exact when counted on the meta device."""
        if self.counted_params:
            return self.counted_params - self.embedding_params - self.head_params - self.hidden
        dense = self.layers - self.moe_layers
        return dense * self._dense_layer_params() + self.moe_layers * self._moe_layer_params()

    @property
    def total_params(self) -> int:
        """The main model's parameters (multi-token-prediction modules excluded, as their publishers count)."""
        return self.counted_params or self.body_params + self.embedding_params + self.head_params + self.hidden

    @property
    def mtp_params(self) -> int:
        """Parameters of the multi-token-prediction modules as the checkpoint stores them: one MoE block, a 2h x h
        projection and norms each (DeepSeek-V3 technical report, sec. 2.2), plus the copies of the embedding and
        output head the checkpoint keeps beside them (DeepSeek-V3: ~13.5B of the published 14B)."""
        per_module = self._moe_layer_params() + 2 * self.hidden * self.hidden + 3 * self.hidden
        return self.mtp_layers * (per_module + 2 * self.vocab * self.hidden)

    @property
    def active_body_params(self) -> int:
        """Block parameters touched per token (MoE: only the routed experts a token picks, plus shared ones)."""
        return self.body_params - self.moe_layers * (self.experts - self.experts_active) * self.ffn_params_per_expert

    @property
    def active_params(self) -> int:
        return self.active_body_params + self.lm_head_read_params

    # ---- KV cache geometry (docs/cost_model.md §2.2) ----
    @property
    def kv_elements_per_token_layer(self) -> int:
        """Cached elements per token per layer: K and V of every KV head, or MLA's one latent + RoPE key."""
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.kv_heads * self.head_dim

    @property
    def kv_shards(self) -> int:
        """How many GPUs tensor parallelism can split the cache over: one per KV head; MLA's latent is replicated."""
        return 1 if self.is_mla else self.kv_heads

    @property
    def total_params_b(self) -> float:
        return self.total_params / 1e9

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def attention_kind(self) -> str:
        if self.is_mla:
            return "MLA"
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
        out["total_params_b"] = round(self.total_params / 1e9, 3)
        if self.mtp_layers:
            out["mtp_params_b"] = round(self.mtp_params / 1e9, 3)
        out.update(total_params_b=round(self.total_params_b, 3), attention=self.attention_kind,
                   active_params_b=round(self.active_params / 1e9, 3))
        return out

@lru_cache(maxsize=1)
def model_presets() -> dict[str, ModelSpec]:
    """All presets from data/models.yaml and data/models_2025.yaml (MLA, shared-expert MoE), keyed by id."""
    rows = []
    for name in ("models.yaml", "models_2025.yaml"):
        rows += yaml.safe_load((DATA_DIR / name).read_text()) or []
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
    return config


def _flatten_text_config(config: dict) -> dict:
    """Multimodal wrappers keep the language model under text_config: read its fields first."""
    if isinstance(config.get("text_config"), dict):
        return {**config, **config["text_config"]}
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


# Largest architectures worth building on the meta device (module count, not bytes, is what costs time there).
META_MAX_LAYERS = 512
META_MAX_EXPERT_MODULES = 100_000
# Fields transformers reads as nested objects (a string there fails deep inside it with an AttributeError).
OBJECT_FIELDS = ("text_config", "vision_config", "audio_config", "quantization_config", "rope_scaling",
                 "rope_parameters")
# quantization_config.quant_method of a released checkpoint -> our weight format id
NATIVE_FORMATS = {"fp8": "fp8", "mxfp4": "mxfp4", "compressed-tensors": "", "gptq": "int4", "awq": "int4",
                  "bitsandbytes": "nf4"}


def _transformers_config(cfg: dict):
    """The config through transformers' own configuration class for its model_type (defaults, nested text_config,
    attribute aliases), or None when transformers does not know the model_type. No code from the Hub runs."""
    model_type = cfg.get("model_type")
    if not isinstance(model_type, str):
        return None
    from transformers import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        return None
    for key in OBJECT_FIELDS:   # transformers calls .to_dict()/.get() on these: a string is a malformed config
        if cfg.get(key) is not None and not isinstance(cfg[key], dict):
            raise RecommenderInputError(f"config.json field {key} must be an object ({{...}}), got "
                                        f"{shorten(cfg[key])}")
    try:
        conf = CONFIG_MAPPING[model_type].from_dict(dict(cfg))
        text = conf.get_text_config()
        if not hasattr(text, "to_dict"):
            raise RecommenderInputError("config.json holds no text model configuration")
        return text
    except RecursionError:
        raise RecommenderInputError("config.json is nested too deeply to be a model config") from None
    except RecommenderInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure inside transformers' parser is bad user input here
        raise RecommenderInputError(_transformers_error(model_type, exc, cfg)) from None


def _transformers_error(model_type: str, exc: Exception, cfg: dict) -> str:
    """transformers' validation failure as one line naming the config.json field.

    Its strict-dataclass validators raise "Validation error for field 'X':\n    TypeError: ..." or "Class validation
    error for validator 'validate_...':\n    ValueError: ..."; the inner message is kept, the wrapper dropped, and the
    field is the quoted one or, for a class validator, the config keys its message names (`hidden size` or
    `hidden_size` both name hidden_size)."""
    text = str(exc.args[0]) if exc.args else str(exc)
    field_match = re.match(r"\s*Validation error for field '([^']+)'", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    inner = lines[-1] if len(lines) > 1 else (lines[0] if lines else type(exc).__name__)
    inner = re.sub(r"^(TypeError|ValueError|KeyError|AttributeError):\s*", "", inner)
    if field_match:
        fields = [field_match.group(1)]
    elif isinstance(exc, ZeroDivisionError):   # a count transformers divides by was given as 0
        fields = [k for k, v in _flatten_text_config(cfg).items() if v == 0 and type(v) is int]
        inner = "a field it divides by is 0; give a positive value"
    else:
        low = inner.lower()
        fields = [k for k in cfg if isinstance(k, str) and len(k) > 3 and (k.lower() in low
                                                                            or k.lower().replace("_", " ") in low)]
    where = f"config.json field {', '.join(fields[:3])}" if fields else "config.json"
    inner = inner if len(inner) <= 200 else inner[:197] + "..."
    return f"{where} does not fit transformers' {model_type} configuration: {inner}"


@lru_cache(maxsize=16)
def _meta_param_count(config_json: str) -> int:
    """Exact parameter count of the model built on the meta device (accelerate's init_empty_weights): no memory,
    no weights downloaded. Tied embeddings are tied before counting. Raises ValueError when it cannot be built."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    text = _transformers_config(json.loads(config_json))
    if text is None:
        raise ValueError("unknown model_type")
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(text)
    model.tie_weights()
    return int(sum(p.numel() for p in model.parameters()))


def _count_on_meta(cfg: dict, layers: int, experts: int) -> tuple[int, str]:
    """(exact count, note) or (0, note saying why our own formula is used)."""
    if layers > META_MAX_LAYERS or layers * max(experts, 1) > META_MAX_EXPERT_MODULES:
        return 0, "too large to build on the meta device: parameters counted by our own formula"
    try:
        return _meta_param_count(json.dumps(cfg, sort_keys=True, default=str)), \
            "parameters counted exactly on the meta device (transformers + accelerate)"
    except Exception as exc:  # noqa: BLE001 - fall back to our formula for any architecture transformers cannot build
        return 0, f"transformers could not build it ({shorten(str(exc), 80)}): parameters counted by our own formula"


def model_from_hf_config(config: dict | str | bytes, name: str = "custom (config.json)",
                         exact_count: bool = True) -> ModelSpec:
    """Build a ModelSpec from a parsed or raw HF config.json.

    The config is read through transformers' configuration class for its `model_type` (defaults such as
    `tie_word_embeddings`, a nested `text_config`, attribute aliases), and with `exact_count` the parameters are
    counted on the meta device; an architecture transformers does not know falls back to the fields as given and
    our own count, with a note in `count_note`. Multi-head latent attention, shared experts, leading dense layers,
    sliding-window layer patterns, multi-token-prediction modules and a native FP8/MXFP4 checkpoint are read.
    Raises RecommenderInputError naming the field when the config is malformed.
    """
    raw = _parse_config(config)
    text = _transformers_config(raw)
    if text is not None:
        cfg = {**{k: v for k, v in raw.items() if k != "text_config"}, **text.to_dict()}
        note = f"read through transformers' {type(text).__name__}"
    else:
        cfg = _flatten_text_config(raw)
        note = f"model_type {shorten(raw.get('model_type'))} is unknown to transformers: fields read as given"
    layers = _positive_int(cfg, "num_hidden_layers", "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    hidden = _positive_int(cfg, "hidden_size", "hidden_size", "n_embd", "d_model", "dim")
    heads = _positive_int(cfg, "num_attention_heads", "num_attention_heads", "n_head", "num_heads", "n_heads")
    if cfg.get("multi_query") is True:              # Falcon-7B / GPTBigCode style MQA
        kv_default = 1
    else:
        kv_default = heads
    kv_heads = _positive_int(cfg, "num_key_value_heads", "num_key_value_heads", "n_head_kv", "num_kv_heads",
                             "multi_query_group_num", default=kv_default)
    if cfg.get("multi_query") is True and not cfg.get("new_decoder_architecture"):
        kv_heads = 1   # Falcon-7B: one shared K/V head whatever num_kv_heads says (transformers' Falcon attention)
    kv_lora = _optional_int(cfg, "kv_lora_rank", "kv_lora_rank", missing=0)
    rope_dim = _optional_int(cfg, "qk_rope_head_dim", "qk_rope_head_dim", missing=0)
    nope_dim = _optional_int(cfg, "qk_nope_head_dim", "qk_nope_head_dim", missing=0)
    head_dim = nope_dim + rope_dim if kv_lora and (nope_dim + rope_dim) else \
        _positive_int(cfg, "head_dim", "head_dim", default=max(1, hidden // heads))
    ffn = _positive_int(cfg, "intermediate_size", "intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size",
                        "moe_intermediate_size", default=4 * hidden)
    vocab = _positive_int(cfg, "vocab_size", "vocab_size", "padded_vocab_size")
    context = _positive_int(cfg, "max_position_embeddings", "max_position_embeddings", "n_positions",
                            "max_seq_len", "seq_length", "n_ctx", default=4096)
    experts = _optional_int(cfg, "num_local_experts", "num_local_experts", "num_experts", "n_routed_experts",
                            missing=1)
    active = _optional_int(cfg, "num_experts_per_tok", "num_experts_per_tok", "num_experts_per_token", "moe_topk",
                           "experts_per_token", missing=1)
    if active > experts:
        given = next((k for k in ("num_local_experts", "num_experts", "n_routed_experts") if k in cfg), None)
        if given is not None and experts == 1 and not _first(cfg, given):
            raise RecommenderInputError(f"config.json field {given} is {shorten(cfg[given])}: a mixture of experts "
                                        f"needs {given} >= 1 (and at least num_experts_per_tok, {active})")
        raise RecommenderInputError(f"config.json field num_experts_per_tok ({active}) exceeds the expert count "
                                    f"({given or 'num_local_experts'} = {experts})")
    moe_ffn = _optional_int(cfg, "moe_intermediate_size", "moe_intermediate_size", missing=0) if experts > 1 else 0
    shared = _optional_int(cfg, "n_shared_experts", "n_shared_experts", missing=0) if experts > 1 else 0
    shared_width = _optional_int(cfg, "shared_expert_intermediate_size", "shared_expert_intermediate_size",
                                 missing=0) if experts > 1 else 0
    if shared_width and not shared:   # Qwen-MoE: one wide shared expert, counted in routed-expert widths
        shared = max(1, round(shared_width / (moe_ffn or ffn)))
    first_dense = _optional_int(cfg, "first_k_dense_replace", "first_k_dense_replace", missing=0) \
        if experts > 1 else 0
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
    tied_default = model_type in ("gpt2", "gpt_bigcode", "opt", "falcon", "gemma", "gemma2")
    tied = bool(cfg.get("tie_word_embeddings", tied_default))
    quant = raw.get("quantization_config") if isinstance(raw.get("quantization_config"), dict) else {}
    native = NATIVE_FORMATS.get(str(quant.get("quant_method", "")).lower(), "")
    counted, count_note = _count_on_meta(raw, layers, experts) if exact_count and text is not None else \
        (0, "parameters counted by our own formula")
    label = " ".join(str(cfg.get("_name_or_path") or raw.get("_name_or_path") or name).split())
    try:
        return ModelSpec(id="custom-config", name=str(label)[:80], layers=layers, hidden=hidden, heads=heads,
                         kv_heads=kv_heads, head_dim=head_dim, ffn=ffn, vocab=vocab, context=context,
                         ffn_gated=gated, experts=experts, experts_active=active,
                         sliding_window=window, sliding_window_layers=window_share, tied_embeddings=tied,
                         learned_positions=positions, source="user config.json", kv_lora_rank=kv_lora,
                         q_lora_rank=_optional_int(cfg, "q_lora_rank", "q_lora_rank", missing=0),
                         qk_rope_head_dim=rope_dim, qk_nope_head_dim=nope_dim,
                         v_head_dim=_optional_int(cfg, "v_head_dim", "v_head_dim", missing=0),
                         shared_experts=shared, moe_ffn=moe_ffn, first_dense_layers=first_dense,
                         dense_ffn=ffn if experts > 1 and first_dense else 0,
                         mtp_layers=_optional_int(cfg, "num_nextn_predict_layers", "num_nextn_predict_layers",
                                                  missing=0),
                         native_weights=native, counted_params=counted, count_note=f"{note}; {count_note}")
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
