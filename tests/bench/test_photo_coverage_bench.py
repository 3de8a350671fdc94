"""``python -m bench.photo_coverage --quick`` writes its JSON, markdown and plot, with
coverage numbers that add up."""

from __future__ import annotations

import pytest
import torch

from bench import photo_coverage


def test_quick_run_writes_consistent_outputs(quick_run):
    payload, saved = quick_run(photo_coverage, "photo_coverage", "--device", "cpu")
    rows = saved["rows"]
    assert [(r["split"], r["regime"]) for r in rows] == [
        (s, g) for s in ("val", "test") for g in ("hmc", "studio", "wild")
    ]
    for r in rows:
        assert r["problems"] == 2 and r["frames"] == 1 and len(r["uncalibrated_ratios"]) == 2
        # the calibration only widens: whatever the uncalibrated interval holds, it holds
        assert r["coverage_pct"] >= r["uncalibrated_coverage_pct"]
        assert r["median_half_width"] > 0
    ratios = [x for r in rows if r["split"] == "val" for x in r["uncalibrated_ratios"]]
    assert saved["needed_inflation_val"] == pytest.approx(
        float(torch.quantile(torch.tensor(ratios), 0.95)) ** 2, rel=1e-6
    )


@pytest.mark.parametrize(
    "argv", [["--per-regime", "0"], ["--iterations", "0"], ["--size", "8"], ["--frames", "0"]]
)
def test_bad_flags_are_rejected(argv):
    with pytest.raises(SystemExit) as exc:
        photo_coverage.main(argv)
    assert exc.value.code == 2
