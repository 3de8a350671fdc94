"""``report.md`` from ``results.json`` (``train.evaluate``): text only, no computation.

Every number printed here is a value of ``results.json`` (rounded), so the two
can be checked against each other; a missing value prints as a dash.
"""

from __future__ import annotations

from _common.markdown import markdown_table
from train.data.sources import REGIMES

DASH = "–"
ABLATION_ROLES = ("rho-no-prior", "rho-smirk-masking", "rho-paper-init")


def _f(value, digits: int = 2) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def _ci(cell: dict | None, digits: int = 2, signed: bool = False) -> str:
    """``value [lo, hi]`` of a ``{"value", "lo", "hi"}`` cell."""
    if cell is None or cell.get("value") is None:
        return DASH
    fmt = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
    text = fmt.format(cell["value"])
    if cell.get("lo") is not None and cell.get("hi") is not None:
        text += f" [{fmt.format(cell['lo'])}, {fmt.format(cell['hi'])}]"
    return text


def _role_label(results: dict, role: str) -> str | None:
    return next((k for k, v in results["runs"].items() if v["role"] == role), None)


def _fig(results: dict, key: str, caption: str) -> list[str]:
    name = results["figures"].get(key)
    return [f"![{caption}]({name})", ""] if name else []


def setup_section(results: dict) -> list[str]:
    meta = results["meta"]
    data, mach, boot = meta["data"], meta["machine"], meta["bootstrap"]
    counts = ", ".join(f"{s} {n}" for s, n in data["test_images"].items())
    lines = [
        "## Setup",
        "",
        f"- Command: `{meta['command']}` ({meta['date']}).",
        f"- Machine: {mach['cpu']}, {mach['cpu_count']} logical CPUs, GPU "
        f"{mach['gpu'] or 'none'}; torch {mach['torch']}, Python {mach['python']}; "
        f"evaluated on `{meta['eval_device']}`.",
        f"- Test images: {counts} (held out; the test split's samples never appear in "
        f"training). Training: {data['train_images_per_regime']} images per regime. "
        f"Image size {data['image_size']} px, data seed {data['seed']}, FLAME `{data['flame']}` "
        f"({data['n_shape']} shape / {data['n_expr']} expression coefficients).",
        f"- Intervals: {boot['level'] * 100:.0f} % percentile bootstrap over test images, "
        f"{boot['resamples']} resamples, seed {boot['seed']}; comparisons are paired (the "
        "same resampled images for both models).",
        "",
        "Runs and their training budgets (steps x batch; time from the run's metrics.jsonl):",
        "",
    ]
    rows = []
    for label, run in results["runs"].items():
        b = run["budget"]
        rows.append(
            [
                label,
                run["title"],
                f"`{run['dir']}`",
                run["camera"],
                "+".join(run["regimes"]),
                str(b["steps"]),
                str(b["batch_size"]),
                f"{b['lr']:g}, {b.get('lr_schedule', 'constant')}",
                b.get("weights", "raw"),
                _f(b["train_seconds"], 0),
                _f(b["mean_step_s"], 3),
                b["device"] or DASH,
                b.get("machine") or "not recorded",
            ]
        )
    lines += markdown_table(
        [
            "run",
            "role",
            "directory",
            "camera",
            "trained on",
            "steps",
            "batch",
            "lr, schedule",
            "weights",
            "train s",
            "s / step",
            "device",
            "trained on machine",
        ],
        rows,
    )
    return lines


def targets_section(results: dict) -> list[str]:
    lines = ["## Targets of the issue (reported, not asserted)", ""]
    lines += _targets_table(results["targets"])
    return lines + [
        "A verdict reads the measured value; where the interval straddles the limit, the "
        "verdict could flip on another test set of this size.",
        "",
    ]


