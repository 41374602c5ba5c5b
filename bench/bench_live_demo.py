"""Run the live-demo benchmark and write the JSON to a file (a thin wrapper over `python -m live_demo bench`).

Usage: python bench/bench_live_demo.py [--quick] [--device auto|cpu|cuda] [--sections A,B] [--out x.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--sections", default="quantization,compression,speculative,decode_paths,sweep",
                        help="comma-separated: quantization, compression, speculative, decode_paths, outliers, sweep")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench_results" / "live_demo_bench.json")
    args = parser.parse_args()
    from live_demo import run_bench
    from live_demo.api import LiveDemoError

    try:
        result = run_bench(device=args.device, quick=args.quick,
                           sections=tuple(x.strip() for x in args.sections.split(",") if x.strip()),
                           progress=lambda f, m: print(f"[bench] {m}", file=sys.stderr, flush=True))
    except (LiveDemoError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
