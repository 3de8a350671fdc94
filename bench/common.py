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


def require_at_least(parser, args, names, minimum: int = 1, unit: str = "") -> None:
    """Stop with ``parser.error`` naming the first of the options ``names`` (attributes of
    the parsed ``args``; ``None`` means unset and passes) whose value is below
    ``minimum``: ``--frames must be >= 1, got 0``."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < minimum:
            parser.error(f"--{name.replace('_', '-')} must be >= {minimum}{unit}, got {value}")


def bench_device(name: str) -> torch.device:
    """``"auto"`` (CUDA when available, else CPU) or an explicit torch device string."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def machine_fields(device: torch.device) -> dict:
    """The fields every bench payload starts with: device name and model, torch, threads."""
    return {
        "device": device_name(device),
        "device_model": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def write_results(
    out_root: str,
    name: str,
    payload: dict,
    markdown: Callable[[dict], str],
    plot: Callable[[dict, str], None],
) -> str:
    """Write ``<name>.json``, ``.md`` and ``.png`` under ``<out_root>/<device>/`` (sets
    ``payload["out_dir"]``), print the markdown, and return it."""
    from _common.atomic import write_json, write_text

    out_dir = os.path.join(out_root, payload["device"])
    payload["out_dir"] = out_dir
    write_json(os.path.join(out_dir, f"{name}.json"), payload)
    text = markdown(payload)
    write_text(os.path.join(out_dir, f"{name}.md"), text)
    plot(payload, os.path.join(out_dir, f"{name}.png"))
    print(text)
    print(f"wrote {out_dir}/{name}.{{json,md,png}}")
    return text
