"""Recommender: what to do so a model fits and runs fast enough, and what it costs in quality."""

import pandas as pd
import streamlit as st

from common.text import escape_markdown
from recommender import api

st.title("Recommender")
st.caption("Searches thousands of technique stacks with a cost model calibrated on published measurements, "
           "ranks them (fit memory and budgets within your quality tolerance, then your objective) and explains each.")


@st.cache_data(show_spinner=False)
def cached_report() -> dict:
    return api.calibration_report()


models, gpus = api.model_presets(), api.gpu_presets()
left, right = st.columns(2)
with left:
    source = st.radio("Model", ["Preset", "Parameter count", "config.json"], horizontal=True, key="rec_model_source")
    model_id, params_b, config, upload = None, None, None, None
    if source == "Preset":
        model_id = st.selectbox("Model preset", list(models), index=list(models).index("llama-2-7b"),
                                key="rec_model_id")
    elif source == "Parameter count":
        params_b = st.number_input("Parameters (billions)", value=7.0, key="rec_params_b")
    else:
        config = st.text_area("Paste config.json", height=120, key="rec_config_text", max_chars=api.MAX_CONFIG_BYTES)
        upload = st.file_uploader(f"...or upload it (up to {api.MAX_CONFIG_BYTES // 1_000_000} MB)", type=["json"],
                                  key="rec_config_file")
    workload = st.selectbox("Workload", api.WORKLOADS, key="rec_workload",
                            format_func=lambda w: {"inference": "inference (chat / batch serving)"}.get(w, w))
    quality = st.radio("Quality tolerance", api.QUALITY_LEVELS, index=1, horizontal=True, key="rec_quality")
    objective = st.radio("Objective", api.OBJECTIVES, horizontal=True, key="rec_objective",
                         help="least-risk: least quality risk, then fastest; fastest: fastest stack within the "
                              "tolerance; simplest: fewest techniques that meet the budgets")
with right:
    gpu_choice = st.selectbox("GPU", list(gpus) + ["custom"], index=list(gpus).index("a100-80gb"), key="rec_gpu_id")
    if gpu_choice == "custom":
        c1, c2, c3, c4 = st.columns(4)
        mem = c1.number_input("Memory GiB", value=24.0, key="rec_gpu_mem")
        bw = c2.number_input("Bandwidth GB/s", value=1000.0, key="rec_gpu_bw")
        tf = c3.number_input("FP16 TFLOPS", value=150.0, key="rec_gpu_tflops")
        unified = c4.checkbox("Unified memory", key="rec_gpu_unified", help="memory shared with the CPU (Apple)")
    num_gpus = st.number_input("GPU count", value=1, step=1, key="rec_num_gpus")
    per_node, internode = 8, 50.0
    if isinstance(num_gpus, int | float) and num_gpus > 8:
        c1, c2 = st.columns(2)
        per_node = c1.number_input("GPUs per node", value=8, step=1, key="rec_gpus_per_node")
        internode = c2.number_input("Inter-node GB/s per GPU", value=50.0, key="rec_internode_gbps",
                                    help="400 Gb/s InfiniBand NDR per GPU moves 50 GB/s")
    c1, c2, c3 = st.columns(3)
    batch = c1.number_input("Concurrency / batch", value=1, step=1, key="rec_batch")
    prompt_len = c2.number_input("Prompt tokens", value=512, step=64, key="rec_prompt_len")
    gen_len = c3.number_input("Output tokens", value=256, step=64, key="rec_gen_len")
    c1, c2 = st.columns(2)
    latency = c1.number_input("Budget ms/token (0 = none)", value=0.0, key="rec_latency")
    ttft = c2.number_input("Budget TTFT ms (0 = none)", value=0.0, key="rec_ttft")
    use_local = st.toggle("Let my live-demo runs adjust estimates of their own device", value=True,
                          key="rec_use_local")

try:
    if upload is not None:   # size checked before reading, whatever server.maxUploadSize allows
        api.check_config_size(upload.size)
        config = upload.getvalue()
    gpu = api.custom_gpu(mem, bw, tf, unified_memory=unified) if gpu_choice == "custom" else gpus[gpu_choice]
    model = api.resolve_model(model_id, params_b, config if source == "config.json" else None)
    req = api.PlanRequest(model=model, gpu=gpu, num_gpus=num_gpus, workload=workload, batch=batch,
                          prompt_len=prompt_len, gen_len=gen_len, latency_ms_per_token=latency or None,
                          ttft_ms=ttft or None, quality=quality, objective=objective, use_local_runs=use_local,
                          gpus_per_node=per_node, internode_gbps=internode)
    result = api.plan(req)
except (api.RecommenderInputError, ValueError) as exc:
    st.error(f"Cannot plan this: {escape_markdown(exc)}")
    st.stop()

