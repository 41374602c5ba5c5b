"""Recommender: what to do so a model fits and runs fast enough, and what it costs in quality."""

import pandas as pd
import streamlit as st

from recommender import RecommenderInputError, views
from recommender.calibration import history_measurements, refresh_calibrator
from recommender.export import all_exports
from recommender.hardware import GPU, gpu_presets
from recommender.models import MAX_CONFIG_BYTES, check_config_size, model_presets, resolve_model
from recommender.planner import QUALITY_LEVELS, WORKLOADS, PlanRequest, plan, plan_details
from recommender.report import calibration_report

st.title("Recommender")
st.caption("Searches thousands of technique stacks with a cost model calibrated on published measurements, "
           "ranks them (fit memory and latency, least quality risk, then fastest, then simplest) and explains each.")


@st.cache_data(show_spinner=False)
def cached_report() -> dict:
    return calibration_report()


models, gpus = model_presets(), gpu_presets()
left, right = st.columns(2)
with left:
    source = st.radio("Model", ["Preset", "Parameter count", "config.json"], horizontal=True, key="model_source")
    model_id, params_b, config, upload = None, None, None, None
    if source == "Preset":
        model_id = st.selectbox("Model preset", list(models), index=list(models).index("llama-2-7b"), key="model_id")
    elif source == "Parameter count":
        params_b = st.number_input("Parameters (billions)", value=7.0, key="params_b")
    else:
        config = st.text_area("Paste config.json", height=120, key="config_text", max_chars=MAX_CONFIG_BYTES)
        upload = st.file_uploader(f"...or upload it (up to {MAX_CONFIG_BYTES // 1_000_000} MB)", type=["json"],
                                  key="config_file")
    workload = st.selectbox("Workload", WORKLOADS, key="workload",
                            format_func=lambda w: {"inference": "inference (chat / batch serving)"}.get(w, w))
    quality = st.radio("Quality tolerance", QUALITY_LEVELS, index=1, horizontal=True, key="quality")
with right:
    gpu_choice = st.selectbox("GPU", list(gpus) + ["custom"], index=list(gpus).index("a100-80gb"), key="gpu_id")
    if gpu_choice == "custom":
        c1, c2, c3 = st.columns(3)
        mem = c1.number_input("Memory GiB", value=24.0, key="gpu_mem")
        bw = c2.number_input("Bandwidth GB/s", value=1000.0, key="gpu_bw")
        tf = c3.number_input("FP16 TFLOPS", value=150.0, key="gpu_tflops")
    num_gpus = st.number_input("GPU count", value=1, step=1, key="num_gpus")
    c1, c2, c3 = st.columns(3)
    batch = c1.number_input("Concurrency / batch", value=1, step=1, key="batch")
    prompt_len = c2.number_input("Prompt tokens", value=512, step=64, key="prompt_len")
    gen_len = c3.number_input("Output tokens", value=256, step=64, key="gen_len")
    c1, c2 = st.columns(2)
    latency = c1.number_input("Budget ms/token (0 = none)", value=0.0, key="latency")
    ttft = c2.number_input("Budget TTFT ms (0 = none)", value=0.0, key="ttft")

try:
    if upload is not None:   # size checked before reading, whatever server.maxUploadSize allows
        check_config_size(upload.size)
        config = upload.getvalue()
    gpu = GPU.custom(mem, bw, tf) if gpu_choice == "custom" else gpus[gpu_choice]
    model = resolve_model(model_id, params_b, config if source == "config.json" else None)
    req = PlanRequest(model=model, gpu=gpu, num_gpus=num_gpus, workload=workload, batch=batch,
                      prompt_len=prompt_len, gen_len=gen_len, latency_ms_per_token=latency or None,
                      ttft_ms=ttft or None, quality=quality)
    result = plan(req)
except (RecommenderInputError, ValueError) as exc:
    st.error(f"Cannot plan this: {views.escape_markdown(exc)}")
    st.stop()

