"""Every export of the top plans runs as copied: documented options only, published checkpoints only, no
placeholder, the GPU-layer split and offload consistent with the memory estimate, and the transformers snippet
executes (against a tiny local model standing in for the Hub repository, offline)."""

from __future__ import annotations

import ast
import itertools
import json
import re
import shlex

import pytest

from recommender import api
from recommender.export import checkpoints, engine_options

MODELS = ("llama-2-7b", "llama-2-70b", "llama-3.1-8b", "mistral-7b", "qwen2.5-7b", "vicuna-7b", "mixtral-8x7b")
GPUS = ("rtx-4090", "a100-80gb", "h100-sxm", "l4")
WORKLOADS = ((1, 512), (8, 4096))
ENTRY = {"vllm": "vllm_serve", "sglang": "sglang_launch_server", "llama.cpp": "llama_server"}
PREFIX = {"vllm": ["vllm", "serve"], "sglang": ["python", "-m", "sglang.launch_server"], "llama.cpp": ["llama-server"]}


def option_table(entry: str) -> dict[str, dict]:
    table = {}
    for opt in engine_options()[entry]["options"]:
        for name in [opt["name"], *(opt.get("aliases") or [])]:
            table[name] = opt
    return table


def check_command(name: str, text: str) -> list[str]:
    """Problems with one command line against the engine's documented options."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) == 1, text
    args = shlex.split(lines[0])
    problems = []
    prefix = PREFIX[name]
    if args[: len(prefix)] != prefix:
        return [f"{name}: does not start with {' '.join(prefix)}"]
    rest = args[len(prefix):]
    if name == "vllm":
        rest = rest[1:]   # the model repository is positional
    table = option_table(ENTRY[name])
    i = 0
    while i < len(rest):
        flag = rest[i]
        opt = table.get(flag)
        if opt is None:
            problems.append(f"{name}: undocumented option {flag}")
            i += 1
            continue
        if opt.get("takes_value"):
            value = rest[i + 1]
            choices = opt.get("choices")
            if choices and value not in [str(c) for c in choices]:
                problems.append(f"{name}: {flag} {value} not among {choices}")
            if opt.get("type") == "json":
                json.loads(value)
            i += 2
        else:
            i += 1
    return problems


def call_kwargs(tree: ast.AST, func: str) -> list[set[str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == func:
                out.append({k.arg for k in node.keywords if k.arg})
    return out


def check_transformers(text: str) -> list[str]:
    tree = ast.parse(text)
    allowed = {
        "from_pretrained": {o["name"] for o in engine_options()["transformers_from_pretrained"]["options"]},
        "BitsAndBytesConfig": {o["name"] for o in engine_options()["transformers_bitsandbytes_config"]["options"]},
        "generate": {o["name"] for o in engine_options()["transformers_generate"]["options"]},
    }
    problems = []
    for func, names in allowed.items():
        for used in call_kwargs(tree, func):
            if used - names:
                problems.append(f"transformers: {func}() got undocumented {sorted(used - names)}")
    return problems


def grid_plans():
    for model_id, gpu_id, (batch, prompt) in itertools.product(MODELS, GPUS, WORKLOADS):
        req = api.PlanRequest(model=api.resolve_model(model_id), gpu=api.resolve_gpu(gpu_id), batch=batch,
                              prompt_len=prompt, max_plans=5)
        for plan in api.plan(req).plans:
            yield req.model, plan
    # stacks the rankings above rarely put first: GGUF on llama.cpp, with and without a quantized KV cache
    # beyond one node: tensor parallel per node, pipeline stages across nodes
    req = api.PlanRequest(model=api.resolve_model("llama-3.1-405b"), gpu=api.resolve_gpu("a100-80gb"), num_gpus=16,
                          quality="lossless", max_plans=3)
    for plan in api.plan(req).plans:
        yield req.model, plan
    # a mixture of experts with its experts spread over two nodes (expert parallelism)
    req = api.PlanRequest(model=api.resolve_model("deepseek-v3"), gpu=api.resolve_gpu("h100-sxm"), num_gpus=16)
    yield req.model, api.evaluate_stack(req, ["fp8", "vllm", "expert-parallel"])
    for model_id, ids in (("llama-2-7b", ["gguf-q4_k_m"]), ("llama-2-13b", ["gguf-q4_k_m", "kv-int8"]),
                          ("mistral-7b", ["gguf-q4_k_m"])):
        req = api.PlanRequest(model=api.resolve_model(model_id), gpu=api.resolve_gpu("rtx-4090"), batch=4)
        yield req.model, api.evaluate_stack(req, ids)


@pytest.fixture(scope="module")
def plans():
    return list(grid_plans())


def test_every_export_of_the_top_plans_is_documented_and_has_no_placeholder(plans):
    problems, kinds = [], set()
    for model, plan in plans:
        exports = api.all_exports(model, plan)
        assert "json" in exports
        assert json.loads(exports["json"])["stack"] == plan.stack
        for name, text in exports.items():
            kinds.add(name)
            assert not re.search(r"<[a-z][a-z-]*>", text), (name, text)
            if name in ENTRY:
                problems += check_command(name, text)
            elif name == "transformers":
                problems += check_transformers(text)
        if len(exports) == 1:   # only the JSON: the page and CLI must say why
            assert api.export_notes(model, plan), plan.stack
    assert not problems, problems[:10]
    assert {"vllm", "sglang", "llama.cpp", "transformers"} <= kinds, kinds


def test_exports_follow_the_plan(plans):
    for model, plan in plans:
        exports = api.all_exports(model, plan)
        if "vllm" in exports:
            text = exports["vllm"]
            if 1 < plan.num_gpus <= 8:
                assert f"--tensor-parallel-size {plan.num_gpus}" in text
            if plan.num_gpus > 8 and not plan.config.expert_parallel:
                assert "--tensor-parallel-size 8" in text and f"--pipeline-parallel-size {plan.num_gpus // 8}" in text
                assert "--distributed-executor-backend ray" in text
            if plan.config.expert_parallel:   # experts over every GPU, data-parallel attention across nodes
                assert "--enable-expert-parallel" in text and "--pipeline-parallel-size" not in text
                assert ("--data-parallel-backend ray" in text) == (plan.num_gpus > 8)
            assert ("--cpu-offload-gb" in text) == (plan.offloaded_gib > 0)
            if "speculative-decoding" in plan.stack:
                assert checkpoints()[model.id]["draft"] in text
        if "llama.cpp" in exports:
            ngl = int(shlex.split(exports["llama.cpp"])[shlex.split(exports["llama.cpp"]).index("-ngl") + 1])
            assert (ngl <= model.layers) == (plan.offloaded_gib > 0)
        if "transformers" in exports and "speculative-decoding" in plan.stack:
            assert "assistant_model=assistant" in exports["transformers"]


def test_offload_plan_of_70b_on_24gb_exports_its_split():
    req = api.PlanRequest(model=api.resolve_model("llama-2-70b"), gpu=api.resolve_gpu("rtx-4090"))
    result = api.plan(req)
    best = result.best
    assert best.offloaded_gib > 0 and result.verdict["level"] == "warning"
    offload = result.diagnosis["offload"]
    assert offload["stack"] == best.stack   # the diagnosis suggests the plan the page recommends
    text = api.all_exports(req.model, best)["transformers"]
    assert "max_memory=" in text
    memory = ast.literal_eval(re.search(r"max_memory=(\{.*?\})", text).group(1))
    assert float(memory["0"].removesuffix("GiB")) == pytest.approx(best.estimate.memory_breakdown_gib["weights"],
                                                                    abs=0.06)


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory):
    """A tiny random Llama saved locally: it stands in for the Hub repository so snippets run offline."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from live_demo.tiny import build_tiny_tokenizer

    path = tmp_path_factory.mktemp("tiny-repo")
    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_transformers_snippets_execute(plans, tiny_repo, monkeypatch):
    """Run the 16-bit transformers snippets (the ones a CPU can run) end to end on the stand-in model."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ran = 0
    for model, plan in plans:
        text = api.all_exports(model, plan).get("transformers")
        if not text or plan.weights not in ("fp16", "bf16", "fp32") or plan.kv != "fp16" or ran >= 3:
            continue
        repos = set(re.findall(r'from_pretrained\("([^"]+)"', text))
        for repo in repos:
            text = text.replace(f'"{repo}"', repr(tiny_repo))
        text = re.sub(r"max_new_tokens=\d+", "max_new_tokens=4", text)
        exec(compile(text, "<export>", "exec"), {})   # noqa: S102 - our own generated snippet, tested offline
        ran += 1
    assert ran >= 1


@pytest.mark.parametrize("gpu", ["t4", "v100-sxm", "m1-max"])
def test_plans_on_gpus_without_bf16_or_fp8_build_their_exports(gpu):
    """`plan --model llama-3.1-8b --gpu t4` raised KeyError 'fp16' building a llama.cpp export of fp16 weights: a
    16-bit llama.cpp plan now gets a note (llama.cpp reads GGUF; convert with convert_hf_to_gguf.py), not a command."""
    model = api.resolve_model("llama-3.1-8b")
    result = api.plan(api.PlanRequest(model=model, gpu=api.resolve_gpu(gpu), max_plans=60))
    sixteen = [p for p in result.plans if p.engine == "llama.cpp" and p.weights in ("fp16", "bf16", "fp32")]
    for p in result.plans:
        exports = api.all_exports(model, p)
        assert "json" in exports
        if p in sixteen:
            assert "llama.cpp" not in exports
            assert any("convert_hf_to_gguf.py" in n for n in api.export_notes(model, p)), api.export_notes(model, p)
    assert sixteen or gpu != "t4"   # the T4 (no bf16, no FP8) offers a 16-bit llama.cpp plan
