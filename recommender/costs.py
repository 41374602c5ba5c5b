"""Cost-model formulas. Each is a small function of plain numbers with its source next to it.

Units: bytes, seconds, FLOPs, bytes/s, FLOP/s unless a name says otherwise.
Notation and derivations: docs/cost_model.md §1 (L layers, h hidden, d head_dim, b batch, s prompt).
"""

from __future__ import annotations

import math

from .models import ModelSpec

GIB = 2**30
GB = 1e9

# CUDA context + framework workspace: gpu_poor budgets 650 MB (docs/cost_model.md §2.4: 0.5-1 GB reported).
CUDA_CONTEXT_BYTES = 650 * 2**20
# vLLM pre-allocates this share of device memory (gpu_memory_utilization default, vLLM docs; docs/cost_model.md §2.5).
VLLM_MEMORY_UTILIZATION = 0.9
# Per-collective latency on NVLink-class links: llm-analysis gpu configs use 8 microseconds.
ALLREDUCE_LATENCY_S = 8e-6
# Training MFU before calibration: PaLM reports 46.2% model FLOPs utilisation (Chowdhery et al. 2022, Table 3);
# we use a round 40% for fine-tuning stacks that are less tuned than PaLM's.
TRAIN_MFU_PRIOR = 0.40
# Loss over the vocabulary in a transformers training step, per logit: the bf16 logits (2 B), their fp32 upcast
# (4 B), the fp32 log-softmax (4 B), its gradient (4 B) and the fp32 gradient of the upcast (4 B). With PEFT's fp32
# upcast below, the model then matches the HF + FA2 QLoRA column of Unsloth's Llama-3.1-8B table within 21% at
# 12 GB and 6% from 16 GB up (docs/cost_model.md §2.7; tests/test_recommender_field_cases.py).
TRAIN_LOGITS_BYTES_PER_ELEMENT = 2 + 4 + 4 + 4 + 4
# PEFT's prepare_model_for_kbit_training casts every parameter bitsandbytes left unquantized (embeddings, lm_head,
# norms) to fp32 (peft/utils/other.py), so QLoRA keeps them at 4 bytes per parameter. The fp32 embedding output then
# promotes the residual stream to fp32 (bf16 + fp32 -> fp32), so each checkpointed layer input costs 4 bytes per
# element too: with it Llama-3.3-70B's longest QLoRA context on 80 GB comes out within 4% of Unsloth's table.
KBIT_UPCAST_BYTES = 4
# torch's default (foreach) AdamW step allocates one fp32 intermediate per trainable parameter
# (torch._foreach_sqrt of the second moments; torch/optim/optimizer.py: "~ sizeof(params) more peak memory" than the
# for-loop version). It is live after backward, when the activations are gone. DeepSpeed's fused Adam (ZeRO) and
# bitsandbytes' 8-bit Adam update in place and have none.
FOREACH_ADAMW_STEP_BYTES = 4
# Prefill MFU before calibration: TensorRT-LLM Llama-2-7B A100 measured 133 ms at s=2048 vs a ~100 ms roofline
# (LLM-Viewer issue #4; docs/cost_model.md §3.5) -> about 0.75.
PREFILL_MFU_PRIOR = 0.75


# ------------------------------------------------------------------ memory: weights
def weight_bytes(model: ModelSpec, bits_per_weight: float, quantizes_embeddings: bool = False,
                 body_factor: float = 1.0) -> dict[str, float]:
    """Resident weight bytes: quantized blocks + 16-bit embeddings/lm_head (docs/cost_model.md §2.1).

    Embeddings and lm_head usually stay 16-bit (LLM.int8 and GPTQ/AWQ leave lm_head unconverted); GGUF
    block formats quantize them too. body_factor < 1 models 2:4 sparse storage.
    """
    body = model.body_params * bits_per_weight / 8 * body_factor
    emb_bits = bits_per_weight if quantizes_embeddings else 16
    embeddings = (model.embedding_params + model.head_params + model.hidden) * emb_bits / 8
    return {"body": body, "embeddings": embeddings, "total": body + embeddings}


def weight_read_bytes_per_step(model: ModelSpec, bits_per_weight: float, batch: int,
                               quantizes_embeddings: bool = False, body_factor: float = 1.0) -> float:
    """Weight bytes streamed from memory per decode step (MoE: only the experts the batch touches).

    A token touches k of E routed experts; a batch of b independent tokens touches a fraction
    1 - (1 - k/E)^b of them per layer (docs/cost_model.md §3.1: the union approaches all experts). Shared experts,
    attention and dense layers are read every step.
    """
    routed = model.routed_expert_params
    always = model.body_params - routed
    expert_share = 1.0 - (1.0 - model.experts_active / model.experts) ** max(batch, 1)
    body = (always + routed * expert_share) * bits_per_weight / 8 * body_factor
    head_bits = bits_per_weight if quantizes_embeddings else 16
    return body + model.lm_head_read_params * head_bits / 8


