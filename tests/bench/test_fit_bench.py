"""``python -m bench.fit --quick`` writes its JSON, markdown and plot."""

from __future__ import annotations

import json
import os

import pytest

from bench import fit


def test_quick_run_writes_consistent_outputs(tmp_path):
    payload = fit.main(["--quick", "--out", str(tmp_path), "--device", "cpu"])
    for ext in ("json", "md", "png"):
        assert os.path.getsize(os.path.join(payload["out_dir"], f"fit.{ext}")) > 0
    with open(os.path.join(payload["out_dir"], "fit.json")) as f:
        rows = json.load(f)["rows"]
    assert [r["images"] for r in rows] == [48, 48, 48, 48]
    assert all(r["seconds"] > 0 and r["images_per_s"] > 0 for r in rows)
    assert "pearson" in rows[0] and "pearson" not in rows[1]  # orthographic: rho is 0
    for row in (rows[0], rows[2], rows[3]):  # every rho fit gives its intervals' coverage
        assert all(0 <= row[f"coverage_pct_{g}"] <= 100 for g in ("hmc", "studio", "wild"))


@pytest.mark.parametrize("argv", [["--images", "10"], ["--iterations", "0"]])
def test_bad_flags_are_rejected(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        fit.main(argv)
    assert exc.value.code == 2
