"""The numbers of ``docs/default-run/README.md``, written from their committed sources.

    python -m tools.default_run_docs [--check]

Every number in that page sits in a generated block::

    <!-- generated: NAME (from SOURCE) -->
    ...
    <!-- end: NAME -->

and is rendered here from the committed results beside it, by the same functions that
print and write the report (``train.eval.report``):

- ``seeds``: the 3-seed study's headline (replicate 0, then the mean over replicates) from
  ``report/results.json``; ``seed-rho``: its mean predicted rho per replicate;
- ``targets``: the issue's targets, judged by ``train.eval.targets`` (the one statement of
  each target);
- ``command``: the default command's printed table, from ``default-command/results.json``;
  ``command-time``: its measured time, from ``default-command/timing.json`` (written by
  ``tools/time_default_command.py``).

Without ``--check`` the blocks are rewritten in place; with it, the command exits 1 and
names each block whose text differs from its source (``tests/tools`` runs the check).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from _common.atomic import write_text
from _common.markdown import markdown_table
from train.eval.report import headline, replicate_section, targets_section

PAGE = Path(__file__).resolve().parents[1] / "docs" / "default-run" / "README.md"
BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) \(from (?P<source>[^)]+)\) -->\n)(?P<body>.*?)"
    r"(<!-- end: (?P=name) -->)",
    re.S,
)


def _minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s"


def command_time(timing: dict) -> str:
    """The default command's measured time, phase by phase, from ``timing.json``."""
    lines = [
        f"Measured on {timing['machine']} ({timing['date']}, commit {timing['commit'][:7]}, "
        f"torch {timing['torch']}), from a fresh clone in a new venv with empty "
        "torch-compile, data and user caches (pip's download cache as the machine had it):",
        "",
    ]
    rows = [
        [
            "install (`pip install torch==2.13.0 && pip install -e .`)",
            _minutes(timing["install_s"]),
        ],
        ["`python -m train.finetune`", _minutes(timing["command_s"])],
        ["**in all**", f"**{_minutes(timing['install_s'] + timing['command_s'])}**"],
    ]
    rows += [
        [f"of which: training `{name}` ({timing['mean_step_s'][name]:.3f} s a step)", _minutes(s)]
        for name, s in timing["train_s"].items()
    ]
    lines += markdown_table(["step", "time"], rows)
    quick = timing["quick_start_s"]
    lines += [
        "The README's quick start in that venv (process start-up and the first render "
        f"included), after the one-time build of the stand-in head "
        f"({quick['standin_build']:.1f} s, cached per machine):",
        "",
    ]
    lines += markdown_table(
        ["`MINIRAST_COMPILE`", "empty compile cache", "warm compile cache"],
        [
            ["`auto` (default)", f"{quick['auto_cold']:.1f} s", f"{quick['auto_warm']:.1f} s"],
            ["`1` (compile at the first large call)", f"{quick['compile_cold']:.1f} s", ""],
        ],
    )
    return "\n".join(lines).rstrip() + "\n"


def seed_rho(results: dict) -> str:
    """The rho model's mean predicted rho per replicate and regime (the rows of the
    report's across-seeds rho table; the orthographic roles' are all zero)."""
    section = replicate_section(results)
    start = section.index("Mean predicted rho per replicate:")
    rows = [line for line in section[start:] if line.startswith("| rho |")]
    header = [line for line in section[start:] if line.startswith("| role")]
    rule = "|---" * 4 + "|"
    return "\n".join(["The rho model's mean predicted rho per replicate:", "", *header, rule,
                      *rows]) + "\n"  # fmt: skip


def render_block(name: str, source: Path) -> str:
    data = json.loads(source.read_text())
    if name in ("seeds", "command"):
        return headline(data).rstrip() + "\n"
    if name == "seed-rho":
        return seed_rho(data)
    if name == "targets":
        return "\n".join(targets_section(data)[2:]).rstrip() + "\n"
    if name == "command-time":
        return command_time(data)
    raise ValueError(f"unknown generated block {name!r}")


def refresh(text: str, folder: Path) -> tuple[str, list[str]]:
    """``text`` with every generated block rendered from its source under ``folder``,
    and the names of the blocks that changed."""
    changed: list[str] = []

    def fill(m: re.Match) -> str:
        body = render_block(m["name"], folder / m["source"])
        if body != m["body"]:
            changed.append(m["name"])
        return m.group(1) + body + m.group(5)

    return BLOCK.sub(fill, text), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.default_run_docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only say which blocks are stale")
    parser.add_argument("--page", default=str(PAGE), help="the page (default: %(default)s)")
    args = parser.parse_args(argv)
    page = Path(args.page)
    text, changed = refresh(page.read_text(), page.parent)
    if args.check:
        for name in changed:
            print(f"{page}: block {name!r} differs from its source", file=sys.stderr)
        return 1 if changed else 0
    if changed:
        write_text(page, text)
    print(f"{page}: {len(changed)} block(s) rewritten ({', '.join(changed) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
