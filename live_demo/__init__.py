"""Live demo: quantization, prompt compression and speculative decoding on a small real LM.

The public face is `live_demo.api` (pages, the CLI and the benchmark use nothing else); importing this package
imports neither torch nor streamlit.
"""
