"""Training replicates (``train.finetune --seeds N``) and their aggregation in the report."""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from tests.train.conftest import tiny_cli_args
from train.engine import recipe
from train.engine.config import TrainConfig
from train.eval.replicates import seed_changes


def test_replicate_zero_trains_with_the_data_seed_and_others_differ():
    cfg = TrainConfig.of(seed=7)
    seeds = [cfg.replace(replicate=k).train_seed for k in range(4)]
    assert seeds[0] == 7  # runs trained before replicates existed are unchanged
    assert len(set(seeds)) == 4
    assert cfg.replace(replicate=2).train_seed == seeds[2]  # deterministic
    with pytest.raises(ValueError, match="replicate must be >= 0"):
        TrainConfig.of(replicate=-1).validate()


def test_replicates_name_every_run_and_share_the_data():
    cfg = TrainConfig.of(name="finetune", preset="smoke")
    reps = recipe.replicates(cfg, 3)
    assert [r.run.name for r in reps] == ["finetune", "finetune-r1", "finetune-r2"]
    assert {r.data.seed for r in reps} == {cfg.data.seed}
    runs = recipe.finetune_runs(reps[2], "ortho", "all")
    assert [r.run.name for r in runs] == [
        "finetune-r2", "finetune-ortho-r2", "finetune-noprior-r2", "finetune-smirkmask-r2",
        "finetune-paperinit-r2",
    ]  # fmt: skip
    assert {r.run.replicate for r in runs} == {2}
    assert recipe.pretrain_config(reps[1]).run.name == "pretrain-smoke-r1"
    assert recipe.pretrain_config(reps[0]).run.name == "pretrain-smoke"
    with pytest.raises(ValueError, match="--seeds must be >= 1"):
        recipe.replicates(cfg, 0)


errors = st.integers(1, 4).flatmap(
    lambda k: st.integers(2, 12).flatmap(
        lambda n: st.tuples(
            st.lists(st.floats(0.5, 20.0), min_size=k * n, max_size=k * n),
            st.lists(st.floats(0.5, 20.0), min_size=k * n, max_size=k * n),
            st.just((k, n)),
        )
    )
)


@settings(max_examples=60, deadline=None)
@given(errors)
def test_seed_changes_summarise_the_per_seed_changes(drawn):
    a_list, b_list, (k, n) = drawn
    a = torch.tensor(a_list, dtype=torch.float64).reshape(k, n)
    b = torch.tensor(b_list, dtype=torch.float64).reshape(k, n)
    out = seed_changes(a, b, n_boot=300)
    expected = [(float(a[i].mean() / b[i].mean()) - 1) * 100 for i in range(k)]
    assert out["per_seed"] == pytest.approx(expected, rel=1e-12, abs=1e-9)
    assert out["mean"] == pytest.approx(sum(expected) / k, rel=1e-12, abs=1e-9)
    if k > 1:
        assert out["sd"] == pytest.approx(float(torch.tensor(expected, dtype=torch.float64).std()))
    else:
        assert math.isnan(out["sd"])
    assert out["lo"] <= out["hi"]
    # the bootstrap means stay inside the range the per-image ratios allow
    ratio = (a / b - 1) * 100
    assert float(ratio.min()) - 1e-9 <= out["lo"] and out["hi"] <= float(ratio.max()) + 1e-9
    # a change of units of the errors changes nothing
    scaled = seed_changes(a * 3.5, b * 3.5, n_boot=300)
    assert scaled["mean"] == pytest.approx(out["mean"], rel=1e-9, abs=1e-9)


def test_seed_spread_widens_the_interval():
    """Replicates that disagree give a wider interval than identical ones."""
    g = torch.Generator().manual_seed(0)
    base = 5 + torch.rand(1, 64, generator=g, dtype=torch.float64)
    same = seed_changes(base.repeat(3, 1) * 0.9, base.repeat(3, 1), n_boot=500)
    spread = base.repeat(3, 1) * torch.tensor([[0.7], [0.9], [1.1]], dtype=torch.float64)
    apart = seed_changes(spread, base.repeat(3, 1), n_boot=500)
    assert same["sd"] == pytest.approx(0.0, abs=1e-9)
    assert apart["sd"] == pytest.approx(20.0, rel=1e-9)
    assert apart["hi"] - apart["lo"] > 5 * (same["hi"] - same["lo"])


def test_seed_changes_refuse_unpaired_shapes():
    with pytest.raises(ValueError, match=r"\[replicates, images\]"):
        seed_changes(torch.ones(2, 5), torch.ones(3, 5))


@pytest.fixture(scope="module")
def two_seeds(data_root, single_thread):
    from train import finetune

    out = str(data_root / "replicates")
    results = finetune.main([*tiny_cli_args(out), "--seeds", "2", "--bootstrap", "100",
                             "--no-fit"])  # fmt: skip
    return out, results


def test_two_seeds_train_different_weights(two_seeds):
    out, _ = two_seeds
    for a, b in (("pretrain-smoke", "pretrain-smoke-r1"), ("finetune", "finetune-r1"),
                 ("finetune-ortho", "finetune-ortho-r1")):  # fmt: skip
        wa = load_file(os.path.join(out, a, "final.safetensors"))
        wb = load_file(os.path.join(out, b, "final.safetensors"))
        assert wa.keys() == wb.keys()
        differ = [k for k in wa if wa[k].is_floating_point() and not torch.equal(wa[k], wb[k])]
        assert len(differ) > len(wa) // 2, (a, b)


def test_seed_aggregates_equal_their_recomputation(two_seeds):
    """The report's per-seed changes are the single-run changes of each replicate against
    the baseline of the same replicate, and mean and SD are recomputed from them."""
    out, results = two_seeds
    rep = results["replicates"]
    assert rep["replicates"] == [0, 1]
    labels = {(r["role"], os.path.basename(r["dir"])): k for k, r in results["runs"].items()}
    rho_labels = [labels[("rho", "finetune")], labels[("rho", "finetune-r1")]]
    for source, cells in rep["roles"]["rho"]["vs_retrained"].items():
        for change in ("jaw_pct", "other_pct"):
            cell = cells[change]
            single = [results["vs_retrained"][lab][source][change]["value"] for lab in rho_labels]
            assert cell["per_seed"] == pytest.approx(single, rel=1e-9, abs=1e-9)
            assert cell["mean"] == pytest.approx(sum(single) / 2, rel=1e-9, abs=1e-9)
            sd = abs(single[0] - single[1]) / math.sqrt(2)
            assert cell["sd"] == pytest.approx(sd, rel=1e-6, abs=1e-9)
    text = open(os.path.join(out, "finetune", "report", "report.md")).read()
    assert "## Across training seeds" in text
    assert "Over 2 training replicates" in text
    assert "trained on machine" in text
    machines = {r["budget"]["machine"] for r in results["runs"].values()}
    assert None not in machines and all("logical CPUs" in m for m in machines)


def test_targets_judge_the_landmark_changes_over_the_replicates(two_seeds):
    _, results = two_seeds
    cell = results["replicates"]["roles"]["rho"]["vs_retrained"]["hmc"]["jaw_pct"]
    target = next(t for t in results["targets"] if t["key"] == "hmc_jaw")
    assert target["target"].endswith("mean of 2 training replicates")
    assert target["value"] == pytest.approx(cell["mean"])
    assert (target["lo"], target["hi"]) == (cell["lo"], cell["hi"])
    assert target["met"] == (cell["mean"] <= -25.0)
