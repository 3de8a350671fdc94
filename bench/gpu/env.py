"""The ``env`` stage: what machine ran the benchmarks, and its copy bandwidth.

The device-to-device copy bandwidth measured here is the yardstick of the
memory-bound kernels (``bench.projection`` measures a copy of each case's own
bytes too); its buffer is large enough (1 GiB per side on a GPU) that launch
overhead does not count.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys

import torch

from bench.common import cpu_model, device_name, time_call

#: Bytes per side of the bandwidth copy: on a GPU, and on the CPU of a dry run.
COPY_BYTES = {"cuda": 1 << 30, "cpu": 16 << 20}


def _command_line(cmd: list[str]) -> str | None:
    """First line of a tool's output (``nvcc --version`` ...), or None if it does not run."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    return lines[-1] if lines else None


def driver_version() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi``, if it runs."""
    return _command_line(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])


def copy_bandwidth(device: torch.device, nbytes: int) -> dict:
    """Median bandwidth of ``dst.copy_(src)`` for ``nbytes`` per buffer (read + write
    counted), in GB/s."""
    numel = nbytes // 4
    src = torch.rand(numel, device=device)
    dst = torch.empty_like(src)
    ms = time_call(lambda: dst.copy_(src), device, warmup=3, min_repeats=10, budget_s=1.0)
    return {"bytes_per_side": numel * 4, "ms": ms, "GBps": 2 * numel * 4 / (ms * 1e-3) / 1e9}


def environment(device: torch.device) -> dict:
    """Device, software versions and tools of this machine (GPU fields None on a CPU)."""
    import numpy
    import triton

    info = {
        "device": device_name(device),
        "device_type": device.type,
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "triton": triton.__version__,
        "numpy": numpy.__version__,
        "triton_interpret": os.environ.get("TRITON_INTERPRET", ""),
        "nvcc": _command_line(["nvcc", "--version"]),
        "ninja": _command_line(["ninja", "--version"]),
        "ncu": _command_line(["ncu", "--version"]),
        "driver": None,
        "gpu_name": None,
        "sm_count": None,
        "memory_GiB": None,
        "capability": None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            driver=driver_version(),
            gpu_name=props.name,
            sm_count=props.multi_processor_count,
            memory_GiB=props.total_memory / 2**30,
            capability=f"{props.major}.{props.minor}",
        )
    return info


def run(device: torch.device) -> dict:
    """The stage's record: :func:`environment` plus :func:`copy_bandwidth`."""
    info = environment(device)
    info["copy"] = copy_bandwidth(device, COPY_BYTES[device.type])
    gpu = f"{info['gpu_name']}, {info['sm_count']} SMs" if info["gpu_name"] else info["cpu"]
    info["headline"] = (
        f"{gpu}; torch {info['torch']}, triton {info['triton']}, CUDA {info['torch_cuda']}; "
        f"copy {info['copy']['GBps']:.0f} GB/s"
    )
    return info
