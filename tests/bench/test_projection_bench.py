"""``python -m bench.projection --quick`` writes its JSON, markdown and plot."""

from __future__ import annotations

import json
import math
import os

import pytest

from bench import projection


def test_quick_run_writes_consistent_outputs(tmp_path):
    payload = projection.main(["--quick", "--out", str(tmp_path)])
    out_dir = payload["out_dir"]
    for ext in ("json", "md", "png"):
        assert os.path.getsize(os.path.join(out_dir, f"projection.{ext}")) > 0
    with open(os.path.join(out_dir, "projection.json")) as f:
        saved = json.load(f)
    backends = {r["backend"] for r in saved["rows"]}
    assert {"torch", "triton"} <= backends
    assert all(math.isfinite(r["ms"]) and r["ms"] > 0 for r in saved["rows"])
    # parity: every backend within float32 accuracy of the float64 reference
    assert all(r["max_rel_error"] < 1e-4 for r in saved["gradient_parity"])
    # the sm_90 resource table was produced and shows no spills
    assert saved["kernel_resources_sm90"], saved["kernel_resources_error"]
    assert all(r["local_bytes"] == 0 for r in saved["kernel_resources_sm90"])
    text = open(os.path.join(out_dir, "projection.md")).read()
    if saved["triton_interpreted"]:
        assert "not speed figures" in text


@pytest.mark.parametrize(
    "argv", [["--batches", "0,8"], ["--batches", "a"], ["--points", "-3"], ["--budget", "0"]]
)
def test_bad_flags_are_rejected(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        projection.main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
