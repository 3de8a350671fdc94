"""``python -m bench.texture`` runs end to end (its smoke configuration)."""

from __future__ import annotations

import json

import pytest


def test_bench_texture_quick_run_writes_its_outputs(tmp_path):
    pytest.importorskip("matplotlib")
    from bench import texture

    payload = texture.main(["--quick", "--device", "cpu", "--out", str(tmp_path)])
    out = tmp_path / payload["device"]
    data = json.loads((out / "texture.json").read_text())
    backends = {r["backend"] for r in data["rows"]}
    assert {r["mode"] for r in data["rows"]} == set(texture.MODES)
    assert "grid_sample (bilinear, border)" in backends and len(backends) >= 4
    assert all(r["ms"] > 0 for r in data["rows"])
    assert set(data["bilinear_fwd_bwd_ratios"]) == {
        "minirast torch, linear, clamp",
        "minirast torch, linear, wrap",
    }
    assert "Target: the torch path's bilinear" in (out / "texture.md").read_text()
    assert (out / "texture.png").stat().st_size > 1000


def test_bench_texture_rejects_bad_arguments():
    from bench import texture

    with pytest.raises(SystemExit):
        texture.main(["--batch", "0"])
    with pytest.raises(SystemExit):
        texture.main(["--budget", "-1"])
