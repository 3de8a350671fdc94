"""The project's GPU targets (issue 16; the photometric fit's from issue 31), judged from
the stage records of ``bench.gpu``.

Each target becomes one row: what was measured, the target, and ``met``,
``missed`` or ``not measured`` (with the reason: a stage that was skipped, failed
or timed out, a case that did not run). Figures from a run without a GPU (the
dry run) are never judged: Triton ran in its interpreter there.
"""

from __future__ import annotations

from collections.abc import Callable

MET, MISSED, NOT_MEASURED, NOT_JUDGED = "met", "missed", "not measured", "not judged (no GPU)"
#: Projection targets: the batch of the bandwidth target and the batches of the speed-ups.
PROJECTION_BATCH = 4096
SPEEDUP_BATCHES = (64, 512, 4096)
EAGER_SPEEDUP = 3.0
COPY_FRACTION = 0.80
#: Raster targets (ms for rasterize + interpolate + antialias, forward + backward, B = 64).
RASTER_MS = {224: 1.0, 512: 4.0}
RENDER_SHARE = 0.15
#: Fitting: 4,096 images (per image, from the mean face) in under this many seconds.
FIT_SECONDS = 2.0
#: Photometric fitting (issue 31): a capture of this many frames at this many px, the
#: fit's defaults, in under this many seconds.
PHOTO_FIT_FRAMES, PHOTO_FIT_PX, PHOTO_FIT_SECONDS = 64, 512, 10.0


def _row(target: str, measured: str, verdict: str, note: str = "") -> dict:
    return {"target": target, "measured": measured, "verdict": verdict, "note": note}


def _find(rows: list[dict], **match) -> dict | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def _data(stages: dict, name: str) -> tuple[dict | None, str]:
    """A stage's record, or None and why it is missing."""
    s = stages.get(name)
    if s is None:
        return None, f"stage {name} not run"
    if s["record"].get("skip_reason"):
        return None, f"stage {name} skipped: {s['record']['skip_reason']}"
    if s["status"] != "ok":
        return None, f"stage {name} {s['status']}"
    return s["record"], ""


def projection_rows(stages: dict) -> list[dict]:
    data, why = _data(stages, "projection")
    names = (
        f"ppcam fwd+bwd, B = {PROJECTION_BATCH} x 5023: >= {COPY_FRACTION:.0%} of copy bandwidth",
        f"ppcam fwd+bwd, B >= 64: >= {EAGER_SPEEDUP:g}x torch eager",
        "ppcam fwd+bwd, B >= 64: faster than torch.compile",
    )
    if data is None:
        return [_row(n, "", NOT_MEASURED, why) for n in names]
    rows = [r for r in data["rows"] if r["mode"] == "forward+backward"]
    out = []
    tri = _find(rows, backend="triton", batch=PROJECTION_BATCH)
    if tri is None or tri.get("fraction_of_copy") is None:
        out.append(_row(names[0], "", NOT_MEASURED, "no GPU row at this batch"))
    else:
        f = tri["fraction_of_copy"]
        out.append(
            _row(
                names[0],
                f"{f:.0%} ({tri['achieved_GBps']:.0f} of {tri['copy_GBps']:.0f} GB/s)",
                MET if f >= COPY_FRACTION else MISSED,
            )
        )
    for name, other, ok in (
        (names[1], "torch", lambda s: s >= EAGER_SPEEDUP),
        (names[2], "torch.compile", lambda s: s > 1.0),
    ):
        speedups = []
        for b in SPEEDUP_BATCHES:
            t, o = _find(rows, backend="triton", batch=b), _find(rows, backend=other, batch=b)
            if t and o:
                speedups.append((b, o["ms"] / t["ms"]))
        if not speedups:
            out.append(_row(name, "", NOT_MEASURED, f"no triton/{other} pairs at B >= 64"))
            continue
        text = ", ".join(f"B={b}: {s:.2f}x" for b, s in speedups)
        out.append(_row(name, text, MET if all(ok(s) for _, s in speedups) else MISSED))
    return out


def raster_rows(stages: dict) -> list[dict]:
    data, why = _data(stages, "raster")
    out = []
    for res, limit in RASTER_MS.items():
        name = f"rasterize+interpolate+antialias fwd+bwd, head, {res}², B = 64: < {limit:g} ms"
        row = (
            None
            if data is None
            else _find(
                data["rows"], backend="triton", mode="forward+backward", resolution=res, batch=64
            )
        )
        if row is None:
            out.append(_row(name, "", NOT_MEASURED, why or "no triton row for this case"))
        else:
            out.append(_row(name, f"{row['ms']:.3f} ms", MET if row["ms"] < limit else MISSED))
    name = "the same, 224², B = 64: faster than nvdiffrast (same run)"
    peer, why = _data(stages, "nvdiffrast")
    row = None if peer is None else _find(peer["rows"], resolution=224, batch=64)
    if row is None:
        out.append(_row(name, "", NOT_MEASURED, why or "no nvdiffrast row for this case"))
    else:
        s = row["speedup_minirast_vs_nvdiffrast"]
        out.append(
            _row(
                name,
                f"minirast {row['minirast_triton_ms']:.3f} ms, nvdiffrast "
                f"{row['nvdiffrast_ms']:.3f} ms ({s:.2f}x); covered-pixel id agreement "
                f"{100 * row['covered_pixel_agreement']:.2f} %",
                MET if s > 1 else MISSED,
            )
        )
    return out