def paper_section(results: dict) -> list[str]:
    """Our changes against the paper's (docs/design.md section 7): directions and ratios."""
    paper = results["paper_reference"]
    rho, base = _role_label(results, "rho"), _role_label(results, "ortho-retrained")
    lines = [
        "## Against the paper",
        "",
        "The paper's numbers come from real data (its HMC and MEAD sets, NoW), ours from "
        "synthetic stand-ins, so only directions and ratios compare: change of the rho "
        "model's landmark error against the orthographic retrained model, in percent.",
        "",
    ]
    ours = results["vs_retrained"].get(rho, {}) if rho and base else {}
    rows = []
    for mine, theirs in (("hmc", "hmc"), ("wild", "mead")):
        for kind in ("jaw", "other"):
            rows.append(
                [
                    f"{kind}: {mine} (ours) / {theirs.upper()} (paper)",
                    _ci(ours.get(mine, {}).get(f"{kind}_pct"), 1, signed=True),
                    f"{paper['changes_pct'][theirs][f'{kind}_pct']:+.1f}",
                ]
            )
    lines += markdown_table(["change", "ours %", "paper %"], rows)
    persp = paper["sec62_equivalent_rho"]
    lines += [
        f"The paper's full-perspective baseline ends at an equivalent rho of "
        f"{persp['perspective']:.2f} against {persp['rho']:.2f} for its rho model (sec. 6.2); "
        "its table 3 gives mean rho "
        + ", ".join(f"{k} {m:.2f} ± {s:.2f}" for k, (m, s) in paper["rho"].items())
        + ".",
        "",
        "Not reproduced: the VGG perceptual loss (no pretrained weights can be downloaded "
        "here; docs/design.md section 6), ImageNet-pretrained backbones (ours train from "
        "scratch), and the paper's 224 px / 60k-step scale on the default preset.",
        "",
    ]
    return lines


def landmark_section(results: dict) -> list[str]:
    lines = [
        "## 1. Landmark error (table 1 of the paper)",
        "",
        "Mean squared distance in NDC x 1e4 (the paper's unit) over the 17 jaw-line and "
        "the 51 other landmarks, against the clean true landmarks, and the same as mean "
        f"pixel distance in a {results['meta']['report_pixels']}² image. "
        "Δ: change of the mean against the orthographic retrained model (r), paired.",
        "",
    ]
    sources = list(next(iter(results["landmarks"].values()), {}))
    for source in sources:
        rows = []
        for label, per in results["landmarks"].items():
            cell = per.get(source)
            if cell is None:
                continue
            vs = results["vs_retrained"].get(label, {}).get(source, {})
            rows.append(
                [
                    label,
                    _ci(cell["jaw"]),
                    _ci(cell["other"]),
                    _f(cell["jaw_px224"]["value"]),
                    _f(cell["other_px224"]["value"]),
                    _ci(vs.get("jaw_pct"), 1, signed=True),
                    _ci(vs.get("other_pct"), 1, signed=True),
                ]
            )
        n = next(iter(results["landmarks"].values()))[source]["n"]
        lines += [f"**{source}** ({n} test images)", ""]
        lines += markdown_table(
            ["run", "jaw x1e4", "other x1e4", "jaw px", "other px", "Δ jaw %", "Δ other %"], rows
        )
    return lines


def _seed_cell(cell: dict | None, digits: int = 1) -> str:
    """``mean ± sd [lo, hi]`` of a change over training replicates."""
    if not cell or cell.get("mean") is None:
        return DASH
    sd = "" if cell.get("sd") is None else f" ± {_f(cell['sd'], digits)}"
    bounds = {"value": cell["mean"], "lo": cell.get("lo"), "hi": cell.get("hi")}
    mean, _, interval = _ci(bounds, digits, signed=True).partition(" ")
    return f"{mean}{sd} {interval}".rstrip()


def replicate_section(results: dict) -> list[str]:
    """Each change against (r) over the training replicates (train.finetune --seeds N)."""
    rep = results.get("replicates")
    if not rep:
        return []
    lines = [
        "## Across training seeds",
        "",
        f"Every role trained {len(rep['replicates'])} times on the same data (replicates "
        f"{', '.join(str(k) for k in rep['replicates'])}: network init, batch order and "
        "per-step noise differ). Δ: change of the mean landmark error against the "
        "orthographic retrained model of the same replicate, in percent: per replicate, "
        "then mean ± between-seed SD and a 95 % interval of the mean from a bootstrap over "
        "replicates and test images (training and test-sampling variability together). "
        "These intervals, not the single-run ones above, say whether an effect survives "
        "retraining.",
        "",
    ]
    rows = []
    for role, entry in rep["roles"].items():
        for source, cells in entry["vs_retrained"].items():
            for change in ("jaw_pct", "other_pct"):
                c = cells[change]
                rows.append(
                    [
                        role,
                        source,
                        change.removesuffix("_pct"),
                        ", ".join(DASH if v is None else f"{v:+.1f}" for v in c["per_seed"]),
                        _seed_cell(c),
                    ]
                )
    lines += markdown_table(["role", "regime", "Δ %", "per replicate", "mean ± SD [95 %]"], rows)
    rho_rows = []
    for role, entry in rep["roles"].items():
        for source, c in entry["rho_mean"].items():
            sd = "" if c["sd"] is None else f" ± {_f(c['sd'])}"
            per = ", ".join(_f(v) for v in c["per_seed"])
            rho_rows.append([role, source, per, f"{_f(c['mean'])}{sd}"])
    lines += ["Mean predicted rho per replicate:", ""]
    lines += markdown_table(["role", "regime", "per replicate", "mean ± SD"], rho_rows)
    return lines


