"""The report's targets: judged on one run as it is, and on the mean over training
replicates for every target kind (``train.eval.targets``), from fabricated results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from train.eval.results import rejudge
from train.eval.targets import TARGETS, role_labels_of, targets

REGIMES = ("hmc", "studio", "wild")
COMMITTED = Path(__file__).resolve().parents[2] / "docs/default-run/report/results.json"


def _cell(value: float, spread: float = 0.5) -> dict:
    return {"value": value, "lo": value - spread, "hi": value + spread}


def fabricated(rho_values: list[dict], base_mm: list[float], rep_table: bool = True) -> dict:
    """A results dict with K rho runs and K baselines; ``rho_values[k]`` holds replicate
    k's ``jaw``, ``other``, ``rho_err`` (per regime), ``pearson`` and ``mm`` (hmc)."""
    K = len(rho_values)
    suffix = ["" if k == 0 else f"-r{k}" for k in range(K)]
    results: dict = {"runs": {}, "vs_retrained": {}, "rho": {}, "neutral_shape": {}}
    for k, v in enumerate(rho_values):
        rho, base = f"rho{suffix[k]}", f"base{suffix[k]}"
        results["runs"][rho] = {"role": "rho", "replicate": k, "dir": f"runs/finetune{suffix[k]}"}
        results["runs"][base] = {"role": "ortho-retrained", "replicate": k,
                                 "dir": f"runs/finetune-ortho{suffix[k]}"}  # fmt: skip
        results["vs_retrained"][rho] = {
            r: {"jaw_pct": _cell(v["jaw"][r]), "other_pct": _cell(v["other"][r])}
            for r in ("hmc", "wild")
        }
        results["rho"][rho] = {r: {"mean_error_pct": v["rho_err"][r]} for r in REGIMES}
        results["rho"][rho]["all"] = {"pearson": _cell(v["pearson"], 0.05)}
        diff = v["mm"] - base_mm[k]
        results["neutral_shape"][rho] = {
            "hmc": {"mm": _cell(v["mm"]), "vs_retrained_mm": _cell(diff, 0.01)}
        }
        results["neutral_shape"][base] = {"hmc": {"mm": _cell(base_mm[k])}}
    if K > 1 and rep_table:
        seeds = {
            r: {
                f"{c}_pct": {
                    "per_seed": [v[c][r] for v in rho_values],
                    "mean": sum(v[c][r] for v in rho_values) / K,
                    "lo": -99.0,
                    "hi": 99.0,
                }
                for c in ("jaw", "other")
            }
            for r in ("hmc", "wild")
        }
        results["replicates"] = {"roles": {"rho": {"vs_retrained": seeds}}}
    return results


finite = st.floats(-60.0, 60.0, allow_nan=False)
replicate = st.fixed_dictionaries(
    {
        "jaw": st.fixed_dictionaries({"hmc": finite, "wild": finite}),
        "other": st.fixed_dictionaries({"hmc": finite, "wild": finite}),
        "rho_err": st.fixed_dictionaries({r: finite for r in REGIMES}),
        "pearson": st.floats(-1.0, 1.0),
        "mm": st.floats(0.5, 3.0),
    }
)


def _expected(rho_values: list[dict], base_mm: list[float]) -> dict[str, float]:
    K = len(rho_values)

    def mean(f):
        return sum(f(v, k) for k, v in enumerate(rho_values)) / K

    out = {
        f"{r}_{c}": mean(lambda v, k, r=r, c=c: v[c][r]) for r in ("hmc", "wild")
        for c in ("jaw", "other")
    }  # fmt: skip
    out.update({f"rho_mean_{r}": mean(lambda v, k, r=r: v["rho_err"][r]) for r in REGIMES})
    out["pearson_all"] = mean(lambda v, k: v["pearson"])
    out["neutral_hmc"] = mean(lambda v, k: v["mm"] - base_mm[k])
    return out


