"""Live demo: quantization, prompt compression and speculative decoding on a small real LM.

The public face is `live_demo.api` (pages, the CLI and the benchmark use nothing else); importing this package
imports neither torch nor streamlit.
"""


def run_bench(device: str = "auto", quick: bool = False, model_id: str | None = None, record: bool = True,
              progress=None, sections: tuple | None = None) -> dict:
    """The fixed-prompt benchmark as one JSON-ready dict (see live_demo.bench.run_bench and its SECTIONS).

    It sits here, above `live_demo.api`, because the benchmark is built from the api's calls."""
    from live_demo import bench

    kwargs = {} if sections is None else {"sections": tuple(sections)}
    return bench.run_bench(device=device, quick=quick, model_id=model_id, record=record, progress=progress, **kwargs)
