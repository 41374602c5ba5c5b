"""One sentence per technique in a plan: why it is there, with the numbers behind it."""

from __future__ import annotations

import math

from . import costs
from .estimate import expert_layout, parallel_layout
from .formats import kv_bytes_per_element, weight_format
from .techniques import techniques


def _gib(x: float) -> str:
    return f"{x:.1f} GiB"


def explain(req, plan, all_plans) -> list[str]:
    """Reasons for each technique of `plan`, comparing with the plain 16-bit stack where useful."""
    model, gpu = req.model, req.gpu
    table = techniques()
    out = []
    for tid in plan.stack:
        t = table[tid]
        q = f"quality: {t.quality_tier}" + (f", {t.quality_delta_pct:+.1f}% ppl ({t.quality_note})"
                                             if t.quality_delta_pct else "")
        if t.category == "weights":
            fmt = weight_format(t.params["weights"]["format"])
            full = costs.weight_bytes(model, 16)["total"] / costs.GIB
            now = costs.weight_bytes(model, fmt.bits_per_weight, fmt.quantizes_embeddings)["total"] / costs.GIB
            if fmt.bits_per_weight >= 16:
                out.append(f"{t.name}: weights stay at 16 bits ({_gib(full)}); no quantization loss.")
            else:
                out.append(f"{t.name}: weights {_gib(full)} -> {_gib(now)} ({fmt.bits_per_weight:g} bits/weight "
                           f"incl. scales; embeddings/lm_head kept 16-bit unless GGUF); {q}.")
        elif t.category == "kv_precision":
            per_tok = costs.kv_bytes_per_token(model, kv_bytes_per_element(plan.kv)) / 2**10
            out.append(f"{t.name}: {per_tok:.0f} KiB of KV per token ({model.attention_kind}, {model.kv_heads} KV heads) "
                       f"instead of {costs.kv_bytes_per_token(model, 2) / 2**10:.0f} KiB; {q}.")
        elif t.category == "kv_eviction":
            out.append(f"{t.name}: caps the KV cache for long contexts; {q}.")
        elif tid == "vllm":
            out.append("vLLM/PagedAttention: paged KV blocks waste under 4% (Kwon et al.), continuous batching; "
                       "the engine reserves 90% of GPU memory up front.")
        elif tid == "flashattention":
            out.append("FlashAttention: exact attention without materialising the s x s score matrix "
                       f"({gpu.name} supports FlashAttention-2).")
        elif t.category == "decoding":
            out.append(f"{t.name}: {_decoding_reason(tid, plan)}; {q}.")
        elif t.category == "offload":
            out.append(f"{t.name}: {_gib(plan.offloaded_gib)} of weights live in CPU RAM and cross PCIe "
                       f"(~{gpu.link_gbps:g} GB/s) every token; slow but it fits.")
        elif tid == "tensor-parallel" and "expert-parallel" in plan.stack:
            continue   # the expert-parallel sentence says how attention is split
        elif tid == "tensor-parallel":
            _, tp, pp = parallel_layout(plan.config)
            if pp > 1:
                out.append(f"Tensor parallel over the {tp} GPUs of each node, a pipeline of {pp} stages across nodes: "
                           f"each GPU holds 1/{tp * pp} of the weights; two all-reduces per layer inside a node and "
                           "one activation hop per stage boundary add latency.")
            else:
                out.append(f"Tensor parallel over {tp} GPUs: each reads 1/{tp} of the weights per token; two "
                           "all-reduces per layer add latency.")
        elif tid == "expert-parallel":
            tp, dp, ep = expert_layout(plan.config)
            out.append(f"Expert parallel over {ep} GPUs: each holds {math.ceil(model.experts / ep)} of the "
                       f"{model.experts} routed experts per MoE layer, attention stays tensor parallel over {tp}"
                       + (f" in each of {dp} nodes" if dp > 1 else "")
                       + "; every MoE layer adds two all-to-all token exchanges (dispatch, combine).")
        elif t.category == "pruning":
            out.append(f"{t.name}: 2:4 sparsity stores ~56% of the 16-bit weight bytes; {q}.")
        elif t.category in ("finetune", "optimizer", "activation_memory", "sharding"):
            out.append(f"{t.name}: {_training_reason(tid, plan)}")
        else:
            out.append(f"{t.name}.")
    if model.attention_kind != "MHA" and req.workload == "inference":
        ratio = model.heads // model.kv_heads
        out.append(f"The model uses {model.attention_kind} ({model.heads} query / {model.kv_heads} KV heads): its KV "
                   f"cache is already {ratio}x smaller than multi-head attention.")
    if plan.decode_ms_per_token is not None:
        out.append(f"Predicted {plan.decode_ms_per_token:.1f} ms/token ({1e3 / plan.decode_ms_per_token:.0f} tok/s per "
                   f"sequence), TTFT {plan.ttft_ms:.0f} ms, {plan.per_gpu_memory_gib:.1f} of "
                   f"{plan.capacity_gib:.1f} GiB per GPU.")
    return out


def _decoding_reason(tid: str, plan) -> str:
    s = plan.settings
    if tid == "speculative-decoding":
        expected = costs.speculative_expected_tokens(0.7, s["draft_len"])
        return (f"a draft ~{s['draft_fraction'] * 100:.0f}% of the target proposes {s['draft_len']} tokens; at "
                f"acceptance 0.7 the target accepts {expected:.2f} tokens per step (Leviathan et al.); "
                "gains vanish at large batch where verification becomes compute-bound")
    if tid == "medusa":
        return f"extra heads propose tokens; ~{s['tokens_per_step']:g} accepted per step as reported for Vicuna-7B"
    return "copies spans from the prompt; pays off only when the output repeats the input (RAG, editing)"


def _training_reason(tid: str, plan) -> str:
    b = plan.settings.get("breakdown_gib", {})
    notes = {
        "full-finetune": f"all weights train: gradients {b.get('gradients', 0):.1f} GiB + optimizer "
                         f"{b.get('optimizer', 0):.1f} GiB (16 bytes/param with AdamW).",
        "lora": f"only rank-{plan.settings.get('lora_rank')} adapters train; frozen bf16 base "
                f"{b.get('weights', 0):.1f} GiB.",
        "qlora": f"frozen base in 4-bit NF4 ({b.get('weights', 0):.1f} GiB incl. adapters); adapters train in 16/32-bit.",
        "lomo": "fuses the update into backward, so no gradient or optimizer state is kept.",
        "mezo": "two forward passes per step, no backward: inference-level memory, many more steps.",
        "gradient-checkpointing": f"stores only layer inputs; activations {b.get('activations', 0):.1f} GiB, "
                                  "~33% more compute.",
        "adam-8bit": "optimizer state in 8 bits: 2 bytes/param instead of 8.",
        "paged-adam-8bit": "8-bit state, paged to CPU on memory spikes.",
        "zero": f"shards optimizer/gradients/weights over {plan.num_gpus} GPUs ({plan.settings.get('sharding')}).",
        "fsdp": f"fully shards parameters, gradients and optimizer over {plan.num_gpus} GPUs.",
    }
    return notes.get(tid, "")