def _neutral_cell(cell: dict, versus: str = "(r)") -> str:
    text = f"{_ci(cell['mm'])} (median {_f(cell['median_mm'])})"
    if "vs_retrained_mm" in cell:
        text += f"; vs {versus} {_ci(cell['vs_retrained_mm'], signed=True)}"
    return text


def neutral_section(results: dict) -> list[str]:
    lines = [
        "## 2. Neutral-shape error (table 2 of the paper)",
        "",
        "The predicted shape rebuilt as a neutral head (expression and pose zero), aligned "
        "rigidly (rotation + translation) to the true neutral head on the 68 landmarks; mean "
        "distance of the face-region vertices (within 95 mm of the nose tip, NoW's crop) to "
        "the true surface, in mm. `hmc` plays the role of NoW's selfie set.",
        "",
    ]
    table = results["neutral_shape"]
    regimes = [r for r in REGIMES if any(r in per for per in table.values())]
    rows = []
    for label, per in table.items():
        rows.append([label] + [_neutral_cell(per[r]) if r in per else DASH for r in regimes])
    lines += markdown_table(["run", *(f"{r} mm" for r in regimes)], rows)
    return lines + _fig(results, "neutral_error", "neutral-shape error")


def rho_section(results: dict) -> list[str]:
    lines = [
        "## 3. Predicted rho against the truth (table 3 of the paper)",
        "",
        "True rho = 1/t_z of the camera that rendered the image (the exact "
        "pseudo-perspective equivalent of that pinhole camera). Pearson r with its interval "
        "and Spearman rank correlation are per image; distance: the median of 1/rho in "
        "metres next to the median true t_z.",
        "",
    ]
    rows = []
    for label, per in results["rho"].items():
        if results["runs"][label]["camera"] == "ortho":
            continue
        for source, cell in per.items():
            rows.append(
                [
                    label,
                    source,
                    f"{_f(cell['pred_mean'])} ± {_f(cell['pred_std'])}",
                    f"{_f(cell.get('true_mean'))} ± {_f(cell.get('true_std'))}"
                    if "true_mean" in cell
                    else DASH,
                    _f(cell.get("mean_error_pct"), 1),
                    _ci(cell.get("pearson")),
                    _f(cell.get("spearman")),
                    _f(cell.get("distance_pred_median_m")),
                    _f(cell.get("distance_true_median_m")),
                ]
            )
    lines += markdown_table(
        [
            "run",
            "regime",
            "rho predicted",
            "rho true",
            "mean off %",
            "Pearson r",
            "Spearman",
            "1/rho m",
            "true t_z m",
        ],
        rows,
    )
    lines += _fig(results, "rho_scatter", "predicted vs true rho")
    lines += _fig(results, "rho_hist", "rho per regime")
    return lines


def sweep_section(results: dict) -> list[str]:
    lines = ["## 4. The rho sweep (figure 2 of the paper)", ""]
    fig = _fig(results, "rho_sweep", "rho sweep")
    return lines + (fig or ["No rho model among the runs.", ""])


def perspective_section(results: dict) -> list[str]:
    lines = ["## 5. The full-perspective baseline (sec. 6.2 of the paper)", ""]
    persp, rho = _role_label(results, "perspective"), _role_label(results, "rho")
    if persp is None:
        return lines + [
            "Not among the runs: train it with `python -m train.finetune --baselines all` "
            "and pass its directory to `--runs`.",
            "",
        ]
    lines += [
        "The baseline regresses f and t_z; its equivalent rho is 1/t_z (and S = f/t_z, "
        "docs/design.md section 3).",
        "",
    ]
    rows = []
    for regime in REGIMES:
        p = results["rho"][persp].get(regime)
        if p is None or "true_mean" not in p:
            continue
        r = results["rho"].get(rho, {}).get(regime, {}) if rho else {}
        rows.append(
            [
                regime,
                _f(p["true_mean"]),
                f"{_f(p['pred_mean'])} ± {_f(p['pred_std'])}",
                f"{_f(r.get('pred_mean'))} ± {_f(r.get('pred_std'))}" if r else DASH,
                _ci(p.get("pearson")),
            ]
        )
    lines += markdown_table(
        ["regime", "true rho", "perspective: equivalent rho", "rho model", "perspective Pearson"],
        rows,
    )
    return lines + _fig(results, "perspective_rho", "equivalent rho during training")


