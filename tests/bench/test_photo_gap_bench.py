"""``python -m bench.photo_gap --quick`` writes its JSON, markdown and plot; L-BFGS on the
appearance never raises the objective; bad flags are refused."""

from __future__ import annotations

import math

import pytest
import torch

from bench import photo_gap
from bench.photo_fit import generator


def test_quick_run_writes_consistent_outputs(quick_run):
    payload, saved = quick_run(photo_gap, "photo_gap")
    rows = saved["rows"]
    assert [r["regime"] for r in rows] == ["hmc", "studio", "wild"]
    for r in rows:
        assert all(math.isfinite(r[k]) for k in r if k not in ("regime", "capture"))
        # strong-Wolfe L-BFGS only accepts steps that lower the objective
        assert r["objective_minimised"] <= r["objective_solve"] + 1e-3
        assert r["albedo_rms"] > 0


def test_truth_fit_holds_the_sample_geometry():
    sample = generator(32).generate_textured_capture("studio", "test", 0, [0, 1])
    fit = photo_gap.truth_fit(sample)
    for name in photo_gap.TRUTH:
        assert torch.equal(getattr(fit, name), sample[name].float())


@pytest.mark.parametrize(
    "argv",
    [["--captures", "0"], ["--frames", "0"], ["--solves", "0"], ["--lbfgs", "0"], ["--size", "16"]],
)
def test_bad_flags_are_rejected(argv):
    with pytest.raises(SystemExit) as exc:
        photo_gap.main(argv)
    assert exc.value.code == 2