best, shown = result.best, result.to_dict()
st.caption(f"{result.space:,} combinations in the search space, {result.searched:,} compatible, "
           f"{result.feasible:,} fit in memory. Model: {escape_markdown(model.name)} "
           f"({model.total_params_b:.2f}B, {model.attention_kind}).")
verdict = result.verdict
{"success": st.success, "warning": st.warning, "error": st.error}[verdict["level"]](verdict["title"])
if result.diagnosis:
    st.markdown(f"**Why:** {result.diagnosis.get('reason', 'no stack meets every budget.')}")
    for tip in result.diagnosis["suggestions"]:
        st.markdown(f"- {tip}")

best_dict = shown["plans"][0]
with st.container(border=True, key="rec_stack_card"):
    st.subheader("Recommended stack" if verdict["level"] == "success" else "Best available option")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("GiB per GPU", f"{best.per_gpu_memory_gib:.1f}")
    m2.metric("ms / token", "—" if best.decode_ms_per_token is None else f"{best.decode_ms_per_token:.1f}")
    m3.metric("TTFT ms" if best.ttft_ms is not None else "step s",
              f"{best.ttft_ms:.0f}" if best.ttft_ms is not None else f"{best.step_time_s:.2f}")
    m4.metric("quality risk", f"{best.quality_risk:.1f}")
    st.markdown(api.card_markdown(best_dict))
    largest = {f: api.largest_fitting_report(model, gpu, best.config, f) for f in ("context", "batch")}
    st.caption("Largest that still fits with this stack, all else as entered: " + ", ".join(
        f"{f} {r['value']:,}" + (" (the model's context limit)" if r["capped_at_model_context"] else "")
        if r["value"] else f"{f}: none" for f, r in largest.items()) + ".")

est = best.estimate
if est.local_adjustment:
    st.info(f"This estimate was {est.local_adjustment}. Turn the toggle off to see it without your runs.")
st.plotly_chart(api.memory_bar(est.memory_breakdown_gib, est.capacity_gib), key="rec_memory_bar")
if est.latency_breakdown_ms:
    st.plotly_chart(api.latency_bar(est.latency_breakdown_ms, est.ttft_ms), key="rec_latency_bar")
    cover = (report := cached_report()).get("decode", {})
    st.caption(f"{cover.get('band_nominal_pct', 80)}% band (split-conformal on leave-one-source-out residuals): "
               f"{est.decode_ms_low:.1f}-{est.decode_ms_high:.1f} ms/token; out of sample it held "
               f"{cover.get('band_coverage_pct', '—')}% of published measurements." + api.saturated_note(est, report))
    st.plotly_chart(api.pareto_scatter(shown["pareto"], req.latency_ms_per_token, est.capacity_gib),
                    key="rec_pareto_chart")

st.subheader("Alternatives")
st.dataframe(pd.DataFrame(api.alternatives_rows(shown["plans"])), hide_index=True, key="rec_alternatives")
c1, c2 = st.columns(2)
n = len(shown["plans"])
a = c1.selectbox("What if: plan A", range(n), format_func=lambda i: f"#{i + 1}", key="rec_what_if_a")
b = c2.selectbox("plan B", range(n), index=min(1, n - 1), format_func=lambda i: f"#{i + 1}", key="rec_what_if_b")
st.table(pd.DataFrame(api.compare_rows(shown["plans"][a], shown["plans"][b])))

st.subheader("Export the recommended stack")
exports = api.all_exports(model, best)
for note in api.export_notes(model, best):
    st.info(f"No export for {note}.")
for tab, (name, text) in zip(st.tabs(list(exports)), exports.items(), strict=True):
    tab.code(text, language={"json": "json", "transformers": "python", "peft": "python"}.get(name, "bash"))
    tab.download_button(f"Download {name}", text, file_name=f"stack-{name}.txt", key=f"rec_download_{name}")

with st.expander("How accurate is this? (calibration report)"):
    report = cached_report()
    for family in ("decode", "prefill", "throughput"):
        if family in report:
            r = report[family]
            st.markdown(f"**{family}**: median abs error, pure roofline {r['roofline']['median_abs_pct_error']}%, "
                        f"prior {r['prior']['median_abs_pct_error']}%, calibrated (leave-one-source-out) "
                        f"{r['calibrated_loso']['median_abs_pct_error']}% over {r['roofline']['n']} rows; "
                        f"{r['band_nominal_pct']}% band held {r['band_coverage_pct']}% out of sample.")
            st.dataframe(api.error_table(r), hide_index=True, key=f"rec_errors_{family}")
    st.markdown(f"**memory**: median abs error {report['memory']['analytic']['median_abs_pct_error']}% "
                f"({report['memory']['analytic']['n']} rows). Method notes: docs/recommender.md.")
    if st.button(f"Refit with the live demo's runs on this machine ({api.history_run_count()} usable)",
                 key="rec_refit"):
        api.refresh_calibration()
        cached_report.clear()
        st.rerun()
