"""``python -m bench.standin_mediapipe``: the stand-in head's MediaPipe embedding, derived
from MediaPipe's own mesh on renders, and how well it reprojects on held-out renders.

Derivation: renders of the stand-in (random studio subjects and expressions, yaw within
+-20 degrees, the face spanning 35-45 % of a 320 px image over a real background, as
:mod:`bench.faces_data`) go through MediaPipe's face mesh (:mod:`train.faces`); each of
SMIRK's 105 points is back-projected onto the posed mesh (the front-most projected
triangle holding it, barycentric there), carried to the rest mesh through the same face
and barycentrics, and the median over views of its rest ``(x, y)`` is what
:data:`flame.standin.mediapipe.REST_XY` holds (the build casts a ray along -z there, as
for the 68 static landmarks). ``--print`` writes the table to paste.

Held-out check: on renders of the test split the bundled head's embedded points are
projected with the true camera and compared with MediaPipe's points, in pixels of the
320 px image and as a fraction of the inter-ocular distance (outer eye corners). Writes
``standin_mediapipe.json`` and ``.md`` under ``bench/results/<device-name>/``.
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np
import torch

from bench.common import machine_fields, write_results
from flame.mediapipe_embedding import MEDIAPIPE_105

SIZE = 320
MAX_YAW = 20.0


def renders(split: str, n: int, seed: int = 0):
    """``(image [S,S,3] uint8, posed vertices [1,V,3], NDC of the vertices [V,2], camera
    depth [V], camera (scale, trans, rho), generator)`` for ``n`` renders of ``split``."""
    from PIL import Image

    from bench.faces_data import BACKGROUNDS, SKIMAGE
    from train.data.synthetic import (
        REGIME_SPECS,
        FaceGenerator,
        _axis_angle_from_euler,
        sample_parameters,
    )
    from train.faces.wheel_files import fetch
    from train.render.head import camera_vertices, project_landmarks

    files = fetch(SKIMAGE, quiet=True)
    backgrounds = [
        np.asarray(Image.open(files[b]).convert("RGB").resize((SIZE, SIZE))) for b in BACKGROUNDS
    ]
    gen = FaceGenerator("bundled", size=SIZE)
    spec = REGIME_SPECS["studio"]
    rng = np.random.default_rng(seed + (0 if split == "train" else 1))
    for i in range(n):
        p = sample_parameters(spec, seed, split, i, gen.n_shape, gen.n_expr)
        yaw = math.radians(float(rng.uniform(-MAX_YAW, MAX_YAW)))
        p["global_pose"] = _axis_angle_from_euler(yaw, float(rng.uniform(-0.1, 0.1)), 0.0)
        p["span"] = torch.tensor(float(rng.uniform(0.35, 0.45)))
        out = gen._make(spec, [p], [0], render=True)
        image = out["image"][0].permute(1, 2, 0).numpy()
        mask = out["mask"][0, 0].numpy()[..., None] > 0
        composite = np.where(mask, image, backgrounds[i % len(backgrounds)]).astype(np.uint8)
        with torch.no_grad():
            verts = gen.layer(
                shape=p["shape"][None],
                expression=p["expression"][None],
                global_pose=p["global_pose"][None],
                jaw_pose=p["jaw_pose"][None],
                eyelids=p["eyelids"][None],
            ).vertices
            ndc = project_landmarks(verts, out["scale"], out["trans"], out["rho"])[0]
            depth = camera_vertices(verts)[0, :, 2]
        camera = (out["scale"], out["trans"], out["rho"])
        yield composite, verts, ndc.double().numpy(), depth.double().numpy(), camera, gen


def back_project(
    points_ndc: np.ndarray, ndc: np.ndarray, depth: np.ndarray, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Front-most face ``[N]`` (-1: none) holding each point ``[N,2]`` in the projected
    mesh, and its barycentrics ``[N,3]`` (screen-space)."""
    a, b, c = ndc[faces[:, 0]], ndc[faces[:, 1]], ndc[faces[:, 2]]
    d = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    ok = np.abs(d) > 1e-14
    d = np.where(ok, d, 1.0)
    px, py = points_ndc[:, :1], points_ndc[:, 1:]
    l0 = ((b[:, 1] - c[:, 1]) * (px - c[:, 0]) + (c[:, 0] - b[:, 0]) * (py - c[:, 1])) / d
    l1 = ((c[:, 1] - a[:, 1]) * (px - c[:, 0]) + (a[:, 0] - c[:, 0]) * (py - c[:, 1])) / d
    l2 = 1.0 - l0 - l1
    inside = ok & (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
    zf = depth[faces]
    z = l0 * zf[:, 0] + l1 * zf[:, 1] + l2 * zf[:, 2]
    z = np.where(inside, z, np.inf)
    f = z.argmin(1)
    rows = np.arange(len(points_ndc))
    found = np.isfinite(z[rows, f])
    bary = np.stack([l0[rows, f], l1[rows, f], l2[rows, f]], 1)
    return np.where(found, f, -1), bary


def mediapipe_points(detector, image: np.ndarray) -> np.ndarray | None:
    """MediaPipe's 478 points ``[478,2]`` (pixels) of the largest face, or None."""
    faces = detector.find_faces(image)
    return faces[0].mesh[:, :2] if faces else None


def derive(n: int, detector) -> tuple[np.ndarray, dict]:
    """The rest ``(x, y)`` ``[105,2]`` (metres) of SMIRK's points: medians over ``n``
    training renders; and counts."""
    rest: list[np.ndarray] = []
    used = 0
    for image, _, ndc, depth, _, gen in renders("train", n):
        mp = mediapipe_points(detector, image)
        if mp is None:
            continue
        used += 1
        pts = (2 * mp[list(MEDIAPIPE_105)] + 1 - SIZE) / SIZE
        faces = gen.layer.faces.numpy()
        f, bary = back_project(pts, ndc, depth, faces)
        tmpl = gen.layer.v_template.double().numpy()
        p = (tmpl[faces[np.maximum(f, 0)]] * bary[..., None]).sum(1)
        p[f < 0] = np.nan
        rest.append(p)
    stack = np.stack(rest)
    return np.nanmedian(stack[..., :2], axis=0), {"renders": n, "detected": used}


def held_out(n: int, detector) -> dict:
    """Reprojection of the bundled head's embedded points against MediaPipe's on ``n``
    test renders: median and 90th percentile, pixels and fraction of the eye span."""
    err_px, err_iod = [], []
    used = 0
    from train.render.head import project_landmarks

    for image, verts, _, _, camera, gen in renders("test", n):
        mp = mediapipe_points(detector, image)
        if mp is None:
            continue
        used += 1
        with torch.no_grad():
            emb = gen.layer.mediapipe_landmarks(verts)
            ndc = project_landmarks(emb, *camera)[0].double().numpy()
        px = (ndc * SIZE + SIZE - 1) / 2
        target = mp[list(gen.layer.mediapipe_indices)]
        e = np.linalg.norm(px - target, axis=1)
        iod = np.linalg.norm(mp[33] - mp[263])
        err_px.append(e)
        err_iod.append(e / iod)
    e_px, e_iod = np.concatenate(err_px), np.concatenate(err_iod)
    per_point = np.median(np.stack(err_px), axis=0)
    worst = np.argsort(per_point)[::-1][:5]
    return {
        "renders": n,
        "detected": used,
        "median_px": float(np.median(e_px)),
        "p90_px": float(np.percentile(e_px, 90)),
        "median_iod": float(np.median(e_iod)),
        "p90_iod": float(np.percentile(e_iod, 90)),
        "worst_points": {str(gen.layer.mediapipe_indices[k]): float(per_point[k]) for k in worst},
        "per_point_median_px": per_point.tolist(),
    }


def markdown(payload: dict) -> str:
    h = payload["held_out"]
    return (
        "# The stand-in head's MediaPipe embedding\n\n"
        f"Derived from {payload['derived']['detected']} of {payload['derived']['renders']} "
        f"training renders ({SIZE} px, yaw within +-{MAX_YAW:.0f} degrees). On "
        f"{h['detected']} of {h['renders']} held-out renders the embedded points lie "
        f"{h['median_px']:.2f} px from MediaPipe's (median; 90th percentile "
        f"{h['p90_px']:.2f} px), {100 * h['median_iod']:.1f} % of the outer eye-corner "
        f"distance (90th percentile {100 * h['p90_iod']:.1f} %). Worst points (median px): "
        + ", ".join(f"{k}: {v:.1f}" for k, v in h["worst_points"].items())
        + ".\n"
    )


def plot(payload: dict, path: str) -> None:
    from _common.figures import pyplot, save_figure

    plt = pyplot()

    per_point = payload["held_out"]["per_point_median_px"]
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.bar(range(len(per_point)), per_point, color="#4c72b0")
    ax.set_xlabel("embedded point (SMIRK's order: brows, eyes, nose, lips)")
    ax.set_ylabel(f"median error, px of {SIZE}")
    ax.set_title("stand-in MediaPipe embedding vs MediaPipe on held-out renders")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench.standin_mediapipe", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--derive", type=int, default=0, help="training renders to derive from")
    parser.add_argument("--test", type=int, default=24, help="held-out renders")
    parser.add_argument("--print", action="store_true", help="print the derived table")
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from train.faces.mediapipe import MediaPipeDetector

    detector = MediaPipeDetector()
    payload = {**machine_fields(torch.device("cpu"))}
    if args.derive:
        table, counts = derive(args.derive, detector)
        payload["derived"] = counts
        if args.print:
            rows = ", ".join(f"({x:.4f}, {y:.4f})" for x, y in table)
            print(f"REST_XY = ({rows})")
    payload.setdefault("derived", {"renders": 0, "detected": 0})
    payload["held_out"] = held_out(args.test, detector)
    write_results(args.out, "standin_mediapipe", payload, markdown, plot)
    return payload


if __name__ == "__main__":
    main()
