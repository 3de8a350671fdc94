"""tools/default_run_docs.py: the numbers of docs/default-run/README.md are rendered
from their committed sources, and a number that differs from its source is caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tools import default_run_docs as docs

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "docs" / "default-run"


def test_every_block_of_the_page_matches_its_committed_source():
    text = docs.PAGE.read_text()
    blocks = list(docs.BLOCK.finditer(text))
    assert {m["name"] for m in blocks} == {"command-time", "command", "seeds", "seed-rho",
                                           "targets"}  # fmt: skip
    for m in blocks:
        assert (FOLDER / m["source"]).is_file(), m["source"]
    assert docs.main(["--check"]) == 0


def test_a_number_changed_by_hand_is_caught(tmp_path, capsys):
    page = tmp_path / "README.md"
    shutil.copytree(FOLDER / "report", tmp_path / "report", ignore=shutil.ignore_patterns("*.png"))
    results = json.loads((tmp_path / "report/results.json").read_text())
    seeds = docs.render_block("seeds", tmp_path / "report/results.json")
    page.write_text(
        "intro\n<!-- generated: seeds (from report/results.json) -->\n"
        + seeds
        + "<!-- end: seeds -->\nafter\n"
    )
    assert docs.main(["--check", "--page", str(page)]) == 0
    hmc = results["vs_retrained"]
    assert hmc  # the report has its changes
    first_number = next(line for line in seeds.splitlines() if line.startswith("| hmc"))
    tampered = first_number.replace("3.35", "3.36")
    assert tampered != first_number
    page.write_text(page.read_text().replace(first_number, tampered))
    assert docs.main(["--check", "--page", str(page)]) == 1
    assert "block 'seeds' differs" in capsys.readouterr().err
    assert docs.main(["--page", str(page)]) == 0  # rewritten from the source
    assert first_number in page.read_text() and "intro\n" in page.read_text()
    assert docs.main(["--check", "--page", str(page)]) == 0


def test_the_time_block_adds_install_and_command():
    timing = {"machine": "AMD EPYC (2 logical CPUs)", "date": "2026-12-05", "commit": "a" * 40,
              "torch": "2.13.0+cpu", "install_s": 36.4, "command_s": 721.0,
              "train_s": {"pretrain-default": 190.0}, "mean_step_s": {"pretrain-default": 0.5},
              "quick_start_s": {"standin_build": 4.0, "auto_cold": 2.5, "auto_warm": 2.4,
                                "compile_cold": 27.0}}  # fmt: skip
    text = docs.command_time(timing)
    assert "| **in all** | **12 min 37 s** |" in text
    assert "| `python -m train.finetune` | 12 min 01 s |" in text
    assert "training `pretrain-default` (0.500 s a step) | 3 min 10 s" in text
    assert "| `auto` (default) | 2.5 s | 2.4 s |" in text and "27.0 s" in text
    with pytest.raises(ValueError, match="unknown generated block"):
        docs.render_block("nonsense", FOLDER / "report/results.json")


def test_the_default_command_printed_replicate_zero_of_the_seed_study():
    """The page says so: the fresh-clone run's table equals the 3-seed report's first."""
    from train.eval.report import headline

    command = json.loads((FOLDER / "default-command/results.json").read_text())
    seeds = json.loads((FOLDER / "report/results.json").read_text())
    first = headline(seeds).split("\n\n")[0]
    assert headline(command).split("\n\n")[0] == first


def test_the_kept_log_shows_each_progress_bar_once():
    from tools.time_default_command import last_states

    printed = "data\ntrain:  1%|a\rtrain:  2%|b\ntrain: 100%|c\neval:  50%|d\nreport\n"
    assert last_states(printed) == "data\ntrain: 100%|c\neval:  50%|d\nreport\n"


def test_the_readme_states_the_measured_time():
    import re

    timing = json.loads((FOLDER / "default-command/timing.json").read_text())
    minutes = (timing["install_s"] + timing["command_s"]) / 60
    stated = re.search(r"(\d+) min on a 2-core AMD EPYC from a fresh clone",
                       (ROOT / "README.md").read_text())  # fmt: skip
    assert stated is not None and int(stated.group(1)) == round(minutes)
    assert timing["machine"].startswith("AMD EPYC")
