"""Live demo: quantization, prompt compression and speculative decoding on a small real LM."""