def overlay_section(results: dict) -> list[str]:
    return ["## 6. Overlays", ""] + _fig(results, "overlays", "overlays")


def ablation_section(results: dict) -> list[str]:
    lines = [
        "## 7. Ablations (same budget, same pretraining)",
        "",
    ]
    present = [_role_label(results, r) for r in ("rho", *ABLATION_ROLES)]
    present = [p for p in present if p is not None]
    if len(present) < 2:
        return lines + [
            "No ablation runs given: train them with `python -m train.finetune --ablations "
            "all` and pass their directories to `--runs`.",
            "",
        ]
    rows = []
    for label in present:
        lm, rho = results["landmarks"][label], results["rho"][label]
        shape = results["neutral_shape"].get(label, {})
        row = [label]
        for regime in ("hmc", "wild"):
            row += [_f(lm.get(regime, {}).get(k, {}).get("value")) for k in ("jaw", "other")]
        row += [_f(rho.get(r, {}).get("pred_mean")) for r in REGIMES]
        row.append(_ci(rho.get("all", {}).get("pearson")))
        row.append(_f(shape.get("hmc", {}).get("mm", {}).get("value")))
        rows.append(row)
    header = ["run", "hmc jaw", "hmc other", "wild jaw", "wild other"]
    header += [f"rho {r}" for r in REGIMES] + ["Pearson (all)", "hmc shape mm"]
    return lines + markdown_table(header, rows)


def headline(results: dict) -> str:
    """The short table ``train.finetune`` prints: per regime, rho and the landmark errors
    of the rho model against the orthographic retrained model."""
    rho, base = _role_label(results, "rho"), _role_label(results, "ortho-retrained")
    main = rho or next(iter(results["runs"]))
    rows = []
    for source, cell in results["landmarks"][main].items():
        r = results["rho"][main].get(source, {})
        b = results["landmarks"].get(base, {}).get(source) if base else None
        vs = results["vs_retrained"].get(main, {}).get(source, {})
        rows.append(
            [
                source,
                _f(r.get("true_mean")),
                f"{_f(r.get('pred_mean'))} ± {_f(r.get('pred_std'))}",
                _f(cell["jaw"]["value"]),
                _f(b["jaw"]["value"]) if b else DASH,
                _ci(vs.get("jaw_pct"), 1, signed=True),
                _f(cell["other"]["value"]),
                _f(b["other"]["value"]) if b else DASH,
                _ci(vs.get("other_pct"), 1, signed=True),
            ]
        )
    header = [
        "regime",
        "rho true",
        "rho predicted",
        "jaw x1e4",
        "jaw (r)",
        "Δ jaw %",
        "other x1e4",
        "other (r)",
        "Δ other %",
    ]
    lines = markdown_table(header, rows)
    rep = results.get("replicates", {}).get("roles", {}).get("rho")
    if rep and rep["vs_retrained"]:
        n = len(rep["replicates"])
        lines += [
            f"Over {n} training replicates (mean ± between-seed SD [95 % over replicates "
            "and images]):",
            "",
        ]
        seed_rows = [
            [source, _seed_cell(c["jaw_pct"]), _seed_cell(c["other_pct"])]
            for source, c in rep["vs_retrained"].items()
        ]
        lines += markdown_table(["regime", "Δ jaw %", "Δ other %"], seed_rows)
    return "\n".join(lines).rstrip()


def _targets_table(targets: list[dict]) -> list[str]:
    rows = []
    for t in targets:
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        wanted = f"{t['compare'].replace('x', 'measured')} {t['limit']:g}"
        rows.append([t["target"], wanted, _ci(t), verdict])
    return markdown_table(["target", "wanted", "measured [95 % interval]", "verdict"], rows)


