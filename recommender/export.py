"""Export a plan as a runnable command or snippet: vllm serve, transformers, llama.cpp, JSON."""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING

from .models import ModelSpec

if TYPE_CHECKING:
    from .planner import Plan

VLLM_QUANT = {"int4": None, "int8-w8a8": "compressed-tensors", "fp8": "fp8", "nf4": "bitsandbytes",
              "int3": "gptq"}
GGUF_TYPE = {"q4_k_m": "Q4_K_M", "q4_0": "Q4_0", "q8_0": "Q8_0", "fp16": "F16", "bf16": "BF16", "q3_k_m": "Q3_K_M",
             "q2_k": "Q2_K"}


def _hf_id(model: ModelSpec) -> str:
    return model.hf_id or "<your-model-id>"


def vllm_command(model: ModelSpec, plan: Plan) -> str:
    """A `vllm serve` command line for the plan (tensor parallel, quantization, KV dtype, speculative settings)."""
    s, stack = plan.settings, plan.stack
    args = ["vllm", "serve", _hf_id(model)]
    quant = None
    if "gptq" in stack or "gptq-3bit" in stack:
        quant = "gptq"
    elif "awq" in stack:
        quant = "awq"
    elif s["weights"] in VLLM_QUANT:
        quant = VLLM_QUANT[s["weights"]]
    if quant:
        args += ["--quantization", quant]
    if s["weights"] in ("fp16", "bf16"):
        args += ["--dtype", "bfloat16" if s["weights"] == "bf16" else "float16"]
    if s["num_gpus"] > 1:
        args += ["--tensor-parallel-size", str(s["num_gpus"])]
    if s["kv"] in ("fp8",):
        args += ["--kv-cache-dtype", "fp8"]
    args += ["--max-model-len", str(s["prompt_len"] + s["gen_len"]), "--max-num-seqs", str(max(s["batch"], 1)),
             "--gpu-memory-utilization", "0.9"]
    spec = None
    if "speculative-decoding" in stack:
        spec = {"model": "<draft-model-with-same-tokenizer>", "num_speculative_tokens": s["draft_len"]}
    elif "medusa" in stack:
        spec = {"method": "medusa", "model": "<medusa-heads-repo>", "num_speculative_tokens": 5}
    elif "prompt-lookup" in stack:
        spec = {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4}
    if spec:
        args += ["--speculative-config", json.dumps(spec, separators=(",", ":"))]
    return " ".join(shlex.quote(a) for a in args)


def transformers_snippet(model: ModelSpec, plan: Plan) -> str:
    """Python that loads the plan with transformers (bitsandbytes/GPTQ/AWQ, assistant_model)."""
    s, stack = plan.settings, plan.stack
    lines = ["import torch", "from transformers import AutoModelForCausalLM, AutoTokenizer"]
    kwargs = ['device_map="auto"']
    if s["weights"] == "int8-bnb":
        lines[-1] += ", BitsAndBytesConfig"
        kwargs.append("quantization_config=BitsAndBytesConfig(load_in_8bit=True)")
    elif s["weights"] == "nf4":
        lines[-1] += ", BitsAndBytesConfig"
        kwargs.append('quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", '
                      'bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)')
    elif s["weights"] in ("int4", "int3", "int2"):
        lines.append("# load a pre-quantized GPTQ/AWQ checkpoint (needs the gptqmodel or autoawq package)")
    else:
        kwargs.append(f"torch_dtype=torch.{'bfloat16' if s['weights'] == 'bf16' else 'float16'}")
    if "flashattention" in stack:
        kwargs.append('attn_implementation="flash_attention_2"')
    repo = _hf_id(model) if s["weights"] not in ("int4", "int3", "int2") else "<gptq-or-awq-quantized-repo>"
    lines += ["", f'tokenizer = AutoTokenizer.from_pretrained("{_hf_id(model)}")',
              f'model = AutoModelForCausalLM.from_pretrained("{repo}", {", ".join(kwargs)})']
    gen = [f"max_new_tokens={s['gen_len']}"]
    if "speculative-decoding" in stack:
        lines.append('assistant = AutoModelForCausalLM.from_pretrained("<small-draft-with-same-tokenizer>", '
                     'device_map="auto")')
        gen.append("assistant_model=assistant")
    if "prompt-lookup" in stack:
        gen.append("prompt_lookup_num_tokens=10")
    if s["kv"] in ("int8", "int4"):
        gen.append(f'cache_implementation="quantized", cache_config={{"nbits": {8 if s["kv"] == "int8" else 4}}}')
    lines += ['inputs = tokenizer("Hello", return_tensors="pt").to(model.device)',
              f"out = model.generate(**inputs, {', '.join(gen)})", "print(tokenizer.decode(out[0]))"]
    return "\n".join(lines)


def llamacpp_command(model: ModelSpec, plan: Plan) -> str:
    """A llama.cpp `llama-server` command (GGUF type, GPU layers, context, KV cache type, draft model)."""
    s, stack = plan.settings, plan.stack
    gguf = GGUF_TYPE.get(s["weights"], "Q4_K_M")
    name = (model.hf_id.split("/")[-1] if model.hf_id else "model") + f"-{gguf}.gguf"
    args = ["llama-server", "-m", name, "-ngl", "999", "-c", str(s["prompt_len"] + s["gen_len"])]
    if s["num_gpus"] > 1:
        args += ["--split-mode", "layer"]
    if s["kv"] in ("int8", "int4"):
        kv = "q8_0" if s["kv"] == "int8" else "q4_0"
        args += ["--cache-type-k", kv, "--cache-type-v", kv, "-fa"]
    if "speculative-decoding" in stack:
        args += ["-md", "draft-model.gguf", "--draft-max", str(s["draft_len"])]
    if s["batch"] > 1:
        args += ["--parallel", str(s["batch"])]
    return " ".join(shlex.quote(a) for a in args)


def plan_json(model: ModelSpec, plan: Plan) -> str:
    """The plan as JSON: the same fields `python -m recommender estimate --json` prints, plus the stack."""
    return json.dumps({"model": model.id, "hf_id": model.hf_id, **plan.to_dict()}, indent=1, allow_nan=False)


def all_exports(model: ModelSpec, plan: Plan) -> dict[str, str]:
    """Every export for an inference plan; fine-tuning plans export as JSON only."""
    if not plan.is_inference:
        return {"json": plan_json(model, plan)}
    return {"vllm": vllm_command(model, plan), "transformers": transformers_snippet(model, plan),
            "llama.cpp": llamacpp_command(model, plan), "json": plan_json(model, plan)}
