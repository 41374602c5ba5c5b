"""Expert parallelism (docs/cost_model.md §3.7): a mixture of experts' routed experts spread over every GPU, the rest
tensor parallel inside a node. DeepSeek-V3 is served this way by its authors (EP32 prefill / EP320 decode, technical
report https://arxiv.org/abs/2412.19437 sec. 3.4); vLLM (--enable-expert-parallel) and SGLang (--ep-size) expose it.
"""

from __future__ import annotations

import math

import pytest

from recommender import api
from recommender.cli import main
from recommender.costs import GIB
from recommender.estimate import InferenceConfig, InferenceEvaluator
from recommender.formats import weight_format
from tests.test_recommender_exports import check_command

H100 = "h100-sxm"


def ep_config(**overrides) -> InferenceConfig:
    base = dict(weights="fp8", kv="fp16", engine="vllm", num_gpus=16, batch=8, prompt_len=2048, gen_len=256,
                expert_parallel=True)
    return InferenceConfig(**{**base, **overrides})


def test_deepseek_v3_fp8_weights_per_gpu_by_hand():
    """2 nodes x 8 H100, EP16: each GPU holds 1/8 of everything but the routed experts (tensor parallel inside its
    node) plus 16 of the 256 routed experts of each of the 58 MoE layers, all from the preset's fields."""
    m = api.resolve_model("deepseek-v3")
    bits = weight_format("fp8").bits_per_weight
    # one routed expert: gate, up and down projections of h x moe_ffn (SwiGLU)
    routed_params = (m.layers - m.first_dense_layers) * m.experts * 3 * m.hidden * m.moe_ffn
    assert routed_params == 58 * 256 * 3 * 7168 * 2048
    body = m.body_params
    non_expert_bytes = (body - routed_params) * bits / 8 + (m.vocab * m.hidden * 2 + m.hidden) * 16 / 8
    expected = non_expert_bytes / 8 + routed_params * bits / 8 / 16
    mem = InferenceEvaluator(m, api.resolve_gpu(H100)).memory(ep_config())
    assert mem["weights"] == pytest.approx(expected, rel=1e-9)
    assert 38 < expected / GIB < 43   # about 654 GB of routed experts in fp8 over 16 GPUs, ~17B other parameters / 8
    est = api.estimate_inference(m, api.resolve_gpu(H100), ep_config())
    assert est.fits and est.memory_breakdown_gib["weights"] == pytest.approx(expected / GIB, rel=1e-6)


def test_expert_parallel_is_refused_for_a_dense_model_and_on_layer_split_engines():
    gpu = api.resolve_gpu(H100)
    with pytest.raises(api.RecommenderInputError, match="dense model"):
        api.estimate_inference(api.resolve_model("llama-3.1-405b"), gpu, ep_config(weights="bf16"))
    v3 = api.resolve_model("deepseek-v3")
    for engine in ("llama.cpp", "hf"):
        with pytest.raises(api.RecommenderInputError, match=f"the {engine} engine .*use one of vllm, sglang"):
            api.estimate_inference(v3, gpu, ep_config(engine=engine, num_gpus=8))
    with pytest.raises(api.RecommenderInputError, match="2 or more GPUs"):
        api.estimate_inference(v3, gpu, ep_config(num_gpus=1))
    with pytest.raises(api.RecommenderInputError, match="at least one routed expert per GPU"):
        api.estimate_inference(api.resolve_model("mixtral-8x7b"), gpu, ep_config(weights="bf16"))


def test_expert_parallel_decode_waits_for_the_inter_node_link():
    m, gpu = api.resolve_model("deepseek-v3"), api.resolve_gpu(H100)
    fast = api.estimate_inference(m, gpu, ep_config())
    slow = api.estimate_inference(m, gpu, ep_config(internode_gbps=1.0))
    assert slow.decode_ms_per_token > fast.decode_ms_per_token
    assert slow.ttft_ms > fast.ttft_ms   # the prompt's tokens cross the same all-to-alls
    assert slow.latency_breakdown_ms["expert_parallel_comm"] > fast.latency_breakdown_ms["expert_parallel_comm"] > 0
    # inside one node the inter-node link is not used
    one_node = [api.estimate_inference(m, gpu, ep_config(num_gpus=8, internode_gbps=g))
                for g in (1.0, 50.0)]
    assert one_node[0].decode_ms_per_token == one_node[1].decode_ms_per_token


def test_busiest_gpu_reads_at_least_one_expert_and_at_most_its_own():
    """Batch 1 touches 8 of 256 experts: spread over 16 GPUs the busiest still reads one whole expert per layer;
    a large batch touches all, and each GPU reads its 16."""
    from recommender import costs

    m = api.resolve_model("deepseek-v3")
    per_expert = m.ffn_params_per_expert * m.moe_layers
    rest = (m.body_params - m.routed_expert_params + m.lm_head_read_params * 2) / 8   # 8-bit body, 16-bit head
    assert costs.expert_parallel_read_bytes(m, 8, 1, 8, 16) == pytest.approx(rest + per_expert)
    assert costs.expert_parallel_read_bytes(m, 8, 100_000, 8, 16) == pytest.approx(rest + 16 * per_expert)


