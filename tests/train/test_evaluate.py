"""``train.evaluate``: the report on smoke runs, its structure and its numbers."""

from __future__ import annotations

import json
import os
import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.train.conftest import tiny_cli_args
from train import evaluate
from train.engine import recipe
from train.engine.config import ABLATIONS, TrainConfig
from train.eval import report
from train.eval.runs import ROLE_TITLES, check_same_data, run_role
from train.eval.tables import MEAN_HEAD
from train.eval.targets import TARGETS
from train.metrics import batched_pearson, bootstrap_ci, pearson

SECTIONS = (
    "## Setup",
    "## Targets",
    "## 1. Landmark error",
    "## 2. Neutral-shape error",
    "## 3. Predicted rho",
    "## 4. The rho sweep",
    "## 5. The full-perspective baseline",
    "## 6. Overlays",
    "## 7. Ablations",
)


@pytest.fixture(scope="module")
def all_runs(data_root, single_thread):
    """Pretraining, the rho model, both baselines and the three ablations (smoke size),
    trained and evaluated by ``train.finetune``, as a user runs it."""
    from train import finetune

    out = str(data_root / "evaluate")
    results = finetune.main(
        [*tiny_cli_args(out), "--baselines", "all", "--ablations", "all", "--bootstrap", "200"]
    )
    return out, results


def report_dir(out: str) -> str:
    return os.path.join(out, "finetune", "report")


def numeric_leaves(value) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in numeric_leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in numeric_leaves(v)]
    return []


def table_numbers(markdown: str) -> list[str]:
    """Every number printed in a table body cell (headers, labels, role titles and
    `paths` excluded)."""
    found = []
    lines = markdown.splitlines()
    titles = set(ROLE_TITLES.values())
    for line, after in zip(lines, [*lines[1:], ""]):
        if not line.startswith("|") or line.startswith("|---") or after.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")][1:]  # first cell: the label
        for cell in cells:
            if "`" in cell or cell in titles:
                continue
            found += re.findall(r"[+-]?\d+(?:\.\d+)?", cell)
    return found


def test_the_report_has_all_seven_parts_and_its_figures(all_runs):
    out, results = all_runs
    text = open(os.path.join(report_dir(out), "report.md")).read()
    positions = [text.find(s) for s in SECTIONS]
    assert -1 not in positions, [s for s, p in zip(SECTIONS, positions) if p < 0]
    assert positions == sorted(positions)
    assert "Not among the runs" not in text and "No ablation runs" not in text
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        path = os.path.join(report_dir(out), name)
        assert os.path.getsize(path) > 1000, name
    for key in ("rho_sweep", "perspective_rho", "overlays", "rho_scatter", "rho_hist"):
        assert results["figures"][key] is not None, key
    roles = {v["role"] for v in results["runs"].values()}
    assert roles == set(ROLE_TITLES)


def test_every_number_is_finite_and_comes_from_results_json(all_runs):
    out, results = all_runs

    def no_constant(name):
        raise AssertionError(f"results.json holds {name}")

    with open(os.path.join(report_dir(out), "results.json")) as f:
        stored = json.load(f, parse_constant=no_constant)
    assert stored == results
    values = numeric_leaves(stored)
    text = open(os.path.join(report_dir(out), "report.md")).read()
    assert not re.search(r"\b(nan|inf)\b", text, re.IGNORECASE)
    numbers = table_numbers(text)
    assert len(numbers) > 200
    for token in numbers:
        digits = len(token.split(".")[1]) if "." in token else 0
        shown = float(token)
        assert any(abs(round(v, digits) - shown) <= 0.51 * 10**-digits for v in values), token


def test_numbers_are_consistent(all_runs):
    _, results = all_runs
    for per in results["landmarks"].values():
        for cell in per.values():
            for key in ("jaw", "other", "jaw_px224", "other_px224"):
                c = cell[key]
                assert c["lo"] <= c["value"] <= c["hi"], (key, c)
                assert c["value"] >= 0
            # px at 224 and NDC^2 x 1e4 describe the same errors: RMS >= mean distance
            rms_px = (cell["jaw"]["value"] / 1e4) ** 0.5 * 224 / 2
            assert cell["jaw_px224"]["value"] <= rms_px + 1e-9
    base = results["landmarks"]["ortho-retrained"]
    for label, per in results["vs_retrained"].items():
        for regime, cell in per.items():
            want = (
                results["landmarks"][label][regime]["jaw"]["value"] / base[regime]["jaw"]["value"]
                - 1
            ) * 100
            assert cell["jaw_pct"]["value"] == pytest.approx(want)
    rho = results["rho"]
    assert rho["ortho-retrained"]["hmc"]["pred_mean"] == 0.0
    truth = {r: rho["rho"][r]["true_mean"] for r in ("hmc", "studio", "wild")}
    assert truth["hmc"] > truth["studio"] > truth["wild"] > 0  # the data's regimes
    assert [t["key"] for t in results["targets"]] == [k for k, *_ in TARGETS]
    for label in results["runs"]:
        for regime, cell in results["neutral_shape"][label].items():
            assert cell["mm"]["value"] > 0, (label, regime)
    assert MEAN_HEAD in results["neutral_shape"]
    for t in results["targets"]:
        assert t["met"] in (True, False) and t["value"] is not None, t


