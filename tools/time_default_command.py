"""The default command timed as a new user meets it, and its results kept.

    python -m tools.time_default_command [--out docs/default-run/default-command]
                                         [--work /tmp/default-command] [--python python3]

Clones this repository's HEAD (commit your work first: the clone has only commits)
into ``--work``, makes a new venv there, and times, separately:

1. the install: ``pip install torch==2.13.0 && pip install -e .`` (pip's download cache
   as this machine has it: the time is the install's, not the network's);
2. ``python -m train.finetune`` in the clone, with empty torch-compile
   (``TORCHINDUCTOR_CACHE_DIR``) and user caches (``XDG_CACHE_HOME``: the stand-in head
   is built as on a first run).

Before the command it also times the README's quick start (process start-up and the
first render included) in the new venv: with an empty torch-compile cache under the
default ``MINIRAST_COMPILE=auto``, again with that cache warm, and with an empty cache
under ``MINIRAST_COMPILE=1`` (compile at the first large call: the policy before
``auto`` waited for a stage to cost its compile).

It writes ``--out/results.json`` (what the command's report wrote), ``--out/command.log``
(what it printed, each progress bar at its last state) and ``--out/timing.json``
(commit, date, machine, torch, both times and each run's training time), which
``tools/default_run_docs.py`` turns into ``docs/default-run/README.md``'s numbers.
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common.atomic import write_text
from train.engine.host import machine_name

ROOT = Path(__file__).resolve().parents[1]
INSTALL = "pip install --quiet torch==2.13.0 && pip install --quiet -e ."
COMMAND = "python -m train.finetune"


def timed(command: str, cwd: Path, env: dict, log: Path | None = None) -> float:
    """Run ``command`` in bash; its wall time in seconds (``log``: keep its output)."""
    start = time.perf_counter()
    out = open(log, "w") if log else subprocess.DEVNULL
    try:
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdout=out,
                              stderr=subprocess.STDOUT)  # fmt: skip
    finally:
        if log:
            out.close()
    if done.returncode != 0:
        raise RuntimeError(f"`{command}` failed with exit code {done.returncode}")
    return time.perf_counter() - start


def quick_start_code() -> str:
    """The Python block under the README's "Quick start" heading."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"## Quick start\n+```python\n(.*?)```", text, re.S)
    if match is None:
        raise RuntimeError("README.md has no Python block under '## Quick start'")
    return match.group(1)


def time_quick_start(work: Path, env: dict) -> dict[str, float]:
    """Seconds of ``python quick.py`` (the README block) in a fresh folder: cold and warm
    compile cache under ``auto``, and cold under ``MINIRAST_COMPILE=1``; first the
    one-time build of the stand-in head into the (empty) user cache."""
    script = work / "quick.py"
    script.write_text(quick_start_code())
    # the stand-in head is built once per machine (then cached): timed on its own
    out = {"standin_build": round(timed('python -c "import flame; flame.FLAME(\'bundled\')"',
                                         work, env), 2)}  # fmt: skip
    for name, policy, cache in (("auto_cold", "auto", "qs-auto"), ("auto_warm", "auto", "qs-auto"),
                                ("compile_cold", "1", "qs-compile")):  # fmt: skip
        run_env = dict(env, MINIRAST_COMPILE=policy, TORCHINDUCTOR_CACHE_DIR=str(work / cache))
        folder = work / f"quick-{name}"
        folder.mkdir()
        out[name] = round(timed(f"python {script}", folder, run_env), 2)
    return out


def last_states(text: str) -> str:
    """``text`` with each progress bar (tqdm: ``desc:  42%|...``) at its last state
    only: a bar line followed by a line of the same bar is dropped."""
    lines = [line.split("\r")[-1] for line in text.split("\n")]

    def bar(line: str) -> str | None:
        head, sep, rest = line.partition(":")
        return head if sep and "%|" in rest else None

    kept = [a for a, b in zip(lines, lines[1:] + [""]) if bar(a) is None or bar(a) != bar(b)]
    return "\n".join(kept)


def train_seconds(results: dict) -> dict[str, float]:
    """Each run's training time from the report's run table (its metrics.jsonl)."""
    out = {}
    for run in results["runs"].values():
        seconds = run["budget"]["train_seconds"]
        if seconds is not None:
            out[os.path.basename(run["dir"])] = round(seconds, 1)
    return out


def step_seconds(results: dict) -> dict[str, float]:
    """Each run's mean training step time (its timing record)."""
    return {
        os.path.basename(run["dir"]): round(run["budget"]["mean_step_s"], 3)
        for run in results["runs"].values()
        if run["budget"]["mean_step_s"] is not None
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.time_default_command",
                                     description=__doc__)  # fmt: skip
    parser.add_argument("--out", default=str(ROOT / "docs/default-run/default-command"))
    parser.add_argument("--work", default="/tmp/default-command")
    parser.add_argument("--python", default=sys.executable, help="makes the new venv")
    args = parser.parse_args(argv)
    work = Path(args.work)
    if work.exists():
        parser.error(f"--work {work} exists: give a new folder")
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    if dirty:
        print("note: uncommitted changes are not in the clone", file=sys.stderr)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    subprocess.run([args.python, "-m", "venv", str(work / "venv")], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{work / 'venv' / 'bin'}{os.pathsep}{env['PATH']}"
    env["TORCHINDUCTOR_CACHE_DIR"] = str(work / "inductor")
    env["XDG_CACHE_HOME"] = str(work / "cache")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    install_s = timed(INSTALL, clone, env)
    quick = time_quick_start(work, env)
    log = work / "command.log"
    command_s = timed(COMMAND, clone, env, log)
    results = json.loads((clone / "runs/finetune/report/results.json").read_text())
    torch_version = subprocess.run(
        ["python", "-c", "import torch; print(torch.__version__)"], cwd=clone, env=env,
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    timing = {
        "commit": commit,
        "date": datetime.date.today().isoformat(),
        "machine": machine_name(),
        "torch": torch_version,
        "install": INSTALL,
        "command": COMMAND,
        "install_s": round(install_s, 1),
        "command_s": round(command_s, 1),
        "train_s": train_seconds(results),
        "mean_step_s": step_seconds(results),
        "quick_start_s": quick,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clone / "runs/finetune/report/results.json", out / "results.json.tmp")
    os.replace(out / "results.json.tmp", out / "results.json")
    write_text(out / "command.log", last_states(log.read_text()))
    write_text(out / "timing.json", json.dumps(timing, indent=1) + "\n")
    print(f"install {install_s:.0f} s, command {command_s:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
