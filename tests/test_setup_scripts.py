"""The setup scripts behind `make app` / `make test`: which torch build is installed, and the app launcher."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import install_torch  # noqa: E402

UNREACHABLE = "http://127.0.0.1:9/whl/cpu"   # the discard port: connection refused at once


def dry_run(tmp_path, gpu_line: str | None, cpu_index: str, forced: str = "") -> str:
    """Run scripts/install_torch.py --dry-run with a fake `nvidia-smi` on PATH (or none) and return its output."""
    bin_dir = Path(tempfile.mkdtemp(dir=tmp_path))
    if gpu_line is not None:
        fake = bin_dir / "nvidia-smi"
        fake.write_text(f"#!/bin/sh\necho '{gpu_line}'\n")
        fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "ELLM_TORCH_CPU_INDEX": cpu_index,
           "ELLM_TORCH_PROBE_TIMEOUT": "3"}
    env.pop("ELLM_TORCH", None)
    if forced:
        env["ELLM_TORCH"] = forced
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "install_torch.py"), "--dry-run", "--reinstall"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture()
def reachable_index():
    """A local HTTP server standing in for PyTorch's CPU index."""
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/whl/cpu"
    server.shutdown()
    server.server_close()


def test_the_pinned_version_comes_from_requirements_txt():
    assert install_torch.pinned_version() == "2.13.0"


def test_no_gpu_and_a_reachable_cpu_index_installs_the_cpu_build_from_it(tmp_path, reachable_index):
    out = dry_run(tmp_path, None, reachable_index)
    assert "CPU build (no NVIDIA GPU found by nvidia-smi)" in out
    assert f"pip install --quiet --index-url {reachable_index} torch==2.13.0" in out


def test_no_gpu_and_an_unreachable_cpu_index_falls_back_to_the_configured_indexes(tmp_path):
    out = dry_run(tmp_path, None, UNREACHABLE)
    assert "CPU build" in out and "did not answer" in out
    assert out.strip().endswith("pip install --quiet torch==2.13.0")


def test_a_gpu_listed_by_nvidia_smi_gets_the_cuda_build(tmp_path, reachable_index):
    out = dry_run(tmp_path, "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)", reachable_index)
    assert "CUDA build (nvidia-smi lists GPU 0: NVIDIA H100 80GB HBM3)" in out
    assert out.strip().endswith("pip install --quiet torch==2.13.0") and "--index-url" not in out


def test_nvidia_smi_without_a_gpu_and_the_override_choose_the_cpu_build(tmp_path):
    assert "CPU build" in dry_run(tmp_path, "No devices were found", UNREACHABLE)
    assert "CPU build (ELLM_TORCH=cpu)" in dry_run(tmp_path, "GPU 0: NVIDIA A100", UNREACHABLE, forced="cpu")
    assert "CUDA build (ELLM_TORCH=cuda)" in dry_run(tmp_path, None, UNREACHABLE, forced="cuda")


def test_choose_keeps_a_fallback_when_the_cpu_index_breaks_mid_install():
    choice = install_torch.choose("2.13.0", None, "auto", install_torch.CPU_INDEX, cpu_index_ok=True)
    assert choice.build == "cpu" and choice.fallback == ["torch==2.13.0"]
    assert install_torch.choose("2.13.0", "GPU 0: x", "auto", install_torch.CPU_INDEX, True).fallback is None


def test_the_launcher_switches_off_legacy_pages_folder_routing():
    """scripts/serve.py relies on Streamlit's PagesManager.uses_pages_directory (see its docstring); if an upgrade
    removes it, this fails here instead of the first visitor seeing "Page not found" again."""
    import serve
    from streamlit.runtime.pages_manager import PagesManager

    before = PagesManager.uses_pages_directory
    try:
        serve.declare_navigation_routing()
        assert PagesManager.uses_pages_directory is False
    finally:
        PagesManager.uses_pages_directory = before


@pytest.mark.parametrize(("version", "installed", "build"), [
    ("2.13.0+cpu", set(), "cpu"),
    ("2.13.0", set(), "cpu"),                          # PyPI's macOS wheel: CUDA packages listed, none installed
    ("2.13.0", {"nvidia-cublas-cu12"}, "cuda"),        # PyPI's Linux wheel with its CUDA packages
    ("2.13.0+cu126", set(), "cuda"),
])
def test_the_installed_build_is_read_from_metadata(monkeypatch, version, installed, build):
    def fake_version(name):
        if name == "torch":
            return version
        if name in installed:
            return "12.6"
        raise install_torch.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(install_torch.metadata, "version", fake_version)
    monkeypatch.setattr(install_torch.metadata, "requires",
                        lambda name: ['nvidia-cublas-cu12==12.6.4.1; platform_system == "Linux"', "sympy>=1.13"])
    assert install_torch.installed_build() == (version, build)