def test_evaluate_cli_on_a_subset_says_what_is_missing(all_runs, tmp_path, capsys):
    out, _ = all_runs
    dest = tmp_path / "rep"
    results = evaluate.main(
        ["--runs", os.path.join(out, "finetune"), "--out", str(dest), "--bootstrap", "20",
         "--no-fit"]
    )  # fmt: skip
    assert list(results["runs"]) == ["rho"]
    text = (dest / "report.md").read_text()
    assert "Not among the runs" in text and "No ablation runs" in text
    assert "fit" not in results and "## Fitting" not in text
    assert "| hmc |" in capsys.readouterr().out
    not_measured = [t for t in results["targets"] if t["met"] is None]
    assert {t["key"] for t in not_measured} >= {"hmc_jaw", "neutral_hmc"}
    with pytest.raises(SystemExit):
        evaluate.main(["--runs", str(tmp_path / "nowhere")])
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(SystemExit):
        evaluate.main(["--runs", str(empty), "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit):
        evaluate.main(["--runs", os.path.join(out, "finetune"), "--bootstrap", "-1"])


def test_runs_on_different_data_are_refused():
    a = TrainConfig()
    b = a.replace(image_size=96)
    check_same_data([("a", a), ("c", a.replace(steps=7))])
    with pytest.raises(ValueError, match="image_size"):
        check_same_data([("a", a), ("b", b)])


def test_run_roles_come_from_the_config():
    base = TrainConfig()
    role = run_role
    assert role(base) == "rho"
    assert role(base.replace(camera="ortho")) == "ortho-retrained"
    assert role(base.replace(camera="ortho", regimes=("studio", "wild"))) == ("ortho-pretrained")
    assert role(base.replace(camera="perspective")) == "perspective"
    assert role(base.replace(w_rho_prior=0.0)) == "rho-no-prior"
    assert role(base.replace(masking="smirk")) == "rho-smirk-masking"
    assert role(base.replace(rho_init="paper")) == "rho-paper-init"
    assert role(base.replace(rho_init="paper", masking="smirk")) == ("rho-smirk-masking+paper-init")


def test_headline_prints_dashes_without_a_baseline():
    cell = {"value": 1.0, "lo": 0.5, "hi": 1.5}
    results = {
        "runs": {"rho": {"role": "rho"}},
        "landmarks": {"rho": {"hmc": {"jaw": cell, "other": cell}}},
        "rho": {"rho": {"hmc": {"pred_mean": 2.0, "pred_std": 0.5, "true_mean": 3.0}}},
        "vs_retrained": {"rho": {}},
    }
    line = report.headline(results).splitlines()[-1]
    assert line == "| hmc | 3.00 | 2.00 ± 0.50 | 1.00 | – | – | 1.00 | – | – |"


# ----------------------------------------------------------------------------- bootstrap


@given(st.integers(5, 60), st.integers(0, 1000))
def test_bootstrap_interval_of_a_mean_holds_the_mean(n, seed):
    x = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    lo, hi = bootstrap_ci(lambda s: s.mean(-1), x, n_boot=300, seed=seed)
    assert lo <= float(x.mean()) <= hi
    assert lo >= float(x.min()) and hi <= float(x.max())


def test_bootstrap_is_paired_and_narrows_with_more_images():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(400, generator=g) + 1
    lo, hi = bootstrap_ci(lambda a, b: a.mean(-1) / b.mean(-1), x, x)
    assert lo == hi == pytest.approx(1.0)  # paired: the same images in both
    small = bootstrap_ci(lambda s: s.mean(-1), x[:25])
    large = bootstrap_ci(lambda s: s.mean(-1), x)
    assert large[1] - large[0] < small[1] - small[0]
    assert all(v != v for v in bootstrap_ci(lambda s: s.mean(-1), x[:1]))
    with pytest.raises(ValueError, match="equal lengths"):
        bootstrap_ci(lambda a, b: a.mean(-1), x, x[:3])


@given(st.integers(3, 40), st.integers(0, 1000))
def test_batched_pearson_matches_pearson(n, seed):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(4, n, generator=g), torch.randn(4, n, generator=g)
    got = batched_pearson(a, b)
    for i in range(4):
        assert float(got[i]) == pytest.approx(pearson(a[i], b[i]), abs=1e-12)
    assert torch.isnan(batched_pearson(torch.ones(n), a[0]))


def test_finetune_refuses_a_pretraining_made_with_other_settings(all_runs):
    from train import finetune
    from train.engine.config import parse_config

    out, _ = all_runs
    with pytest.raises(SystemExit):
        finetune.main([*tiny_cli_args(out), "--masking", "smirk", "--baselines", "none"])
    # what an orthographic pretraining never reads (the rho prior) does not matter
    cfg, _ = parse_config(
        [*tiny_cli_args(out), "--w-rho-prior", "0"], base=recipe.FINETUNE_DEFAULTS
    )
    path = recipe.ensure_pretrained(cfg, progress=False)
    assert path == os.path.join(out, "pretrain-smoke", "final.safetensors")


def test_ablations_need_the_rho_model(tmp_path):
    from train import finetune

    with pytest.raises(SystemExit):
        finetune.main([*tiny_cli_args(tmp_path), "--camera", "perspective", "--ablations", "all"])
    cfg = TrainConfig.of(out_dir=str(tmp_path))
    names = [r.run.name for r in recipe.finetune_runs(cfg, "none", "all")]
    assert names == ["finetune", "finetune-noprior", "finetune-smirkmask", "finetune-paperinit"]
    roles = [run_role(r) for r in recipe.finetune_runs(cfg, "all", "all")]
    assert roles == ["rho", "ortho-retrained", "perspective", *ABLATIONS]


def test_the_report_has_the_fitting_rows(all_runs):
    """train.finetune fits the test landmarks by default: the four fit rows in tables
    1-3, the comparison with the orthographic fit, the captures and the targets."""
    out, results = all_runs
    fit = results["fit"]
    rows = {"fit-clean", "fit-mean", "fit-ortho", "fit-regressor"}
    assert set(fit["landmarks"]) == rows and set(fit["rho"]) == rows
    assert {k for k, v in fit["vs_ortho_fit"].items() if v} == rows - {"fit-ortho"}
    assert set(fit["neutral_shape"]) == {"fit-mean", "fit-ortho", "fit-regressor"}
    assert set(fit["captures"]) >= {"hmc", "studio", "wild"}
    assert fit["captures"]["frames"] == 16 and all(s > 0 for s in fit["seconds"].values())
    assert len(fit["targets"]) == 8 and all("met" in t for t in fit["targets"])
    assert fit["rho"]["fit-ortho"]["hmc"]["pred_mean"] == 0.0  # rho fixed at 0
    # every rho fit row says how often its 95 % intervals hold the truth
    for label in rows - {"fit-ortho"}:
        assert 0 <= fit["rho"][label]["hmc"]["coverage_pct"] <= 100
    assert "coverage_pct" not in fit["rho"]["fit-ortho"]["hmc"]
    assert 0 <= fit["captures"]["hmc"]["covered_pct"] <= 100
    text = open(os.path.join(report_dir(out), "report.md")).read()
    assert "## Fitting to the landmarks (train.fit)" in text and "**Per capture**" in text
    assert "95 % interval covers" in text and "interval covers" in text


def test_the_photometric_fit_row(all_runs, tmp_path):
    """``--photometric-fit`` adds the photometric fit of the test images to the fitting
    section: in the landmark, rho (with its intervals' coverage) and neutral-shape
    tables and in report.md, beside the landmark-only rows on the same landmarks."""
    out, _ = all_runs
    dest = tmp_path / "photo"
    results = evaluate.main(
        ["--runs", os.path.join(out, "finetune"), "--out", str(dest), "--bootstrap", "0",
         "--photometric-fit"]
    )  # fmt: skip
    fit = results["fit"]
    label = "fit-photometric"
    assert label in fit["landmarks"] and label in fit["rho"] and label in fit["neutral_shape"]
    assert fit["seconds"][label] > 0 and "--photometric-fit" in fit["titles"][label]
    cell = fit["rho"][label]["hmc"]
    assert cell["pred_mean"] > 0 and 0 <= cell["coverage_pct"] <= 100
    assert fit["landmarks"][label]["hmc"]["jaw"]["value"] >= 0
    assert fit["titles"][label] in (dest / "report.md").read_text()
    with pytest.raises(SystemExit):  # a fitting row without the fitting section
        evaluate.main(["--runs", os.path.join(out, "finetune"), "--no-fit", "--photometric-fit"])


def test_the_photometric_row_sees_the_samples_re_rendered_textured():
    """The synthetic test samples, re-rendered with an albedo map and SH light, keep their
    landmarks (the same identity, pose and camera); real photos pass as they are; a
    cache written by other generator settings is refused."""
    from train.data.synthetic import FaceGenerator
    from train.eval.photo_rows import photometric_images

    cfg = TrainConfig.of(image_size=32, n_shape=10, n_expr=10)
    d = cfg.data
    gen = FaceGenerator(d.flame, d.image_size, d.n_shape, d.n_expr, d.seed)
    samples = gen.generate("studio", "test", [3, 1])
    photo = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    folder = {k: v[:1].clone() for k, v in samples.items()}
    folder["image"], folder["regime"] = photo, torch.tensor([3])
    both = {k: torch.cat([samples[k], folder[k]]) for k in samples}
    images = photometric_images(cfg, both, progress=False)
    assert images.shape == (3, 32, 32, 3) and images.dtype == torch.float32
    assert torch.equal(images[2], photo[0].permute(1, 2, 0).float() / 255)
    stored = samples["image"].permute(0, 2, 3, 1).float() / 255
    assert (images[:2] - stored).abs().mean() > 0.02  # not the untextured renders
    both["landmarks"][0] += 0.01
    with pytest.raises(ValueError, match="generator settings"):
        photometric_images(cfg, both, progress=False)
