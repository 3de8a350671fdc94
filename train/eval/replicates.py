"""Training-seed variability: each headline change over independent training replicates.

``train.finetune --seeds N`` trains every role N times on the same data with different
network init, batch order and per-step noise (``TrainConfig.replicate``). A change
"role against the orthographic retrained model" is then measured once per replicate,
pairing replicate k of the role with replicate k of the baseline, and summarised as

- ``per_seed``: the change of each replicate (percent, as the single-run tables);
- ``mean``: their mean; ``sd``: their between-seed standard deviation (ddof 1);
- ``lo``/``hi``: a percentile interval of the mean from a two-level bootstrap that
  resamples the replicates *and* the test images (the same images for every
  replicate and both models: the comparison stays paired), so it covers training
  variability as well as the sampling of test images.
"""

from __future__ import annotations

import torch

from train.eval.runs import BASELINE, EvalRun
from train.eval.tables import per_image_landmarks, sources_present

#: the changes summarised per role and source
CHANGES = ("jaw", "other")


def seed_changes(
    role_errors: torch.Tensor,
    base_errors: torch.Tensor,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Summary of ``(mean_i role[k, i] / mean_i base[k, i] - 1) * 100`` over replicates k.

    ``role_errors``, ``base_errors``: ``[K, N]`` per-image errors of K replicates on the
    same N test images. Returns ``{"per_seed": [K], "mean", "sd", "lo", "hi", "n_seeds"}``
    (``sd`` NaN for one replicate; ``lo``/``hi`` NaN without resamples or images).
    """
    if role_errors.shape != base_errors.shape or role_errors.dim() != 2:
        raise ValueError(
            f"role and baseline errors must both be [replicates, images], got "
            f"{tuple(role_errors.shape)} and {tuple(base_errors.shape)}"
        )
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    a, b = role_errors.double(), base_errors.double()
    K, N = a.shape
    per_seed = (a.mean(1) / b.mean(1) - 1.0) * 100.0
    out = {
        "per_seed": [float(v) for v in per_seed],
        "mean": float(per_seed.mean()),
        "sd": float(per_seed.std()) if K > 1 else float("nan"),
        "lo": float("nan"),
        "hi": float("nan"),
        "n_seeds": K,
    }
    if n_boot < 1 or N < 2 or K < 1:
        return out
    gen = torch.Generator().manual_seed(seed)
    seeds = torch.randint(0, K, (n_boot, K), generator=gen)  # [R, K]
    images = torch.randint(0, N, (n_boot, N), generator=gen)  # [R, N]
    # mean over the resampled images of each replicate, for each resample: [R, K]
    a_img = a[:, images].mean(-1).T  # [R, K] (replicate k on resample r's images)
    b_img = b[:, images].mean(-1).T
    change = (a_img / b_img - 1.0) * 100.0
    stats = change.gather(1, seeds).mean(1)
    stats = stats[torch.isfinite(stats)]
    if len(stats) >= n_boot / 2:
        tail = (1.0 - level) / 2
        lo, hi = torch.quantile(stats, torch.tensor([tail, 1.0 - tail], dtype=stats.dtype))
        out["lo"], out["hi"] = float(lo), float(hi)
    return out


def by_replicate(runs: list[EvalRun]) -> dict[str, dict[int, EvalRun]]:
    """``{role: {replicate: run}}`` of the trained runs (an imported model has none)."""
    out: dict[str, dict[int, EvalRun]] = {}
    for run in runs:
        if not run.imported:
            out.setdefault(run.role, {})[run.cfg.run.replicate] = run
    return out


def replicate_table(
    runs: list[EvalRun], preds: dict, samples, n_boot: int = 1000, seed: int = 0
) -> dict | None:
    """Per role and source, each change against the baseline over the replicates both
    have, and the predicted rho per replicate; None when no role has two replicates."""
    groups = by_replicate(runs)
    base = groups.get(BASELINE, {})
    if max((len(g) for g in groups.values()), default=0) < 2:
        return None
    errors = {
        r.label: per_image_landmarks(preds[r.label]["landmarks"], samples["landmarks"])
        for r in runs
    }
    table: dict = {"replicates": sorted({k for g in groups.values() for k in g}), "roles": {}}
    for role, reps in groups.items():
        common = sorted(set(reps) & set(base))
        entry: dict = {"replicates": sorted(reps), "vs_retrained": {}, "rho_mean": {}}
        for source, sel in sources_present(samples):
            if role != BASELINE and len(common) >= 1:
                entry["vs_retrained"][source] = {
                    f"{k}_pct": seed_changes(
                        torch.stack([errors[reps[i].label][k][sel] for i in common]),
                        torch.stack([errors[base[i].label][k][sel] for i in common]),
                        n_boot=n_boot,
                        seed=seed,
                    )
                    for k in CHANGES
                }
            rho = torch.stack(
                [preds[reps[i].label]["rho"][sel].double().mean() for i in sorted(reps)]
            )
            entry["rho_mean"][source] = {
                "per_seed": [float(v) for v in rho],
                "mean": float(rho.mean()),
                "sd": float(rho.std()) if len(rho) > 1 else None,
            }
        table["roles"][role] = entry
    return table