def routed_expert_bytes_per_gpu(model: ModelSpec, bits_per_weight: float, ep: int, body_factor: float = 1.0) -> float:
    """Routed-expert bytes resident on the fullest of `ep` expert-parallel GPUs: ceil(E/ep) experts of every MoE
    layer (E/ep when ep divides E; DeepSpeed-MoE, Rajbhandari et al. 2022, arXiv 2201.05596, places whole experts
    on each GPU of the expert-parallel group; docs/cost_model.md §3.7)."""
    return model.moe_layers * math.ceil(model.experts / ep) * model.ffn_params_per_expert * bits_per_weight / 8 \
        * body_factor


def expert_parallel_read_bytes(model: ModelSpec, bits_per_weight: float, batch: int, tp: int, ep: int,
                               quantizes_embeddings: bool = False, body_factor: float = 1.0) -> float:
    """Weight bytes the busiest GPU streams per decode step under expert parallelism (docs/cost_model.md §3.7).

    Attention, shared experts, dense layers and the output head are tensor parallel over `tp` GPUs and read every
    step (1/tp each). A batch of b tokens touches D = E * (1 - (1 - k/E)^b) distinct routed experts per layer
    (§3.1). Assumption: routing is balanced (DeepSeek-V3 keeps it so with its bias-based balancing and redundant
    experts, arXiv 2412.19437 sec. 2.1.2 and 3.4), so each of the `ep` GPUs reads D/ep experts, except that the
    busiest GPU reads at least one whole expert (a touched expert lives on some GPU) and at most the ceil(E/ep) it
    holds; the step waits for the busiest GPU.
    """
    bytes_per_weight = bits_per_weight / 8 * body_factor
    always = (model.body_params - model.routed_expert_params) * bytes_per_weight
    head_bits = bits_per_weight if quantizes_embeddings else 16
    head = model.lm_head_read_params * head_bits / 8
    touched = model.experts * (1.0 - (1.0 - model.experts_active / model.experts) ** max(batch, 1))
    busiest = min(math.ceil(model.experts / ep), max(touched / ep, 1.0))
    return (always + head) / tp + model.moe_layers * busiest * model.ffn_params_per_expert * bytes_per_weight


# ------------------------------------------------------------------ memory: KV cache
def kv_bytes_per_token(model: ModelSpec, kv_bytes: float) -> float:
    """KV per token over all layers: L * 2 * n_kv * d * bytes (GQA shrinks n_kv); MLA keeps one latent of
    kv_lora_rank + rope dims per layer instead (docs/cost_model.md §2.2)."""
    return model.layers * model.kv_elements_per_token_layer * kv_bytes


def kv_cache_bytes(model: ModelSpec, kv_bytes: float, context_tokens: float, batch: int,
                   keep_fraction: float = 1.0, keep_tokens: float | None = None) -> float:
    """KV cache for `batch` sequences of `context_tokens`.

    Sliding-window layers cap their tokens at the window (Mistral v0.1, Gemma-2/3 local layers); eviction policies
    keep a fraction (H2O, Scissorhands) or a fixed budget (StreamingLLM).
    """
    kept = context_tokens * keep_fraction
    if keep_tokens is not None:
        kept = min(kept, keep_tokens)
    per_layer_token = model.kv_elements_per_token_layer * kv_bytes
    window_layers = model.layers * model.sliding_window_layers if model.sliding_window else 0.0
    full_layers = model.layers - window_layers
    window_tokens = min(kept, model.sliding_window) if model.sliding_window else 0.0
    return batch * per_layer_token * (full_layers * kept + window_layers * window_tokens)


# ------------------------------------------------------------------ memory: activations
# Eager attention keeps the fp16 scores, the fp32 softmax output and its fp16 cast alive together: 2 + 4 + 2 bytes
# per score element (transformers' eager_attention_forward: softmax(..., dtype=float32).to(query.dtype)). AutoAWQ's
# fused attention (awq/modules/fused/attn.py, softmax(scores.float())) briefly holds one more fp32 copy, 10 bytes;
# with 8 the AutoAWQ peak of tests/test_recommender_field_cases.py comes out 1.5% high, so the common value is kept.
EAGER_SCORE_BYTES_PER_ELEMENT = 8


def attention_scores_bytes(batch: int, heads: int, seq: int,
                           bytes_per: float = EAGER_SCORE_BYTES_PER_ELEMENT) -> float:
    """Materialised attention scores of one layer without FlashAttention: b * n_q * s^2 * B (docs/cost_model.md §2.3),
    B = EAGER_SCORE_BYTES_PER_ELEMENT by default (fp16 scores + fp32 softmax + fp16 cast)."""
    return batch * heads * seq * seq * bytes_per


