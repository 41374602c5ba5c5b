"""Benchmark: page faults and time per call of the live demo's quantized Linear layers on the CPU (issue 14).

    .venv/bin/python bench/bench_qlayer_page_faults.py [--calls 200] [--threads 2]

The int8 weight-only layer once made a fresh fp32 weight in every call. Whether such a multi-megabyte temporary
costs anything depends on glibc's allocator state: served from pages the heap already holds it is cheap; served
by a fresh mmap, or by a heap whose top glibc gave back to the system after the previous call, every one of its
4 KiB pages is faulted in and zeroed again in every call. glibc moves between these regimes on its own (its mmap
and trim thresholds adapt to the sizes freed so far): on the project's 2-core machine 3 of 24 default-state runs
of this script flipped. This script runs each regime in a fresh subprocess (the default state, and the mmap
regime pinned with an environment variable) and measures, for one SmolLM2-135M MLP shape (1536 x 576), minor page
faults (getrusage) and microseconds per call of:

- fp32: a plain nn.Linear (no dequantization: the floor);
- int8-wo, int4-g32: our layers as the demo runs them (dequantized into a reused per-thread workspace);
- int8-wo alloc, int4-g32 alloc: the same layers computing through a freshly dequantized weight per call
  (`dequantized_weight()`), which is what the int8 layer did when issue 14 was filed.

Fault counts are exact and do not depend on other load; the times do (2 shared cores here). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

REGIMES = {
    "default": {},
    # a fixed mmap threshold turns glibc's adaptive threshold off: every temporary above 128 KiB is a fresh mmap
    "mmap every temporary": {"MALLOC_MMAP_THRESHOLD_": "131072"},
}
LAYERS = ["fp32", "int8-wo", "int8-wo alloc", "int4-g32", "int4-g32 alloc"]


def _child(calls: int, threads: int) -> dict:
    import resource
    import time

    import torch

    from live_demo.qlayers import PackedInt4Linear, WeightOnlyInt8Linear

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(576, 1536, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(1536, 576, generator=gen) * 0.02)
    int8, int4 = WeightOnlyInt8Linear(linear), PackedInt4Linear(linear, 32)
    x = torch.randn(1, 1, 576, generator=gen)
    runs = {
        "fp32": lambda: linear(x),
        "int8-wo": lambda: int8(x),
        "int8-wo alloc": lambda: torch.nn.functional.linear(x, int8.dequantized_weight()),
        "int4-g32": lambda: int4(x),
        "int4-g32 alloc": lambda: torch.nn.functional.linear(x, int4.dequantized_weight()),
    }
    out = {}
    with torch.inference_mode():
        for name in LAYERS:
            for _ in range(5):  # warm-up: workspaces and first-call costs
                runs[name]()
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            for _ in range(calls):
                runs[name]()
            seconds = time.perf_counter() - start
            out[name] = {"faults_per_call": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / calls,
                         "us_per_call": seconds / calls * 1e6}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.calls, args.threads)))
        return 0
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "shape": [1536, 576], "weight_pages_fp32": 1536 * 576 * 4 // 4096, "calls": args.calls,
              "threads": args.threads, "regimes": {}}
    for regime, env in REGIMES.items():
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--calls", str(args.calls),
                               "--threads", str(args.threads)], env={**os.environ, **env, "PYTHONPATH": root},
                              capture_output=True, text=True, check=True)
        result["regimes"][regime] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
