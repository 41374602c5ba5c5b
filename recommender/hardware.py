"""Accelerator presets (data/gpus.yaml) and custom accelerators."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .errors import check_number, unknown_id_error

DATA_DIR = Path(__file__).parent / "data"

# PCIe 4.0 x16 moves about 25 GB/s in practice (docs/cost_model.md §2.6); used for CPU offload.
PCIE_OFFLOAD_GBPS = 25.0
# Share of unified memory an Apple GPU may wire by default: ~75% (XiongjieDai README citing an Apple tech talk;
# the same figure as the Apple presets in data/gpus.yaml).
UNIFIED_MEMORY_USABLE_FRACTION = 0.75


@dataclass(frozen=True)
class GPU:
    """One accelerator. Peaks are dense; memory_gib is what one device exposes."""

    id: str
    name: str
    memory_gib: float
    bandwidth_gbps: float
    fp16_tflops: float
    int8_tops: float = 0.0
    vendor: str = "custom"
    kind: str = "custom"
    arch: str = "unknown"
    bf16: bool = True
    fp8: bool = False
    flash_attention_2: bool = True
    usable_fraction: float = 1.0
    link_gbps: float = PCIE_OFFLOAD_GBPS
    confidence: str = "user"
    source: str = "entered by the user"

    @property
    def usable_memory_gib(self) -> float:
        """Memory a framework can actually allocate (Apple GPUs see ~75% of unified memory)."""
        return self.memory_gib * self.usable_fraction

    @property
    def gpu_class(self) -> str:
        """Coarse class used as a calibration feature."""
        if self.vendor in ("apple", "amd", "cpu"):
            return self.vendor
        if self.kind in ("consumer", "workstation"):
            return "nvidia-consumer"
        if self.vendor == "nvidia":
            return "nvidia-datacenter"
        return "custom"

    @property
    def int8_tensor_cores(self) -> bool:
        return self.int8_tops > 0

    @classmethod
    def from_name(cls, name: str) -> GPU:
        """Look up a preset by id (case-insensitive); suggests close ids when unknown."""
        presets = gpu_presets()
        key = str(name).strip().lower()
        if key in presets:
            return presets[key]
        raise unknown_id_error("gpu", str(name), list(presets))

    @classmethod
    def custom(cls, memory_gib: float, bandwidth_gbps: float | None = None,
               fp16_tflops: float | None = None, name: str = "custom GPU", unified_memory: bool = False) -> GPU:
        """A user-described accelerator; unknown bandwidth/TFLOPS default to an A100-class part.

        `unified_memory` marks memory shared with the CPU (Apple silicon): only UNIFIED_MEMORY_USABLE_FRACTION of it
        is usable by the GPU. Raises RecommenderInputError for a non-finite or out-of-range number.
        """
        mem = check_number("gpu memory (GiB)", memory_gib, low=0.25, high=4096)
        bw = check_number("gpu bandwidth (GB/s)", bandwidth_gbps if bandwidth_gbps is not None else 2039,
                          low=1, high=100_000)
        tf = check_number("gpu TFLOPS", fp16_tflops if fp16_tflops is not None else 312, low=0.01, high=100_000)
        return cls(id="custom", name=name, memory_gib=mem, bandwidth_gbps=bw, fp16_tflops=tf, int8_tops=2 * tf,
                   usable_fraction=UNIFIED_MEMORY_USABLE_FRACTION if unified_memory else 1.0,
                   vendor="apple" if unified_memory else "custom")

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def gpu_presets() -> dict[str, GPU]:
    """All presets from data/gpus.yaml, keyed by id."""
    rows = yaml.safe_load((DATA_DIR / "gpus.yaml").read_text())
    return {row["id"]: GPU(**row) for row in rows}


def resolve_gpu(gpu: str | GPU | None = None, memory_gib: float | None = None,
                bandwidth_gbps: float | None = None, fp16_tflops: float | None = None,
                unified_memory: bool = False) -> GPU:
    """A preset by id, an existing GPU, or a custom GPU from its memory (+ bandwidth, TFLOPS, unified memory).

    Raises RecommenderInputError when a preset and custom figures are both given (they would conflict).
    """
    if isinstance(gpu, GPU):
        return gpu
    if gpu:
        given = [n for n, v in (("--gpu-mem-gib", memory_gib), ("--gpu-bandwidth-gbps", bandwidth_gbps),
                                ("--gpu-tflops", fp16_tflops)) if v is not None]
        if given or unified_memory:
            raise check_error(f"--gpu {gpu} conflicts with {', '.join(given) or '--unified-memory'}: give a preset "
                              "or a custom GPU, not both")
        return GPU.from_name(gpu)
    if memory_gib is None:
        raise check_error("give a GPU preset id (--gpu) or a custom GPU memory (--gpu-mem-gib)")
    return GPU.custom(memory_gib, bandwidth_gbps, fp16_tflops, unified_memory=unified_memory)


def check_error(message: str):
    from .errors import RecommenderInputError

    return RecommenderInputError(message)