def inference_activation_bytes(model: ModelSpec, batch: int, seq: int, flash: bool, bytes_per: float = 2,
                               chunk_tokens: int | None = None) -> float:
    """Peak transient activations during prefill, in bytes (docs/cost_model.md §2.3).

    Two phases never overlap, so the peak is the larger of them. Inside a layer (one layer live at a time): hidden
    states in/out plus the FFN intermediates, n*(2h + 2F)*B over the n = b*s tokens of one pass (an engine that
    chunks the prompt, `chunk_tokens`, passes at most that many), and without FlashAttention the b*n_q*s^2 score
    matrix (attention_scores_bytes; with it attention is O(n*h), Dao et al. 2022). After the last layer: the
    logits of the last position of each sequence in fp32 (b*V*4 bytes). Engines compute no others at prefill;
    transformers' generate asks for one position (logits_to_keep=1) since v4.45, where a plain forward over the
    prompt returned b*s*V.
    """
    ffn_width = (model.moe_ffn or model.ffn) * (model.experts_active + model.shared_experts) if model.is_moe \
        else model.ffn
    tokens = batch * seq if chunk_tokens is None else min(batch * seq, chunk_tokens)
    hidden_states = tokens * (2 * model.hidden + 2 * ffn_width) * bytes_per
    scores = 0.0 if flash else attention_scores_bytes(batch, model.heads, seq)
    logits = batch * model.vocab * 4
    return max(hidden_states + scores, logits)


# ------------------------------------------------------------------ memory: training
def training_activation_bytes(model: ModelSpec, batch: int, seq: int, checkpointing: bool, flash: bool,
                              residual_bytes: float = 2) -> float:
    """Activations kept for backward, in bytes (Korthikanti et al. 2022, eq. 2; fp16, no tensor parallel).

    Per layer s*b*h*(34 + 5*a*s/h) bytes; FlashAttention/selective recompute removes the 5*a*s/h term;
    full checkpointing keeps only each layer's s*b*h input, `residual_bytes` per element (2 in bf16; 4 under QLoRA,
    where PEFT's fp32 embeddings make the residual stream fp32, see KBIT_UPCAST_BYTES), plus one layer recomputed
    at a time; the loss adds TRAIN_LOGITS_BYTES_PER_ELEMENT per logit.
    """
    sbh = seq * batch * model.hidden
    per_layer = sbh * 34 + (0 if flash else 5 * model.heads * seq * seq * batch)
    if checkpointing:
        stored = model.layers * residual_bytes * sbh + per_layer
    else:
        stored = model.layers * per_layer
    logits = batch * seq * model.vocab * TRAIN_LOGITS_BYTES_PER_ELEMENT
    return stored + logits


def lora_params(model: ModelSpec, rank: int) -> float:
    """Trainable LoRA parameters on every linear layer: sum of r*(d_in + d_out) (Hu et al. 2021)."""
    h, q, kv = model.hidden, model.heads * model.head_dim, model.kv_heads * model.head_dim
    attention = rank * ((h + q) + 2 * (h + kv) + (q + h))
    ffn_mats = 3 if model.ffn_gated else 2
    ffn = rank * ffn_mats * (h + model.ffn) * model.experts
    return model.layers * (attention + ffn)


# ------------------------------------------------------------------ time: roofline
def decode_flops_per_step(active_params: float, batch: int, context: float, model: ModelSpec) -> float:
    """2 FLOPs per active parameter per token, plus attention over the context: 4*L*n_q*d*ctx per token."""
    attention = 4 * model.layers * model.heads * model.head_dim * context
    return batch * (2 * active_params + attention)


def prefill_flops(active_params: float, batch: int, seq: int, model: ModelSpec) -> float:
    """2*P*b*s + 2*L*b*s^2*n_q*d (causal QK^T and PV; docs/cost_model.md §3.2)."""
    return 2 * active_params * batch * seq + 2 * model.layers * batch * seq * seq * model.heads * model.head_dim


def compute_bound_time(flops: float, peak_flops: float, efficiency: float = 1.0) -> float:
    return flops / (peak_flops * efficiency)


def ridge_batch(peak_flops: float, bandwidth_bytes_s: float, bytes_per_weight: float) -> float:
    """Decode batch above which weights stop being the bottleneck: b* = Pi * B_w / (2 * BW) (docs/cost_model.md §3.6)."""
    return peak_flops * bytes_per_weight / (2 * bandwidth_bytes_s)


def allreduce_time(message_bytes: float, gpus: int, link_bytes_s: float) -> float:
    """Ring all-reduce: 2*(N-1)/N * message / link bandwidth + per-call latency (Patarasuk & Yuan 2009)."""
    if gpus <= 1:
        return 0.0
    return 2 * (gpus - 1) / gpus * message_bytes / link_bytes_s + ALLREDUCE_LATENCY_S


