"""Export a plan as something that runs as copied: `vllm serve`, SGLang, `llama-server`, transformers, PEFT, JSON.

Each export implements the plan it comes from (weights, KV cache, parallelism, offload split, speculative decoding)
with published checkpoints (data/checkpoints.yaml) and documented options (data/engine_options.yaml, which the tests
check every export against). When an engine cannot run a plan as estimated, or no published checkpoint exists for
its weight format, that export is left out and `export_notes` says why: an export never holds a placeholder.
"""

from __future__ import annotations

import json
import math
import shlex
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .estimate import engine_memory_share, expert_layout, parallel_layout
from .models import ModelSpec

if TYPE_CHECKING:
    from .planner import Plan

DATA_DIR = Path(__file__).parent / "data"
GGUF_TYPE = {"q8_0": "Q8_0", "q6_k": "Q6_K", "q5_k_m": "Q5_K_M", "q5_0": "Q5_0", "q4_k_m": "Q4_K_M", "q4_0": "Q4_0",
             "iq4_xs": "IQ4_XS", "q3_k_m": "Q3_K_M", "iq3_m": "IQ3_M", "iq3_xxs": "IQ3_XXS", "q2_k": "Q2_K",
             "iq2_m": "IQ2_M", "iq2_xxs": "IQ2_XXS"}
LLAMA_CPP_KV = {"int8": "q8_0", "int4": "q4_0", "fp16": "f16"}
SPEC_DRAFT_TOKENS_NGRAM = 4      # vLLM's n-gram example: num_speculative_tokens 4, prompt_lookup_max 4 (spec_decode docs)
# Engines that quantize these formats while loading the 16-bit checkpoint (no pre-quantized repository needed).
ON_LOAD = {"vllm": {"fp8": "fp8", "nf4": "bitsandbytes"}, "sglang": {"fp8": "fp8"}}
SIXTEEN_BIT = ("fp16", "bf16", "fp32")


@lru_cache(maxsize=1)
def checkpoints() -> dict[str, dict]:
    """Published checkpoints per model preset id (data/checkpoints.yaml)."""
    return yaml.safe_load((DATA_DIR / "checkpoints.yaml").read_text()) or {}


@lru_cache(maxsize=1)
def engine_options() -> dict[str, dict]:
    """Documented options per engine entry point (data/engine_options.yaml)."""
    return yaml.safe_load((DATA_DIR / "engine_options.yaml").read_text()) or {}


def _known(model: ModelSpec) -> dict:
    return checkpoints().get(model.id, {})


def draft_model(model: ModelSpec) -> str | None:
    """A published small model with the same tokenizer, for draft-model speculative decoding, or None."""
    return _known(model).get("draft")


def medusa_heads(model: ModelSpec) -> str | None:
    """Published Medusa heads trained for this model, or None."""
    return _known(model).get("medusa")


def _int4_kind(stack) -> str:
    return "gptq" if any(t.startswith("gptq") for t in stack) else "awq"


def weights_repo(model: ModelSpec, plan: Plan, engine: str) -> str | None:
    """The repository that holds the plan's weights for `engine`, or None when none is published."""
    return _repo_for(model, plan.weights, tuple(plan.stack), engine)


def _repo_for(model: ModelSpec, fmt: str, stack: tuple[str, ...], engine: str) -> str | None:
    if engine == "llama.cpp":   # llama-server -hf takes a GGUF repository and one of its quantization types
        return _known(model).get("gguf") if fmt in GGUF_TYPE else None
    if fmt == model.native_weights:   # the publisher's own low-precision release
        return model.hf_id or None
    if fmt in SIXTEEN_BIT or fmt in ON_LOAD.get(engine, {}) or fmt in ("int8-bnb", "nf4") and engine == "hf":
        return model.hf_id or None
    if fmt in ("int4", "int4-g64", "int4-g32", "awq-marlin", "gptq-marlin", "awq-gemv"):
        return _known(model).get(_int4_kind(stack))
    if fmt in GGUF_TYPE:
        return _known(model).get("gguf")
    return None


def _spec_config(model: ModelSpec, plan: Plan) -> dict | None:
    """vLLM's --speculative-config for the plan; None when it has no speculative technique. Only called for plans
    `_why_not` passed, so a needed draft model or Medusa heads are published."""
    s = plan.settings
    if "speculative-decoding" in plan.stack:
        draft = draft_model(model)
        return {"model": draft, "num_speculative_tokens": s["draft_len"]}
    if "medusa" in plan.stack:
        heads = medusa_heads(model)
        return {"method": "medusa", "model": heads, "num_speculative_tokens": 5}
    if "prompt-lookup" in plan.stack:
        return {"method": "ngram", "num_speculative_tokens": SPEC_DRAFT_TOKENS_NGRAM,
                "prompt_lookup_max": SPEC_DRAFT_TOKENS_NGRAM}
    return None


