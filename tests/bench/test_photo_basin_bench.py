"""``python -m bench.photo_basin --quick`` writes its JSON, markdown and plot with the rows
it promises; the parabola's vertex is right; bad flags are refused."""

from __future__ import annotations

import math

import pytest

from bench import photo_basin


def test_quick_run_writes_consistent_outputs(quick_run):
    payload, saved = quick_run(photo_basin, "photo_basin", "--regimes", "studio")
    profile, basins = saved["profile_rows"], saved["basin_rows"]
    assert [(r["solve"], r["factor"]) for r in profile] == [
        (s, f) for s in photo_basin.SOLVES for f in (0.9, 1.0, 1.1)
    ]
    for r in profile:  # rho held where it was put
        assert r["rho_ratio"] == pytest.approx(r["factor"], rel=1e-5)
        assert r["objective"] >= r["photo"] + r["landmarks"] - 1e-3  # priors are >= 0
    assert [r["start"] for r in basins] == list(photo_basin.STARTS)
    assert basins[0]["shape_off"] == 0 and basins[0]["expression_off"] == 0
    for r in basins:
        assert all(math.isfinite(r[k]) for k in r if k not in ("regime", "start"))
    assert "| studio | exact |" in open(f"{payload['out_dir']}/photo_basin.md").read()


def test_vertex_of_the_parabola():
    values = [3 * (f - 1.04) ** 2 + 7 for f in (0.9, 1.0, 1.1, 1.2)]
    assert photo_basin.vertex([0.9, 1.0, 1.1, 1.2], values) == pytest.approx(1.04)
    assert math.isnan(photo_basin.vertex([0.9, 1.0, 1.1], [1.0, 2.0, 1.0]))  # a maximum
    assert math.isnan(photo_basin.vertex([0.9, 1.1], [1.0, 2.0]))


@pytest.mark.parametrize(
    "argv",
    [
        ["--frames", "0"],
        ["--iterations", "0"],
        ["--rounds", "0"],
        ["--capture", "-1"],
        ["--size", "16"],
        ["--profile", "0"],
        ["--solves", "newton"],
        ["--regimes", "moon"],
    ],
)
def test_bad_flags_are_rejected(argv):
    with pytest.raises(SystemExit) as exc:
        photo_basin.main(argv)
    assert exc.value.code == 2
