"""Install the pinned torch (requirements.txt) into the running virtual environment, choosing the build:

- an NVIDIA GPU listed by `nvidia-smi -L`: the CUDA build, from pip's configured indexes (PyPI's Linux wheel is the
  CUDA build, about 2.5 GB with its CUDA packages);
- otherwise the CPU build (about 200 MB), from PyTorch's CPU index (https://download.pytorch.org/whl/cpu), as
  PyTorch's install page documents; where that index does not answer within a few seconds (offline mirror,
  firewall), from pip's configured indexes, with a warning saying so.

Usage: .venv/bin/python scripts/install_torch.py [--dry-run] [--reinstall]
Environment: ELLM_TORCH=auto|cpu|cuda forces a build (default auto); ELLM_TORCH_CPU_INDEX replaces the CPU index URL;
ELLM_TORCH_PROBE_TIMEOUT is the index probe's timeout in seconds (default 5).
Prints one line saying which build was chosen and why, and one with what ended up installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class Choice:
    build: str            # "cpu" or "cuda"
    reason: str           # one line, for the user
    pip_args: list[str]   # the arguments after `python -m pip install`
    fallback: list[str] | None = None  # what to run when the first install fails (CPU index broke mid-way)


def pinned_version(requirements: Path = ROOT / "requirements.txt") -> str:
    """The `torch==X` pin of requirements.txt (the one place the version lives)."""
    match = re.search(r"^torch==([^\s#;]+)", requirements.read_text(encoding="utf-8"), flags=re.M)
    if not match:
        raise SystemExit(f"no torch==VERSION pin in {requirements}")
    return match.group(1)


def detect_gpu(timeout_s: float = 15.0) -> str | None:
    """The first line of `nvidia-smi -L` ("GPU 0: NVIDIA H100 ..."), or None without a working NVIDIA driver."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip().startswith("GPU")]
    return lines[0].split(" (UUID")[0] if out.returncode == 0 and lines else None


def index_reachable(url: str, timeout_s: float) -> bool:
    """True when the index's torch page answers at all (any HTTP status) within `timeout_s` seconds."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url.rstrip("/") + "/torch/", method="HEAD"),
                                    timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):   # URLError (DNS, refused), socket timeout, malformed URL
        return False


def choose(version: str, gpu: str | None, forced: str, cpu_index: str, cpu_index_ok: bool) -> Choice:
    """The build to install and the pip arguments; pure, so the selection is testable without a network."""
    spec = f"torch=={version}"
    build = forced if forced in {"cpu", "cuda"} else ("cuda" if gpu else "cpu")
    if build == "cuda":
        why = "ELLM_TORCH=cuda" if forced == "cuda" else f"nvidia-smi lists {gpu.split(' (UUID')[0]}"
        return Choice("cuda", f"CUDA build ({why}), from pip's configured indexes", [spec])
    why = "ELLM_TORCH=cpu" if forced == "cpu" else "no NVIDIA GPU found by nvidia-smi"
    if cpu_index_ok:
        return Choice("cpu", f"CPU build ({why}), from {cpu_index}", ["--index-url", cpu_index, spec], [spec])
    return Choice("cpu", f"CPU build ({why}); {cpu_index} did not answer, so from pip's configured indexes "
                         "(where they hold only PyPI's Linux wheel, that is the CUDA build, about 2.5 GB)", [spec])


def installed_build() -> tuple[str, str] | None:
    """(version, "cpu" | "cuda") of the installed torch, read from its metadata (torch is not imported)."""
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None
    cuda = "+cu" in version or any(_installed(re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0])
                                   for r in metadata.requires("torch") or [] if r.lower().startswith("nvidia-"))
    return version, ("cuda" if cuda else "cpu")


def _installed(name: str) -> bool:
    """Whether a distribution is installed (torch lists its CUDA packages behind platform markers, so only an
    installed one shows that the CUDA build is present)."""
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the choice and the pip command; install nothing")
    parser.add_argument("--reinstall", action="store_true", help="ignore an already installed matching torch")
    args = parser.parse_args(argv)
    forced = os.environ.get("ELLM_TORCH", "auto").strip().lower()
    if forced not in {"auto", "cpu", "cuda"}:
        print(f"ELLM_TORCH must be auto, cpu or cuda, not {forced!r}", file=sys.stderr)
        return 2
    version, gpu = pinned_version(), detect_gpu()
    want = forced if forced != "auto" else ("cuda" if gpu else "cpu")
    have = installed_build()
    if have and not args.reinstall and have[0].split("+")[0] == version and have[1] == want:
        print(f"torch: {have[0]} ({have[1].upper()} build) is already installed")
        return 0
    cpu_index = os.environ.get("ELLM_TORCH_CPU_INDEX", CPU_INDEX)
    timeout_s = float(os.environ.get("ELLM_TORCH_PROBE_TIMEOUT", "5"))
    choice = choose(version, gpu, forced, cpu_index, want == "cpu" and index_reachable(cpu_index, timeout_s))
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    print(f"torch: installing torch=={version}, {choice.reason}", flush=True)
    if args.dry_run:
        print("would run: " + " ".join(pip + choice.pip_args))
        return 0
    if subprocess.run(pip + choice.pip_args, check=False).returncode != 0:
        if choice.fallback is None or subprocess.run(pip + choice.fallback, check=False).returncode != 0:
            print("torch: installation failed (see pip's message above)", file=sys.stderr)
            return 1
    have = installed_build()
    if have:
        print(f"torch: installed {have[0]} ({have[1].upper()} build)")
        if have[1] != choice.build:
            print(f"torch: warning: a {choice.build.upper()} build was wanted, pip chose the {have[1].upper()} "
                  "build; set ELLM_TORCH or pip's index settings to change that", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
