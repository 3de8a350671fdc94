"""``python -m bench.raster`` runs end to end (a tiny smoke configuration)."""

from __future__ import annotations

import json

import pytest


def test_bench_raster_quick_run_writes_its_outputs(tmp_path):
    pytest.importorskip("matplotlib")
    from bench import raster

    payload = raster.main(["--quick", "--no-peers", "--no-resources", "--out", str(tmp_path)])
    out = tmp_path / payload["device"]
    data = json.loads((out / "raster.json").read_text())
    assert {(r["mode"], r["batch"]) for r in data["results"]} == {
        (m, b) for m in raster.MODES for b in (1, 2)
    }
    assert all(r["ms"] > 0 for r in data["results"])
    text = (out / "raster.md").read_text()
    assert "images/s" in text and "peers skipped" in text
    assert (out / "raster.png").stat().st_size > 1000
    if data["triton_interpreter_smoke"] is not None:
        assert data["triton_interpreter_smoke"]["tri_id_agreement"] > 0.99


def test_bench_raster_rejects_bad_arguments():
    from bench import raster

    with pytest.raises(SystemExit):
        raster.main(["--batches", "0"])
    with pytest.raises(SystemExit):
        raster.main(["--budget", "-1"])