def texture_rows(stages: dict) -> list[dict]:
    """minirast.texture (Triton) against nvdiffrast's dr.texture, B = 8, 512² pixels."""
    data, why = _data(stages, "texture")
    out = []
    for filter_mode in ("linear", "linear-mipmap-linear"):
        name = f"texture {filter_mode} fwd+bwd, B = 8, 512²: faster than nvdiffrast (same run)"
        rows = [] if data is None else data["rows"]
        match = {"filter": filter_mode, "batch": 8, "mode": "forward+backward"}
        ours = _find(rows, backend="minirast triton", **match)
        peer = _find(rows, backend="nvdiffrast", **match)
        if ours is None or peer is None:
            note = why or f"no nvdiffrast row ({data.get('nvdiffrast', '') if data else ''})"
            out.append(_row(name, "", NOT_MEASURED, note))
            continue
        s = peer["ms"] / ours["ms"]
        measured = f"minirast {ours['ms']:.3f} ms, nvdiffrast {peer['ms']:.3f} ms ({s:.2f}x)"
        out.append(_row(name, measured, MET if s > 1 else MISSED))
    return out


def train_rows(stages: dict) -> list[dict]:
    data, why = _data(stages, "train")
    out = []
    for amp in (True, False):
        name = (
            f"full preset step (224 px, batch 32, amp={int(amp)}): rendering "
            f"< {RENDER_SHARE:.0%} of the step"
        )
        row = None if data is None else _find(data["rows"], amp=amp)
        if row is None:
            out.append(_row(name, "", NOT_MEASURED, why))
            continue
        share = row["render_share"]
        measured = (
            f"{share:.1%} fwd+bwd ({row['render_fwd_share']:.1%} fwd only); "
            f"{row['images_per_s']:.0f} images/s"
        )
        if data["preset"] != "full":
            measured += (
                f" ({data['preset']} preset, {row['image_size']} px, batch {row['batch_size']})"
            )
        out.append(_row(name, measured, MET if share < RENDER_SHARE else MISSED))
    return out


def suite_rows(stages: dict) -> list[dict]:
    name = "no test that passes on CPU fails on the GPU (cuda tests + suite)"
    counts, notes = {"failed": 0, "errors": 0, "passed": 0}, []
    for stage in ("cuda-tests", "suite"):
        data, why = _data(stages, stage)
        if data is None:
            notes.append(why)
            continue
        for k in counts:
            counts[k] += data[k]
        if data.get("incomplete") or data.get("not_run"):
            notes.append(f"{stage} incomplete")
    measured = f"{counts['passed']} passed, {counts['failed']} failed, {counts['errors']} errors"
    bad = counts["failed"] + counts["errors"]
    if bad:
        return [_row(name, measured, MISSED, "; ".join(notes))]
    if notes:
        return [_row(name, measured, NOT_MEASURED, "; ".join(notes))]
    return [_row(name, measured, MET)]


def determinism_rows(stages: dict) -> list[dict]:
    name = "every Triton backward bitwise repeatable at full size"
    data, why = _data(stages, "determinism")
    if data is None:
        return [_row(name, "", NOT_MEASURED, why)]
    return [_row(name, data["headline"], MET if data["all_bitwise_equal"] else MISSED)]


def fit_rows(stages: dict) -> list[dict]:
    name = f"train.fit: 4,096 images fitted per image in < {FIT_SECONDS:g} s"
    data, why = _data(stages, "fit")
    row = None if data is None else next(iter(data["rows"]), None)
    if row is None:
        return [_row(name, "", NOT_MEASURED, why or "no row")]
    measured = f"{row['seconds']:.2f} s for {row['images']} images"
    if row["images"] != 4096:
        return [_row(name, measured, NOT_MEASURED, "not 4,096 images")]
    return [_row(name, measured, MET if row["seconds"] < FIT_SECONDS else MISSED)]


def photo_fit_rows(stages: dict) -> list[dict]:
    """``fit_images`` on one capture (stage ``photo-fit``): its default row (the render at
    the fit's default resolution) is judged; a full-resolution row is only reported."""
    name = (
        f"train.fit.fit_images: a capture of {PHOTO_FIT_FRAMES} frames at {PHOTO_FIT_PX} px "
        f"in < {PHOTO_FIT_SECONDS:g} s"
    )
    data, why = _data(stages, "photo-fit")
    rows = [] if data is None else data["rows"]
    if not rows:
        return [_row(name, "", NOT_MEASURED, why or "no row")]
    row = rows[0]
    measured = (
        f"{row['seconds']:.2f} s ({row['frames']} frames at {row['size']} px, render "
        f"{row['resolution']} px, {row['iterations']} iterations)"
    )
    note = "; ".join(
        f"render {r['resolution']} px: {r['seconds']:.2f} s (not judged)" for r in rows[1:]
    )
    if (row["frames"], row["size"]) != (PHOTO_FIT_FRAMES, PHOTO_FIT_PX):
        return [_row(name, measured, NOT_MEASURED, "another job")]
    return [_row(name, measured, MET if row["seconds"] < PHOTO_FIT_SECONDS else MISSED, note)]


#: Every group of rows, in the order of the summary.
GROUPS: tuple[Callable[[dict], list[dict]], ...] = (
    projection_rows,
    raster_rows,
    texture_rows,
    train_rows,
    fit_rows,
    photo_fit_rows,
    suite_rows,
    determinism_rows,
)


def judge(stages: dict, on_gpu: bool) -> list[dict]:
    """All target rows; without a GPU every measured verdict becomes ``not judged``."""
    rows = [r for group in GROUPS for r in group(stages)]
    if not on_gpu:
        for r in rows:
            if r["verdict"] in (MET, MISSED):
                r["verdict"] = NOT_JUDGED
    return rows
