"""Shared plumbing of the benchmarks: device naming, timing, output files."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable

import torch

#: Peak HBM bandwidth of an H100 SXM5 (bytes/s), for roofline estimates.
H100_BANDWIDTH = 3.35e12


def device_name(device: torch.device) -> str:
    """A filesystem-safe name of the machine that ran a benchmark, e.g.
    ``nvidia-h100-80gb-hbm3`` or ``cpu-x86_64-2cores``."""
    if device.type == "cuda":
        raw = torch.cuda.get_device_name(device)
    else:
        raw = f"cpu-{platform.machine()}-{os.cpu_count()}cores"
    return re.sub(r"[^a-z0-9_.]+", "-", raw.lower()).strip("-")


def cpu_model() -> str:
    """The CPU's model name (Linux), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], object],
    device: torch.device,
    *,
    warmup: int = 2,
    min_repeats: int = 3,
    max_repeats: int = 50,
    budget_s: float = 1.0,
) -> float:
    """Median wall time of ``fn()`` in milliseconds, after ``warmup`` calls.

    Repeats until ``budget_s`` seconds are spent (at least ``min_repeats``,
    at most ``max_repeats`` times). GPU work is synchronized around each call.
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_repeats and (
        len(times) < min_repeats or time.perf_counter() - start < budget_s
    ):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


