"""``python -m bench.fit_coverage --quick`` writes its JSON, markdown and plot."""

from __future__ import annotations

import pytest

from bench import fit_coverage


def test_quick_run_writes_consistent_outputs(tmp_path, quick_run):
    payload, saved = quick_run(fit_coverage, "fit_coverage", "--device", "cpu")
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
