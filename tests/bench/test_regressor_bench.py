"""``python -m bench.regressor --quick`` writes its JSON, markdown and plot."""

from __future__ import annotations

import json
import math
import os

import pytest

from bench import regressor


def test_quick_run_writes_consistent_outputs(tmp_path):
    payload = regressor.main(["--quick", "--out", str(tmp_path), "--device", "cpu"])
    out_dir = payload["out_dir"]
    for ext in ("json", "md", "png"):
        assert os.path.getsize(os.path.join(out_dir, f"regressor.{ext}")) > 0
    with open(os.path.join(out_dir, "regressor.json")) as f:
        saved = json.load(f)
    assert {r["model"] for r in saved["rows"]} == set(regressor.MODELS)
    for r in saved["rows"]:
        assert math.isfinite(r["ms_per_step"]) and r["ms_per_step"] > 0
        assert r["images_per_s"] == pytest.approx(r["batch"] / (r["ms_per_step"] / 1e3))
    smirk = next(r for r in saved["rows"] if r["model"] == "smirk")
    assert smirk["parameters"] == 3_599_921 + 577  # SMIRK's encoder + the rho head


@pytest.mark.parametrize("argv", [["--size", "16"], ["--batch", "1"], ["--budget", "0"]])
def test_bad_flags_are_rejected(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        regressor.main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