def _speculation_published(model: ModelSpec, stack: tuple[str, ...]) -> bool:
    """False when the stack's speculative technique needs a draft model or Medusa heads nobody published."""
    if "speculative-decoding" in stack:
        return draft_model(model) is not None
    if "medusa" in stack:
        return medusa_heads(model) is not None
    return True


def _why_not(model: ModelSpec, plan: Plan, engine: str) -> str | None:
    """Why `engine` cannot run the plan as estimated (None: it can)."""
    return _why_not_cached(model, tuple(plan.stack), plan.weights, plan.kv, engine)


@lru_cache(maxsize=4096)
def _why_not_cached(model: ModelSpec, stack: tuple[str, ...], weights: str, kv: str, engine: str) -> str | None:
    if not model.hf_id:
        return "the model has no Hugging Face id (a parameter count or a pasted config): name the repository first"
    if _repo_for(model, weights, stack, engine) is None:
        if engine == "llama.cpp" and weights in SIXTEEN_BIT:
            return (f"llama.cpp reads GGUF files and no published {weights} GGUF of {model.name} is recorded: convert "
                    "the checkpoint with llama.cpp's convert_hf_to_gguf.py --outtype f16")
        return f"no published {weights} checkpoint of {model.name} is known for {engine}"
    unsupported = {"vllm": ("h2o", "streamingllm", "scissorhands", "flexgen", "zero-inference"),
                   "sglang": ("h2o", "streamingllm", "scissorhands", "flexgen", "zero-inference", "medusa",
                              "prompt-lookup", "sparsegpt", "wanda"),
                   "llama.cpp": ("h2o", "streamingllm", "scissorhands", "flexgen", "zero-inference",
                                 "speculative-decoding", "medusa", "prompt-lookup", "sparsegpt", "wanda"),
                   "hf": ("h2o", "streamingllm", "scissorhands", "flexgen", "sparsegpt", "wanda", "medusa")}
    blocked = [t for t in stack if t in unsupported.get(engine, ())]
    if blocked:
        return f"{engine} has no documented option for {', '.join(blocked)}"
    if engine in ("vllm", "sglang") and kv in ("int8", "int4"):
        return f"{engine} has no {kv} KV cache (fp8 only)"
    if engine in ("vllm", "sglang") and weights in ("int8-bnb", "int8-w8a8"):
        return f"no published {weights} checkpoint of {model.name} is known for {engine}"
    if not _speculation_published(model, stack):
        return f"no published draft model or Medusa heads for {model.name}"
    return None


def _offloaded_gib_per_gpu(plan: Plan) -> float:
    return plan.offloaded_gib / plan.num_gpus