plans = result["plans"]
best = plans[0]
st.caption(f"{result['space']:,} combinations in the search space, {result['searched']:,} compatible, "
           f"{result['feasible']:,} fit in memory. Model: {views.escape_markdown(model.name)} "
           f"({model.total_params_b:.2f}B, {model.attention_kind}).")
if "diagnosis" in result:
    diag = result["diagnosis"]
    (st.warning if diag["fits"] else st.error)(diag.get("reason", "No stack meets every budget."))
    for tip in diag["suggestions"]:
        st.markdown(f"- {tip}")

with st.container(border=True, key="stack_card"):
    status = "fits and meets the budgets" if best["fits"] and best["meets_latency"] else "closest option"
    st.subheader(f"Recommended stack ({status})")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("GiB per GPU", f"{best['per_gpu_memory_gib']:.1f}")
    m2.metric("ms / token", "-" if best["decode_ms_per_token"] is None else f"{best['decode_ms_per_token']:.1f}")
    m3.metric("TTFT ms" if best["ttft_ms"] is not None else "step s",
              f"{best['ttft_ms']:.0f}" if best["ttft_ms"] is not None else f"{best['step_time_s']:.2f}")
    m4.metric("quality risk", f"{best['quality_risk']:.1f}")
    st.markdown(views.card_markdown(best))

details = plan_details(req, best)
st.plotly_chart(views.memory_bar(details["memory_breakdown_gib"], details["capacity_gib"]), key="memory_bar")
if details["latency_breakdown_ms"]:
    st.plotly_chart(views.latency_bar(details["latency_breakdown_ms"], details["ttft_ms"]), key="latency_bar")
    st.caption(f"Uncertainty band (leave-one-source-out residuals): {details['decode_ms_low']:.1f}-"
               f"{details['decode_ms_high']:.1f} ms/token.")
    st.plotly_chart(views.pareto_scatter(result["pareto"], req.latency_ms_per_token, gpu.usable_memory_gib),
                    key="pareto_chart")

st.subheader("Alternatives")
st.dataframe(pd.DataFrame(views.alternatives_rows(plans)), hide_index=True, key="alternatives")
c1, c2 = st.columns(2)
a = c1.selectbox("What if: plan A", range(len(plans)), format_func=lambda i: f"#{i + 1}", key="what_if_a")
b = c2.selectbox("plan B", range(len(plans)), index=min(1, len(plans) - 1), format_func=lambda i: f"#{i + 1}",
                 key="what_if_b")
st.table(pd.DataFrame(views.compare_rows(plans[a], plans[b])))

st.subheader("Export the recommended stack")
exports = all_exports(model, best)
for tab, (name, text) in zip(st.tabs(list(exports)), exports.items(), strict=True):
    tab.code(text, language="json" if name == "json" else "python" if name == "transformers" else "bash")
    tab.download_button(f"Download {name}", text, file_name=f"stack-{name}.txt", key=f"download_{name}")

with st.expander("How accurate is this? (calibration report)"):
    report = cached_report()
    for family in ("decode", "prefill"):
        if family in report:
            r = report[family]
            st.markdown(f"**{family}**: median abs error, pure roofline {r['roofline']['median_abs_pct_error']}%, "
                        f"prior {r['prior']['median_abs_pct_error']}%, calibrated (leave-one-source-out) "
                        f"{r['calibrated_loso']['median_abs_pct_error']}% over {r['roofline']['n']} rows.")
    st.markdown(f"**memory**: median abs error {report['memory']['analytic']['median_abs_pct_error']}% "
                f"({report['memory']['analytic']['n']} rows). Method notes: docs/recommender.md.")
    local_rows = len(history_measurements())
    if st.button(f"Refit with the live demo's runs on this machine ({local_rows} usable)", key="refit"):
        refresh_calibrator()
        cached_report.clear()
        st.rerun()
