"""``python -m bench.fit_coverage --quick`` writes its JSON, markdown and plot."""

from __future__ import annotations

import json
import os

import pytest
import torch

from bench import fit_coverage


@pytest.fixture
def one_thread():
    """Tiny fits: one thread is far faster on a shared, loaded CPU (tests/train/conftest.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_quick_run_writes_consistent_outputs(tmp_path, one_thread):
    payload = fit_coverage.main(["--quick", "--out", str(tmp_path), "--device", "cpu"])
    for ext in ("json", "md", "png"):
        assert os.path.getsize(os.path.join(payload["out_dir"], f"fit_coverage.{ext}")) > 0
    with open(os.path.join(payload["out_dir"], "fit_coverage.json")) as f:
        saved = json.load(f)
    assert saved["command"] == "python -m bench.fit_coverage --quick --out " + str(tmp_path) + (
        " --device cpu"
    )
    assert [r["case"] for r in saved["rows"]] == list(fit_coverage.CASES)
    for row in saved["rows"]:
        for regime in ("hmc", "studio", "wild"):
            r = row[regime]
            assert r["images"] == 4
            # every interval holds the truth, or misses it below or above
            total = r["coverage_pct"] + r["truth_below_pct"] + r["truth_above_pct"]
            assert total == pytest.approx(100.0)


@pytest.mark.parametrize("argv", [["--per-regime", "0"], ["--iterations", "0"]])
def test_bad_flags_are_rejected(argv):
    with pytest.raises(SystemExit) as exc:
        fit_coverage.main(argv)
    assert exc.value.code == 2
