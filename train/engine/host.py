"""The machine a run trains or is evaluated on, as the report names it."""

from __future__ import annotations

import os
import platform

import torch


def machine() -> dict:
    """Where the evaluation (and, from the runs' timing records, the training) ran."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass  # not Linux: keep platform's answer
    info = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def machine_name(device: torch.device | str | None = None) -> str:
    """One line: the GPU's name on a CUDA device, else the CPU model and core count."""
    info = machine()
    if device is not None and str(device).startswith("cuda") and info["gpu"]:
        return str(info["gpu"])
    return f"{info['cpu']} ({info['cpu_count']} logical CPUs)"