def _quote(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def _weights_and_tp_args(plan: Plan, engine: str) -> list[str]:
    """The options vLLM and SGLang spell alike: quantize-on-load, 16-bit dtype, tensor-parallel size."""
    args = []
    if plan.weights in ON_LOAD[engine] and plan.weights != getattr(plan.model, "native_weights", ""):   # read as is
        args += ["--quantization", ON_LOAD[engine][plan.weights]]
    if plan.weights in ("fp16", "bf16"):
        args += ["--dtype", "bfloat16" if plan.weights == "bf16" else "float16"]
    _, tp, _ = parallel_layout(plan.config)
    if engine == "sglang" and _expert_parallel(plan):
        tp = plan.num_gpus   # SGLang's --tp counts every GPU of every node; DP attention divides it (sglang_command)
    if tp > 1:
        args += ["--tensor-parallel-size", str(tp)]
    return args


def _expert_parallel(plan: Plan) -> bool:
    return plan.is_inference and plan.config.expert_parallel


def vllm_command(model: ModelSpec, plan: Plan) -> str:
    """A `vllm serve` command line: weights, tensor parallelism, KV dtype, memory share, offload, speculation."""
    s = plan.settings
    args = ["vllm", "serve", weights_repo(model, plan, "vllm"), *_weights_and_tp_args(plan, "vllm")]
    _, tp, pp = parallel_layout(plan.config)
    if pp > 1:   # one pipeline stage per node, on vLLM's own Ray runtime
        args += ["--pipeline-parallel-size", str(pp), "--distributed-executor-backend", "ray"]
    nodes = 1
    if _expert_parallel(plan):   # experts over every GPU; beyond one node one data-parallel attention rank per node
        _, nodes, _ = expert_layout(plan.config)
        if nodes > 1:   # vLLM's data-parallel deployment starts the other nodes' ranks itself over Ray
            args += ["--data-parallel-size", str(nodes), "--data-parallel-size-local", "1",
                     "--data-parallel-backend", "ray"]
        args.append("--enable-expert-parallel")
    if plan.kv == "fp8":
        args += ["--kv-cache-dtype", "fp8"]
    share = engine_memory_share("vllm", plan.config.memory_utilization)
    # --max-num-seqs applies per data-parallel rank (vLLM data-parallel deployment docs)
    args += ["--max-model-len", str(s["prompt_len"] + s["gen_len"]), "--max-num-seqs",
             str(max(math.ceil(s["batch"] / nodes), 1)), "--gpu-memory-utilization", f"{share:.2f}"]
    if plan.offloaded_gib > 0:
        args += ["--cpu-offload-gb", str(math.ceil(_offloaded_gib_per_gpu(plan)))]
    spec = _spec_config(model, plan)
    if spec:
        args += ["--speculative-config", json.dumps(spec, separators=(",", ":"))]
    if pp > 1 or nodes > 1:
        return (f"# {max(pp, nodes)} nodes of {tp} GPUs: start Ray first (vLLM docs, parallelism and scaling):\n"
                f"#   on the head node: ray start --head --port=6379\n"
                f"#   on each other node: ray start --address=$HEAD_NODE_IP:6379\n" + _quote(args))
    return _quote(args)


def sglang_command(model: ModelSpec, plan: Plan) -> str:
    """`python -m sglang.launch_server` for the plan (SGLang reserves a little more memory than vLLM by default)."""
    s = plan.settings
    args = ["python", "-m", "sglang.launch_server", "--model-path", weights_repo(model, plan, "sglang"),
            *_weights_and_tp_args(plan, "sglang")]
    _, tp, pp = parallel_layout(plan.config)
    nodes = pp
    if _expert_parallel(plan):   # experts over every GPU; beyond one node data-parallel attention, one rank per node
        _, nodes, ep = expert_layout(plan.config)
        args += ["--ep-size", str(ep)]
        if nodes > 1:
            args += ["--enable-dp-attention", "--dp-size", str(nodes)]
    elif pp > 1:
        args += ["--pipeline-parallel-size", str(pp)]
    if nodes > 1:   # SGLang's own multi-node launch: run this on every node with its NODE_RANK (0 on the head node)
        args += ["--nnodes", str(nodes), "--node-rank", "$NODE_RANK", "--dist-init-addr", "$HEAD_NODE_IP:20000"]
    if plan.kv == "fp8":
        args += ["--kv-cache-dtype", "fp8_e5m2"]
    args += ["--context-length", str(s["prompt_len"] + s["gen_len"]), "--max-running-requests",
             str(max(s["batch"], 1))]
    if plan.offloaded_gib > 0:
        args += ["--cpu-offload-gb", str(math.ceil(_offloaded_gib_per_gpu(plan)))]
    if "speculative-decoding" in plan.stack:
        args += ["--speculative-algorithm", "STANDALONE", "--speculative-draft-model-path", draft_model(model),
                 "--speculative-num-steps", str(s["draft_len"]), "--speculative-num-draft-tokens",
                 str(s["draft_len"] + 1)]
    text = _quote(args).replace("'$NODE_RANK'", "$NODE_RANK").replace("'$HEAD_NODE_IP:20000'", "$HEAD_NODE_IP:20000")
    if nodes > 1:
        return f"# run on each of the {nodes} nodes, with NODE_RANK=0 on the head node and HEAD_NODE_IP set:\n{text}"
    return text


def llama_cpp_gpu_layers(model: ModelSpec, plan: Plan) -> int:
    """Layers llama.cpp keeps on the GPUs (-ngl): all of them, or the share of weight bytes the estimate keeps there
    when weights are offloaded (the output layer counts as one more layer in llama.cpp)."""
    if plan.offloaded_gib <= 0:
        return model.layers + 1
    on_gpu = plan.estimate.memory_breakdown_gib["weights"] * plan.num_gpus
    share = on_gpu / (on_gpu + plan.offloaded_gib)
    return max(0, math.floor(model.layers * share))


def llamacpp_command(model: ModelSpec, plan: Plan) -> str:
    """A `llama-server` command: GGUF file from the Hub, GPU layers from the memory estimate, context, KV type."""
    s = plan.settings
    repo = weights_repo(model, plan, "llama.cpp")
    args = ["llama-server", "-hf", f"{repo}:{GGUF_TYPE[plan.weights]}", "-ngl", str(llama_cpp_gpu_layers(model, plan)),
            "-c", str((s["prompt_len"] + s["gen_len"]) * max(s["batch"], 1)), "-fa", "on"]
    if plan.num_gpus > 1:
        args += ["--split-mode", "layer"]
    if plan.kv in ("int8", "int4"):
        kv = LLAMA_CPP_KV[plan.kv]
        args += ["--cache-type-k", kv, "--cache-type-v", kv]
    if s["batch"] > 1:
        args += ["--parallel", str(s["batch"])]
    return _quote(args)


def _max_memory(plan: Plan) -> dict[str, str]:
    """accelerate's max_memory for an offload plan: the GPU share the estimate keeps, the rest in CPU RAM."""
    gpu_gib = plan.estimate.memory_breakdown_gib["weights"]
    out = {str(i): f"{max(gpu_gib, 0.1):.1f}GiB" for i in range(plan.num_gpus)}
    out["cpu"] = f"{math.ceil(plan.offloaded_gib * 1.1 + 1)}GiB"
    return out


def transformers_snippet(model: ModelSpec, plan: Plan) -> str:
    """Python that loads and runs the plan with transformers (bitsandbytes, AWQ/GPTQ repos, offload, drafting)."""
    s = plan.settings
    repo = weights_repo(model, plan, "hf")
    imports = ["AutoModelForCausalLM", "AutoTokenizer"]
    lines, kwargs = [], ['device_map="auto"']
    if plan.weights == "int8-bnb":
        imports.append("BitsAndBytesConfig")
        lines.append("# needs: pip install bitsandbytes")
        kwargs.append("quantization_config=BitsAndBytesConfig(load_in_8bit=True)")
    elif plan.weights == "nf4":
        imports.append("BitsAndBytesConfig")
        lines.append("# needs: pip install bitsandbytes")
        kwargs.append('quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", '
                      'bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)')
    elif plan.weights not in SIXTEEN_BIT:
        lines.append(f"# a pre-quantized {_int4_kind(plan.stack).upper()} checkpoint; needs: pip install "
                     f"{'gptqmodel' if _int4_kind(plan.stack) == 'gptq' else 'autoawq'}")
        kwargs.append("dtype=torch.float16")
    else:
        kwargs.append(f"dtype=torch.{'bfloat16' if plan.weights == 'bf16' else 'float32' if plan.weights == 'fp32' else 'float16'}")
    # PyTorch's SDPA runs FlashAttention-2 kernels on supported GPUs with no extra package
    kwargs.append('attn_implementation="sdpa"')
    if plan.offloaded_gib > 0:
        kwargs.append(f"max_memory={_max_memory(plan)!r}")
    gen = [f"max_new_tokens={s['gen_len']}"]
    extra = []
    if "speculative-decoding" in plan.stack:
        extra.append(f'assistant = AutoModelForCausalLM.from_pretrained("{draft_model(model)}", device_map="auto")')
        gen.append("assistant_model=assistant")
    if "prompt-lookup" in plan.stack:
        gen.append("prompt_lookup_num_tokens=10")
    if plan.kv in ("int8", "int4"):
        lines.append("# the quantized KV cache needs: pip install optimum-quanto")
        gen.append(f'cache_implementation="quantized", cache_config={{"backend": "quanto", '
                   f'"nbits": {8 if plan.kv == "int8" else 4}}}')
    out = lines + ["import torch", f"from transformers import {', '.join(imports)}", "",
                   f'tokenizer = AutoTokenizer.from_pretrained("{repo}")',
                   f'model = AutoModelForCausalLM.from_pretrained("{repo}", {", ".join(kwargs)})', *extra,
                   'inputs = tokenizer("Hello", return_tensors="pt").to(model.device)',
                   f"out = model.generate(**inputs, {', '.join(gen)})", "print(tokenizer.decode(out[0]))"]
    return "\n".join(out)


def peft_snippet(model: ModelSpec, plan: Plan) -> str:
    """A runnable fine-tuning script for a fine-tuning plan: transformers + PEFT (LoRA/QLoRA) or full, with the
    plan's optimizer, checkpointing and sequence length; sharding plans launch it with accelerate (FSDP) or
    DeepSpeed ZeRO."""
    s = plan.settings
    method, rank = s["method"], s.get("lora_rank", 16)
    optim = {"adamw": "adamw_torch", "adam-8bit": "adamw_bnb_8bit", "paged-adam-8bit": "paged_adamw_8bit"}
    lines = ["# needs: pip install transformers peft datasets accelerate" + (" bitsandbytes" if method == "qlora"
                                                                              or "8bit" in s["optimizer"] else "")]
    if s["sharding"] != "none":
        launcher = "accelerate launch --use_fsdp" if s["sharding"] == "fsdp" else \
            f"accelerate launch --use_deepspeed --zero_stage {s['sharding'][-1]}"
        lines.append(f"# run on {plan.num_gpus} GPUs with: {launcher} --num_processes {plan.num_gpus} train.py")
    lines += ["import torch", "from datasets import load_dataset",
              "from transformers import (AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig,",
              "                          DataCollatorForLanguageModeling, Trainer, TrainingArguments)"]
    if method in ("lora", "qlora"):
        lines.append("from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training")
    lines += ["", f'repo = "{model.hf_id}"', "tokenizer = AutoTokenizer.from_pretrained(repo)",
              "tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token"]
    if method == "qlora":
        lines.append('bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", '
                     'bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)')
        lines.append('model = AutoModelForCausalLM.from_pretrained(repo, quantization_config=bnb, dtype=torch.bfloat16, '
                     'attn_implementation="sdpa")')
        lines.append(f"model = prepare_model_for_kbit_training(model, use_gradient_checkpointing={s['checkpointing']})")
    else:
        lines.append('model = AutoModelForCausalLM.from_pretrained(repo, dtype=torch.bfloat16, attn_implementation="sdpa")')
    if method in ("lora", "qlora"):
        lines.append(f'model = get_peft_model(model, LoraConfig(r={rank}, lora_alpha={2 * rank}, target_modules="all-linear", '
                     'task_type="CAUSAL_LM"))')
    lines += ['data = load_dataset("Abirate/english_quotes", split="train")',
              f'data = data.map(lambda row: tokenizer(row["quote"], truncation=True, max_length={s["seq_len"]}), '
              "batched=True, remove_columns=data.column_names)",
              f'args = TrainingArguments(output_dir="out", per_device_train_batch_size={s["batch"]}, '
              f'gradient_checkpointing={s["checkpointing"]}, optim="{optim[s["optimizer"]]}", bf16=True, '
              "max_steps=100, logging_steps=10)",
              "Trainer(model=model, args=args, train_dataset=data, "
              "data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False)).train()"]
    return "\n".join(lines)


def plan_json(model: ModelSpec, plan: Plan) -> str:
    """The plan as JSON: the same fields `python -m recommender estimate --json` prints, plus the stack."""
    return json.dumps({"model": model.id, "hf_id": model.hf_id, **plan.to_dict()}, indent=1, allow_nan=False)


ENGINE_EXPORTS = {"vllm": (("vllm", vllm_command), ("sglang", sglang_command)),
                  "llama.cpp": (("llama.cpp", llamacpp_command),),
                  "hf": (("transformers", transformers_snippet),)}


def _engine_of(export_name: str) -> str:
    """The engine an export runs on (the transformers snippet runs the 'hf' engine)."""
    return "hf" if export_name == "transformers" else export_name


def runnable_engines(plan: Plan, model: ModelSpec) -> list[str]:
    """Export names that run `plan` as estimated (engine commands and snippets; the JSON is not counted)."""
    return [name for name, _ in ENGINE_EXPORTS.get(plan.engine, ())
            if _why_not(model, plan, _engine_of(name)) is None]


def export_notes(model: ModelSpec, plan: Plan) -> list[str]:
    """Why an engine's export is missing for this plan (empty when every export of its engine is there)."""
    if not plan.is_inference:
        return [] if model.hf_id else ["the model has no Hugging Face id: the fine-tuning script needs one"]
    notes = []
    for name, _ in ENGINE_EXPORTS.get(plan.engine, ()):
        reason = _why_not(model, plan, _engine_of(name))
        if reason:
            notes.append(f"{name}: {reason}")
    if plan.engine not in ENGINE_EXPORTS:
        notes.append(f"no command-line export for the {plan.engine} engine yet; the JSON holds the full plan")
    return notes


def all_exports(model: ModelSpec, plan: Plan) -> dict[str, str]:
    """Every export that runs the plan as estimated, keyed by name; the JSON is always there."""
    out: dict[str, str] = {}
    if not plan.is_inference:
        if model.hf_id:
            out["peft"] = peft_snippet(model, plan)
    else:
        for name, build in ENGINE_EXPORTS.get(plan.engine, ()):
            if _why_not(model, plan, _engine_of(name)) is None:
                out[name] = build(model, plan)
    out["json"] = plan_json(model, plan)
    return out
