"""``python -m bench.distance_study``: the synthetic study's quick run, and ``--cmdp`` on a
small fabricated copy of CMDP's release (dinfo.mat, CMDP_1/<n>_<id>/<id>_<feet>.jpg)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from bench import cmdp, distance_study
from bench.dense_fit import cmdp_set
from train.fit.inputs import ndc_to_pixels

FEET = (2, 3, 4, 6, 8, 12, 16)


def test_quick_run_writes_consistent_outputs(quick_run):
    payload, saved = quick_run(distance_study, "distance_study")
    assert [c["case"] for c in saved["cases"]] == list(distance_study.CASES)
    for c in saved["cases"]:
        per = 1 if c["case"] == "per capture" else 2  # quick: 1 identity, 2 frames
        assert [r["distance_m"] for r in c["rows"]] == list(distance_study.CMDP_M)
        for r in c["rows"]:
            assert r["n"] == per
            assert r["coverage_pct"] + r["truth_below_pct"] + r["truth_above_pct"] == (
                pytest.approx(100.0)
            )
        assert len(c["points"]["true_m"]) == 7 * per


def _fabricate(root, width=300, height=400, subjects=2, drop=None):
    """CMDP's layout with the generator's exact landmarks at the files' distances."""
    from PIL import Image
    from scipy import io

    gen = distance_study._generator()
    data = cmdp_set(gen, subjects)  # identity-major, the seven CMDP distances
    fids = np.zeros((subjects, 136, 7))
    paths = np.empty((subjects, 7), dtype=object)
    for i in range(subjects):
        folder = f"{i + 1}_s{i:03d}"
        os.makedirs(os.path.join(root, "CMDP_1", folder))
        for j, ft in enumerate(FEET):
            rel = f"{folder}/s{i:03d}_{ft}.jpg"
            Image.new("RGB", (width, height)).save(os.path.join(root, "CMDP_1", rel))
            px = ndc_to_pixels(data["landmarks"][i * 7 + j].double().numpy(), width, height)
            fids[i, :68, j], fids[i, 68:, j] = px[:, 0] + 1, px[:, 1] + 1  # MATLAB's 1-based
            paths[i, j] = rel
    if drop is not None:
        os.remove(os.path.join(root, "CMDP_1", paths[drop]))
    os.makedirs(os.path.join(root, "CMDP-ANNO"))
    io.savemat(
        os.path.join(root, "CMDP-ANNO", "dinfo.mat"),
        {
            "fids_Rcpr300F_OR": fids,
            "imagePathsOriginal": paths,
            "distancesVec_FT": np.array(FEET, dtype=float),
            "numSubjects": subjects,
        },
    )
    return data


def test_reader_recovers_the_fabricated_landmarks(tmp_path):
    data = _fabricate(str(tmp_path), drop=(1, 3))
    got = cmdp.read_cmdp(str(tmp_path))
    assert len(got.paths) == 13 and got.skipped[0][0] == "2_s001/s001_6.jpg"
    keep = [k for k in range(14) if k != 10]
    torch.testing.assert_close(got.landmarks, data["landmarks"][keep], atol=1e-5, rtol=0)
    assert got.subject.tolist() == [0] * 7 + [1] * 6
    ft = torch.tensor([FEET[k % 7] for k in keep], dtype=torch.float64)
    torch.testing.assert_close(got.distance_m, ft * 0.3048)
    assert got.size.tolist() == [[300, 400]] * 13


def test_reader_rejects_what_is_not_cmdp(tmp_path):
    with pytest.raises(FileNotFoundError, match="dinfo.mat"):
        cmdp.read_cmdp(str(tmp_path))
    from scipy import io

    os.makedirs(tmp_path / "CMDP-ANNO")
    io.savemat(str(tmp_path / "CMDP-ANNO" / "dinfo.mat"), {"numSubjects": 1})
    with pytest.raises(ValueError, match="lacks"):
        cmdp.read_cmdp(str(tmp_path))


def test_cmdp_flag_fits_the_fabricated_portraits(tmp_path, one_thread):
    _fabricate(str(tmp_path / "cmdp"), subjects=1)
    out = tmp_path / "out"
    payload = distance_study.main(
        ["--cmdp", str(tmp_path / "cmdp"), "--out", str(out), "--iterations", "40"]
    )
    assert os.path.getsize(os.path.join(payload["out_dir"], "distance_study_cmdp.png")) > 0
    assert payload["portraits"] == 7 and payload["subjects"] == 1
    default = payload["cases"][0]
    assert [r["distance_m"] for r in default["rows"]] == [round(f * 0.3048, 2) for f in FEET]
    # clean landmarks at the closest distance: the fit finds the truth within 15 %
    assert default["rows"][0]["median_err_pct"] < 15.0
