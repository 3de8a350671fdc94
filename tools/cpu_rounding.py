"""How far another CPU's rounding moves a training run, measured on one machine.

    python -m tools.cpu_rounding [--steps 60] [--preset default] [--out-dir runs/cpu-rounding]

Runs ``train.pretrain`` twice from scratch, same commit and seeds: once with this CPU's
native kernels and once with the AVX2 kernels that a CPU without AVX-512 runs
(``ATEN_CPU_CAPABILITY``, MKL and oneDNN limited to AVX2; its own torch compile cache,
since the cache served AVX-512 code to an AVX2 process here). It then compares the two
bit for bit and writes ``<out-dir>/report.md`` and ``divergence.png``:

- the generated data (images, landmarks, cameras): how many entries differ, how much;
- the training loss of every step, and the first step where it differs;
- the relative L2 difference of the raw weights after the last step.

A different CPU changes the last bits of the data and of every step; training turns
that into a different model, the way a different seed does (docs/default-run/).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from _common.atomic import write_text
from _common.figures import pyplot, save_figure
from train.engine.run_log import read_metrics

#: environment of each variant (on top of the caller's)
VARIANTS = {
    "native": {},
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "MKL_CBWR": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
    },
}


def has_avx2() -> bool:
    """Whether this CPU runs AVX2 code (else the emulated variant cannot run)."""
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2" in f.read()
    except OSError:
        return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def run_variant(tag: str, steps: int, preset: str, out_dir: str) -> str:
    """Train ``train.pretrain`` for ``steps`` steps under variant ``tag`` in
    ``<out_dir>/<tag>`` (skipped when finished before); returns the run folder."""
    folder = os.path.join(out_dir, tag)
    run = os.path.join(folder, "pretrain")
    if os.path.exists(os.path.join(run, "final.safetensors")):
        return run
    env = {
        **os.environ,
        **VARIANTS[tag],
        "TORCHINDUCTOR_CACHE_DIR": os.path.join(os.path.abspath(out_dir), f".inductor-{tag}"),
    }
    every = str(steps)
    cmd = [sys.executable, "-m", "train.pretrain", "--preset", preset, "--out-dir", folder,
           "--steps", every, "--eval-every", every, "--checkpoint-every", every]  # fmt: skip
    subprocess.run(cmd, env=env, check=True)
    return run


def data_differences(dir_a: str, dir_b: str) -> list[dict]:
    """Per data file (``.safetensors`` in both folders) and tensor: the number of entries
    that differ, of how many, and the largest absolute difference."""
    rows = []
    names = sorted(n for n in os.listdir(dir_a) if n.endswith(".safetensors"))
    for name in names:
        other = os.path.join(dir_b, name)
        if not os.path.exists(other):
            raise FileNotFoundError(f"{other}: missing (the data of the two runs must match)")
        a, b = load_file(os.path.join(dir_a, name)), load_file(other)
        for key in sorted(a):
            x, y = a[key].double(), b[key].double()
            if x.shape != y.shape:
                raise ValueError(f"{name}:{key}: shapes {tuple(x.shape)} and {tuple(y.shape)}")
            differ = x != y
            rows.append({
                "file": name, "tensor": key, "differ": int(differ.sum()), "of": x.numel(),
                "max_abs": float((x - y).abs().max()) if x.numel() else 0.0,
            })  # fmt: skip
    return rows


def step_losses(metrics_path: str) -> list[float]:
    """The training loss of every step of a run's ``metrics.jsonl``, in order."""
    if not os.path.exists(metrics_path):
        raise FileNotFoundError(f"{metrics_path}: no metrics (the run did not train)")
    return [r["loss"] for r in read_metrics(metrics_path) if "loss" in r]


def first_difference(a: list[float], b: list[float]) -> int | None:
    """1-based step of the first loss that differs, or None when all are equal."""
    for step, (x, y) in enumerate(zip(a, b), start=1):
        if x != y:
            return step
    return None