def tensor_parallel_comm_time(model: ModelSpec, batch: int, tokens: int, gpus: int, link_bytes_s: float) -> float:
    """Two all-reduces of b*tokens*h activations per layer per step (Megatron-LM, Shoeybi et al. 2019)."""
    message = batch * tokens * model.hidden * 2
    return 2 * model.layers * allreduce_time(message, gpus, link_bytes_s)


def pipeline_hops_time(model: ModelSpec, batch: int, tokens: int, stages: int, link_bytes_s: float) -> float:
    """Pipeline parallelism across nodes: each of the stages-1 boundaries sends b*tokens*h 16-bit activations once
    per step, at the inter-node bandwidth plus one message latency (docs/cost_model.md §3.3)."""
    if stages <= 1:
        return 0.0
    return (stages - 1) * (batch * tokens * model.hidden * 2 / link_bytes_s + ALLREDUCE_LATENCY_S)


def all_to_all_time(bytes_per_gpu: float, ep: int, gpus_per_node: int, link_bytes_s: float,
                    internode_bytes_s: float) -> float:
    """One all-to-all over `ep` GPUs in which each GPU sends `bytes_per_gpu`, spread evenly over all of them.

    The share bound for other GPUs of its own node crosses the GPU link, the share bound for other nodes the
    inter-node link; the two are added (DeepSeek-V3 sends over InfiniBand, then forwards over NVLink, arXiv
    2412.19437 sec. 3.2.2; adding them is an upper bound when the two overlap), plus one message latency.
    """
    if ep <= 1:
        return 0.0
    local = min(ep, gpus_per_node)
    intra = bytes_per_gpu * (local - 1) / ep
    inter = bytes_per_gpu * (ep - local) / ep
    return intra / link_bytes_s + inter / internode_bytes_s + ALLREDUCE_LATENCY_S


def expert_parallel_comm_time(model: ModelSpec, batch: int, tokens: int, tp: int, ep: int, gpus_per_node: int,
                              link_bytes_s: float, internode_bytes_s: float) -> float:
    """Communication of one step under expert parallelism (docs/cost_model.md §3.7).

    Attention stays tensor parallel inside a node: one all-reduce per layer of its replica's b/dp sequences, one
    more per dense-FFN layer (Megatron-LM). Each MoE layer instead exchanges tokens twice, dispatch to the experts
    and combine back (GShard, Lepikhin et al. 2020, arXiv 2006.16668; DeepSpeed-MoE, arXiv 2201.05596): each of
    the b * tokens tokens sends its h 16-bit activations to each of its k experts, the senders spread over all ep
    GPUs.
    """
    dp = max(ep // tp, 1)
    message = batch / dp * tokens * model.hidden * 2
    dense_layers = model.layers - model.moe_layers
    allreduces = (model.layers + dense_layers) * allreduce_time(message, tp, link_bytes_s)
    per_gpu = batch * tokens * model.experts_active * model.hidden * 2 / ep
    exchange = all_to_all_time(per_gpu, ep, gpus_per_node, link_bytes_s, internode_bytes_s)
    return allreduces + 2 * model.moe_layers * exchange


def offload_time(offloaded_bytes: float, link_bytes_s: float) -> float:
    """Streaming offloaded weights over PCIe each step (FlexGen; docs/cost_model.md §2.6)."""
    return offloaded_bytes / link_bytes_s


def speculative_expected_tokens(acceptance_rate: float, draft_len: int) -> float:
    """Expected tokens per target step: (1 - a^(g+1)) / (1 - a) (Leviathan et al. 2023, eq. 1)."""
    if acceptance_rate >= 1.0:
        return float(draft_len + 1)
    return (1 - acceptance_rate ** (draft_len + 1)) / (1 - acceptance_rate)


def speculative_time_per_token(target_step_s: float, draft_step_s: float, verify_step_s: float,
                               acceptance_rate: float, draft_len: int) -> float:
    """(g draft steps + one verification of g+1 tokens) / expected tokens (Leviathan et al. 2023, Thm 3.8)."""
    expected = speculative_expected_tokens(acceptance_rate, draft_len)
    return (draft_len * draft_step_s + verify_step_s) / expected


def training_step_flops(active_params: float, tokens: int, method: str, checkpointing: bool) -> float:
    """6*P*tokens for full training (Kaplan et al. 2020); +2*P with recompute. LoRA skips weight gradients
    (~4*P); MeZO runs two forward passes (4*P, no backward)."""
    per_token = {"full": 6, "lomo": 6, "lora": 4, "qlora": 4, "mezo": 4}[method]
    if checkpointing and method != "mezo":
        per_token += 2
    return per_token * active_params * tokens