@settings(max_examples=40, deadline=None)
@given(st.lists(replicate, min_size=1, max_size=4), st.data())
def test_every_target_kind_is_the_mean_over_the_replicates(rho_values, data):
    K = len(rho_values)
    base_mm = data.draw(st.lists(st.floats(0.5, 3.0), min_size=K, max_size=K))
    results = fabricated(rho_values, base_mm)
    judged = {t["key"]: t for t in targets(results, role_labels_of(results))}
    assert set(judged) == {key for key, *_ in TARGETS}
    for key, value in _expected(rho_values, base_mm).items():
        t = judged[key]
        assert t["value"] == pytest.approx(value, rel=1e-9, abs=1e-9), key
        limit, op = t["limit"], t["compare"]
        met = {"<=": value <= limit, ">=": value >= limit, "<": value < limit,
               "|x| <=": abs(value) <= limit}[op]  # fmt: skip
        if not math.isclose(value, limit, abs_tol=1e-9):
            assert t["met"] == met, key
        if K == 1:  # one run: its own bootstrap interval
            assert "replicates" not in t["target"]
            if not key.startswith("rho_mean"):  # the tables give these no interval
                assert t["lo"] is not None and t["lo"] <= t["value"] <= t["hi"]
        else:
            assert t["target"].endswith(")") or t["target"].endswith("replicates"), key
            assert f"mean of {K} training replicates" in t["target"]


def test_the_last_replicate_does_not_decide():
    """The bug this guards: a dict keyed by role kept only the last replicate."""
    good = {"jaw": {"hmc": -30.0, "wild": 0.0}, "other": {"hmc": -12.0, "wild": 0.0},
            "rho_err": {r: 5.0 for r in REGIMES}, "pearson": 0.9, "mm": 1.0}  # fmt: skip
    bad = {**good, "rho_err": {r: 60.0 for r in REGIMES}, "pearson": 0.1, "mm": 2.0}
    results = fabricated([good, good, bad], [1.2, 1.2, 1.2])
    judged = {t["key"]: t for t in targets(results, role_labels_of(results))}
    assert judged["pearson_all"]["value"] == pytest.approx((0.9 + 0.9 + 0.1) / 3)
    assert judged["rho_mean_hmc"]["value"] == pytest.approx(70.0 / 3)
    assert judged["neutral_hmc"]["value"] == pytest.approx((-0.2 - 0.2 + 0.8) / 3)
    assert judged["neutral_hmc"]["met"] is False
    assert judged["rho_mean_hmc"]["met"] is False and judged["pearson_all"]["met"] is False


def test_replicates_read_from_old_reports_by_their_folder_names():
    results = fabricated([{"jaw": {"hmc": 1.0, "wild": 1.0}, "other": {"hmc": 1.0, "wild": 1.0},
                           "rho_err": {r: 1.0 for r in REGIMES}, "pearson": 0.5, "mm": 1.0}] * 3,
                         [1.0] * 3)  # fmt: skip
    for run in results["runs"].values():
        del run["replicate"]
    roles = role_labels_of(results)
    assert roles["rho"] == ["rho", "rho-r1", "rho-r2"]
    assert roles["ortho-retrained"] == ["base", "base-r1", "base-r2"]


def test_rejudge_rewrites_the_targets_of_a_report(tmp_path):
    """The committed 3-seed report, its targets made stale, judged again: the verdicts
    are those of this code, and the report's text shows them."""
    committed = json.loads(open(COMMITTED).read())
    stale = dict(committed, targets=[])
    (tmp_path / "results.json").write_text(json.dumps(stale))
    rejudged = rejudge(str(tmp_path), command="test")
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["targets"] == rejudged["targets"]
    assert on_disk["targets"] == targets(committed, role_labels_of(committed))
    assert on_disk["meta"]["rejudged"]["command"] == "test"
    pearson = next(t for t in on_disk["targets"] if t["key"] == "pearson_all")
    per_run = [committed["rho"][lab]["all"]["pearson"]["value"]
               for lab in role_labels_of(committed)["rho"]]  # fmt: skip
    assert len(per_run) == 3
    assert pearson["value"] == pytest.approx(sum(per_run) / 3)
    text = (tmp_path / "report.md").read_text()
    assert "per-image Pearson r of rho over all regimes, mean of 3 training replicates" in text


def test_rejudge_refuses_a_folder_without_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results.json"):
        rejudge(str(tmp_path))
    (tmp_path / "results.json").write_text(json.dumps({"runs": {}}))
    with pytest.raises(ValueError, match="not a train.evaluate results file"):
        rejudge(str(tmp_path))