def fit_section(results: dict) -> list[str]:
    """Fitting FLAME and the camera to the landmarks (train.fit), beside the regressors."""
    fit = results.get("fit")
    if not fit:
        return []
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in fit["seconds"].items())
    lines = [
        "## Fitting to the landmarks (train.fit)",
        "",
        "FLAME shape, expression, jaw, head pose and the camera (S, t, rho) fitted to the "
        "68 landmarks alone by MAP estimation (the data's priors, batched L-BFGS; "
        "`train.fit.fit_landmarks`), on the same test images as the runs above. The "
        "orthographic fit uses the same landmarks and priors with rho fixed at 0, so its "
        "comparison with the rho fit is the paper's table 1 without training noise. "
        f"Fitting time for {fit['images']} images on this machine: {seconds}.",
        "",
        "**Landmark error** (x1e4 NDC²; Δ: change against the orthographic fit, paired)",
        "",
    ]
    rows = []
    for label, per in fit["landmarks"].items():
        for source, cell in per.items():
            vs = fit["vs_ortho_fit"].get(label, {}).get(source, {})
            rows.append(
                [
                    fit["titles"][label],
                    source,
                    _ci(cell["jaw"]),
                    _ci(cell["other"]),
                    _ci(vs.get("jaw_pct"), 1, signed=True),
                    _ci(vs.get("other_pct"), 1, signed=True),
                ]
            )
    lines += markdown_table(
        ["fit", "regime", "jaw x1e4", "other x1e4", "Δ jaw %", "Δ other %"], rows
    )
    if fit["vs_retrained"]:
        lines += ["**rho model + fit against the orthographic retrained model (r)**", ""]
        lines += markdown_table(
            ["regime", "Δ jaw %", "Δ other %"],
            [
                [r, _ci(c["jaw_pct"], 1, signed=True), _ci(c["other_pct"], 1, signed=True)]
                for r, c in fit["vs_retrained"].items()
            ],
        )
    lines += ["**rho against the truth**", ""]
    rows = []
    for label, per in fit["rho"].items():
        if label == "fit-ortho":
            continue
        for source, cell in per.items():
            rows.append(
                [
                    fit["titles"][label],
                    source,
                    f"{_f(cell['pred_mean'])} ± {_f(cell['pred_std'])}",
                    f"{_f(cell.get('true_mean'))}" if "true_mean" in cell else DASH,
                    _f(cell.get("mean_error_pct"), 1),
                    _ci(cell.get("pearson")),
                    _coverage_cell(cell),
                ]
            )
    head = "fit|regime|rho fitted|rho true|mean off %|Pearson r|95 % interval covers (too wide)"
    lines += markdown_table(head.split("|"), rows)
    lines += ["**Neutral-shape error** (mm; vs: against the orthographic fit, paired)", ""]
    regimes = [r for r in REGIMES if any(r in per for per in fit["neutral_shape"].values())]
    lines += markdown_table(
        ["fit", *(f"{r} mm" for r in regimes)],
        [
            [fit["titles"].get(label, label)]
            + [_neutral_cell(per[r], "ortho fit") if r in per else DASH for r in regimes]
            for label, per in fit["neutral_shape"].items()
        ],
    )
    cap = fit["captures"]
    lines += [
        f"**Per capture**: {cap['captures']} captures of {cap['frames']} frames per regime "
        "(one subject at one distance each, noisy landmarks), fitted with one shape and one "
        f"rho per capture ({cap['seconds']:.1f} s), against the same frames fitted one by one.",
        "",
    ]
    head = "regime|true rho|capture rho|off per capture % (median, max)|captures within 5 %"
    lines += markdown_table(
        head.split("|") + ["interval covers", "|off| per frame %", "jaw x1e4", "other x1e4"],
        [
            [
                r,
                _f(cap[r]["true_mean"]),
                _f(cap[r]["capture_mean"]),
                f"{_ci(cap[r]['capture_abs_error_pct'], 1)} ({_f(cap[r].get('median_pct'), 1)}, "
                f"{_f(cap[r].get('max_pct'), 1)})",
                f"{cap[r]['within_pct']:.0f} %",
                f"{_f(cap[r].get('covered_pct'), 0)} %",
                _ci(cap[r]["frame_abs_error_pct"], 1),
                _ci(cap[r]["jaw"]),
                _ci(cap[r]["other"]),
            ]
            for r in REGIMES
            if r in cap
        ],
    )
    lines += ["**Targets of the fitting** (reported, not asserted)", ""]
    return lines + _targets_table(fit["targets"])


def _coverage_cell(cell: dict) -> str:
    if cell.get("coverage_pct") is None:
        return DASH
    return f"{cell['coverage_pct']:.0f} % ({cell['unobservable_pct']:.0f} %)"


def render(results: dict) -> str:
    """The whole ``report.md``."""
    lines = [
        "# Evaluation report",
        "",
        "The paper's tables and figures reproduced on held-out synthetic data with known "
        "camera and shape (`python -m train.evaluate`). Every number below is computed from "
        "the checkpoints and the data and stored in `results.json`.",
        "",
        "Headline (test split): the rho model against the orthographic retrained model (r).",
        "",
        headline(results),
        "",
    ]
    for section in (
        setup_section,
        targets_section,
        paper_section,
        landmark_section,
        replicate_section,
        neutral_section,
        rho_section,
        sweep_section,
        perspective_section,
        overlay_section,
        ablation_section,
        fit_section,
    ):
        lines += section(results)
    return "\n".join(lines).rstrip() + "\n"