def test_planner_proposes_a_fitting_multi_node_expert_parallel_plan_for_deepseek_v3():
    req = api.PlanRequest(model=api.resolve_model("deepseek-v3"), gpu=api.resolve_gpu(H100), num_gpus=16, batch=8,
                          max_plans=1000)
    result = api.plan(req)
    ep = [p for p in result.plans if "expert-parallel" in p.stack and p.fits and p.num_gpus == 16]
    assert ep, [p.stack for p in result.plans[:10]]
    plan = ep[0]
    assert plan.engine == "vllm" and plan.config.expert_parallel
    assert any(r.startswith("Expert parallel over 16 GPUs") for r in plan.reasons), plan.reasons
    # the planner's figure is the estimate of its own stack
    again = api.evaluate_stack(api.PlanRequest(model=req.model, gpu=req.gpu, num_gpus=16, batch=8), plan.stack,
                               engine="vllm")
    assert again.decode_ms_per_token == plan.decode_ms_per_token
    assert again.per_gpu_memory_gib == plan.per_gpu_memory_gib
    # dense models get no expert-parallel variants
    dense = api.plan(api.PlanRequest(model=api.resolve_model("llama-3.1-405b"), gpu=req.gpu, num_gpus=16,
                                     max_plans=1000))
    assert not any("expert-parallel" in p.stack for p in dense.plans)


def test_export_starts_expert_parallelism_on_the_engines_own_runtime():
    req = api.PlanRequest(model=api.resolve_model("deepseek-v3"), gpu=api.resolve_gpu(H100), num_gpus=16, batch=8)
    plan = api.evaluate_stack(req, ["fp8", "vllm", "expert-parallel"], engine="vllm")
    exports = api.all_exports(req.model, plan)
    vllm, sglang = exports["vllm"], exports["sglang"]
    assert "--enable-expert-parallel" in vllm and "--tensor-parallel-size 8" in vllm
    assert "--data-parallel-size 2" in vllm and "--data-parallel-backend ray" in vllm and "ray start" in vllm
    assert "--pipeline-parallel-size" not in vllm
    assert "--ep-size 16" in sglang and "--tensor-parallel-size 16" in sglang and "--enable-dp-attention" in sglang
    assert "--nnodes 2" in sglang
    assert check_command("vllm", vllm) == [] and check_command("sglang", sglang) == []
    # one node: tensor parallel for attention, expert parallel for the experts, no data-parallel ranks
    mixtral = api.evaluate_stack(api.PlanRequest(model=api.resolve_model("mixtral-8x7b"), gpu=req.gpu, num_gpus=2),
                                 ["fp8", "vllm", "expert-parallel"], engine="vllm")
    ex = api.all_exports(mixtral.model, mixtral)
    assert "--tensor-parallel-size 2 --enable-expert-parallel" in ex["vllm"] and "ray" not in ex["vllm"]
    assert "--ep-size 2" in ex["sglang"] and "--nnodes" not in ex["sglang"]
    assert check_command("vllm", ex["vllm"]) == [] and check_command("sglang", ex["sglang"]) == []


def test_cli_expert_parallel(capsys):
    base = ["estimate", "--model", "deepseek-v3", "--gpu", H100, "--weights", "fp8", "--framework", "vllm"]
    assert main(base + ["--num-gpus", "16", "--expert-parallel"]) == 0
    out = capsys.readouterr().out
    assert '"expert_parallel": true' in out and '"expert_parallel_comm"' in out
    for extra, message in ((["--num-gpus", "16", "--expert-parallel", "--workload", "finetune-lora"], "inference"),
                           (["--num-gpus", "1", "--expert-parallel", "--framework", "sglang"], "2 or more GPUs"),
                           (["--num-gpus", "16", "--expert-parallel"], "the hf engine")):
        argv = ["estimate", "--model", "deepseek-v3", "--gpu", H100] + extra
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    assert main(["estimate", "--model", "llama-2-7b", "--gpu", H100, "--framework", "vllm", "--num-gpus", "2",
                 "--expert-parallel"]) == 2
    assert "dense model" in capsys.readouterr().err


def test_dense_estimates_do_not_change_with_the_new_field():
    """Expert parallelism off is the model as before: a dense plan's figures do not depend on the field."""
    m, gpu = api.resolve_model("llama-3.1-405b"), api.resolve_gpu("a100-80gb")
    cfg = InferenceConfig(weights="bf16", engine="vllm", num_gpus=16)
    est = api.estimate_inference(m, gpu, cfg).to_dict()
    assert est["settings"]["expert_parallel"] is False
    assert math.isfinite(est["decode_ms_per_token"]) and "tensor_parallel_comm" in est["latency_breakdown_ms"]