def weight_difference(ckpt_a: str, ckpt_b: str) -> float:
    """``|w_a - w_b| / |w_a|`` over every floating-point model tensor of two checkpoints."""
    a, b = load_file(ckpt_a), load_file(ckpt_b)
    keys = [k for k in a if k.startswith("model.") and a[k].is_floating_point()]
    if not keys or set(keys) - set(b):
        raise ValueError(f"{ckpt_a} and {ckpt_b} do not hold the same model")
    num = sum(float((a[k].double() - b[k].double()).square().sum()) for k in keys)
    den = sum(float(a[k].double().square().sum()) for k in keys)
    return (num / den) ** 0.5


def _data_dir(folder: str) -> str:
    root = os.path.join(folder, ".data")
    subs = sorted(os.listdir(root))
    if len(subs) != 1:
        raise ValueError(f"{root}: expected one data cache, found {subs}")
    return os.path.join(root, subs[0])


def report(out_dir: str, steps: int) -> str:
    """Compare the two finished variants in ``out_dir``; returns the markdown."""
    runs = {tag: os.path.join(out_dir, tag, "pretrain") for tag in VARIANTS}
    data = data_differences(*(_data_dir(os.path.join(out_dir, t)) for t in VARIANTS))
    losses = {t: step_losses(os.path.join(r, "metrics.jsonl")) for t, r in runs.items()}
    first = first_difference(losses["native"], losses["avx2"])
    # the raw weights after the last step (final.safetensors may hold their average)
    weights = weight_difference(*(os.path.join(r, "last.safetensors") for r in runs.values()))
    lines = [
        "# Another CPU's rounding, emulated: native kernels against AVX2 kernels",
        "",
        f"`train.pretrain`, {steps} steps, same commit and seeds, on "
        f"{torch.backends.cpu.get_cpu_capability()} hardware.",
        "",
        "## Generated data: entries that differ",
        "",
        "| file | tensor | differ | of | largest difference |",
        "|---|---|---|---|---|",
    ]
    changed = [r for r in data if r["differ"]]
    for r in changed:
        lines.append(f"| {r['file']} | {r['tensor']} | {r['differ']} | {r['of']} | "
                     f"{r['max_abs']:.3g} |")  # fmt: skip
    if not changed:
        lines.append("| (all) | (all) | 0 | | |")
    lines += [
        "",
        "## Training",
        "",
        f"First step whose loss differs: {first if first else 'none'}. Relative difference "
        f"of the raw weights after {steps} steps: {weights:.3g}.",
        "",
        "| step | loss, native | AVX2 - native |",
        "|---|---|---|",
    ]
    n = min(len(losses["native"]), len(losses["avx2"]))
    for k in sorted({1, 2, 3, 5, 10, 20, 30, 40, 60, 100, 200, 360, n} & set(range(1, n + 1))):
        native, avx2 = losses["native"][k - 1], losses["avx2"][k - 1]
        lines.append(f"| {k} | {native:.6f} | {avx2 - native:+.3e} |")
    _plot(losses, os.path.join(out_dir, "divergence.png"))
    text = "\n".join(lines) + "\n\n![divergence](divergence.png)\n"
    write_text(os.path.join(out_dir, "report.md"), text)
    return text


def _plot(losses: dict[str, list[float]], path: str) -> None:
    plt = pyplot()

    n = min(len(v) for v in losses.values())
    gap = [abs(a - b) for a, b in zip(losses["native"][:n], losses["avx2"][:n])]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for tag, values in losses.items():
        axes[0].plot(range(1, n + 1), values[:n], label=tag, lw=1)
    axes[0].set(xlabel="step", ylabel="training loss", title="the two runs")
    axes[0].legend()
    axes[1].semilogy(range(1, n + 1), [g if g > 0 else float("nan") for g in gap], lw=1)
    axes[1].set(xlabel="step", ylabel="|loss AVX2 - loss native|", title="their difference")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m tools.cpu_rounding", description=__doc__)
    parser.add_argument("--steps", type=int, default=60, help="training steps (default: 60)")
    parser.add_argument("--preset", default="default", help="config preset (default: default)")
    parser.add_argument("--out-dir", default="runs/cpu-rounding", help="(default: %(default)s)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if not has_avx2():
        parser.error("this CPU has no AVX2: the emulated variant cannot run here")
    for tag in VARIANTS:
        run_variant(tag, args.steps, args.preset, args.out_dir)
    text = report(args.out_dir, args.steps)
    print(text)
    return text


if __name__ == "__main__":
    main()
