"""Contact sheet of a FLAME-format head with its landmarks (matplotlib only).

    python -m flame.contact_sheet [-o docs/flame/standin_contact_sheet.png] [--flame PATH]
        [--flame-landmarks FILE [FILE]]

Each panel is a pinhole view from 0.6 m (so the perspective of a close-up
camera shows), painted back to front with Lambert shading; the 68 landmarks
are drawn on top (jaw contour yellow, the rest red). Panels: neutral views
(front, three-quarter, profile), shape extremes, expressions, a yaw sweep.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from _common.figures import pyplot, save_figure

from .cli import add_flame_arguments, model_from_args
from .io import mode_names
from .layer import FLAME
from .model import FlameModel

DISTANCE = 0.6  # metres from the camera to the model origin
FOCAL = 7.5  # image half-height / focal length ratio -> a tight head crop


def _albedo(model: FlameModel) -> np.ndarray:
    v = model.v_template
    col = np.tile(np.array([0.86, 0.68, 0.57]), (len(v), 1))
    masks = model.masks
    if "lips" in masks:
        col[masks["lips"]] = [0.78, 0.45, 0.44]
    if "mouth_interior" in masks:
        col[masks["mouth_interior"]] = [0.28, 0.08, 0.09]
    for side in ("left", "right"):
        key = f"{side}_eyeball"
        if key not in masks:
            continue
        idx = masks[key]
        centre = model.J_regressor[3 if side == "left" else 4] @ v
        d = v[idx] - centre
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        col[idx] = [0.95, 0.94, 0.92]
        col[idx[d[:, 2] > 0.88]] = [0.30, 0.36, 0.50]
        col[idx[d[:, 2] > 0.97]] = [0.05, 0.05, 0.06]
    return col


def render_panel(ax, vertices, faces, albedo, landmarks=None, title: str = "") -> None:
    """Paint one posed mesh (model frame, metres) into a matplotlib axis."""
    from matplotlib.collections import PolyCollection

    v = np.asarray(vertices, dtype=np.float64)
    depth = DISTANCE - v[:, 2]
    uv = FOCAL * v[:, :2] / depth[:, None]
    tri = v[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
    centre = tri.mean(1)
    to_cam = np.array([0.0, 0.0, DISTANCE]) - centre
    front = (n * to_cam).sum(1) > 0
    light = np.array([-0.35, 0.45, 0.82])
    light /= np.linalg.norm(light)
    vn = np.zeros_like(v)  # smooth (per-vertex) shading, averaged over each face
    for k in range(3):
        np.add.at(vn, faces[:, k], n)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-20)
    shade = 0.25 + 0.75 * np.clip(vn @ light, 0.0, 1.0)
    col = (albedo * shade[:, None])[faces].mean(1)
    order = np.argsort(-(DISTANCE - centre[:, 2]))
    order = order[front[order]]
    polys = uv[faces[order]]
    pc = PolyCollection(polys, facecolors=np.clip(col[order], 0, 1), edgecolors="none")
    pc.set_antialiased(False)
    ax.add_collection(pc)
    if landmarks is not None:
        lm = np.asarray(landmarks, dtype=np.float64)
        lm_uv = FOCAL * lm[:, :2] / (DISTANCE - lm[:, 2:3])
        ax.scatter(lm_uv[:17, 0], lm_uv[:17, 1], s=5, c="#ffd400", zorder=3, linewidths=0)
        ax.scatter(lm_uv[17:, 0], lm_uv[17:, 1], s=5, c="#e8141c", zorder=3, linewidths=0)
    lim = 0.22 * FOCAL / DISTANCE * 0.8
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim * 1.12, lim * 0.88)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_facecolor("#d9dde3")
    ax.set_title(title, fontsize=8)


def _mode_index(model: FlameModel, kind: str, name: str) -> int | None:
    names = mode_names(model, kind)
    return names.index(name) if name in names else None


def panels(model: FlameModel) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """(title, FLAME inputs) of each panel."""

    def yaw(deg: float) -> torch.Tensor:
        return torch.tensor([[0.0, np.radians(deg), 0.0]])

    def coeffs(kind: str, name: str, value: float, size: int) -> torch.Tensor | None:
        i = _mode_index(model, kind, name)
        if i is None:
            return None
        c = torch.zeros(1, size)
        c[0, i] = value
        return c

    n_s, n_e = min(model.n_shape, 300), min(model.n_expr, 100)
    out: list[tuple[str, dict[str, torch.Tensor]]] = [
        ("neutral", {}),
        ("neutral, yaw 35", {"global_pose": yaw(35)}),
        ("neutral, profile", {"global_pose": yaw(90)}),
        ("neutral, from below", {"global_pose": torch.tensor([[-0.45, 0.35, 0.0]])}),
    ]
    for name in ("head_size", "face_width", "nose_size", "jaw_width"):
        for sign in (-3, 3):
            c = coeffs("shape", name, sign, n_s)
            if c is not None:
                pose = yaw(40) if name == "nose_size" else yaw(0)
                out.append((f"{name} {sign:+d} sd", {"shape": c, "global_pose": pose}))
    out.append(("jaw open 0.35 rad", {"jaw_pose": torch.tensor([[0.35, 0.0, 0.0]])}))
    for name, value in (("smile", 3), ("brow_raise", 3), ("mouth_open", 3), ("lip_pucker", 3)):
        c = coeffs("expression", name, value, n_e)
        if c is not None:
            out.append((f"{name} +{value}", {"expression": c}))
    if model.has_eyelids:
        out.append(("eyelids closed", {"eyelids": torch.ones(1, 2)}))
    out.append(("eyes turned left", {"eye_pose": torch.tensor([[0.0, 0.35, 0.0] * 2])}))
    for deg in (-40, -20, 20, 40):
        out.append((f"yaw {deg:+d}", {"global_pose": yaw(deg)}))
    return out


def make_contact_sheet(model: FlameModel, path: str | Path, columns: int = 6) -> Path:
    """Render the panels of :func:`panels` into one PNG."""
    plt = pyplot()

    layer = FLAME(model)
    albedo = _albedo(model)
    faces = model.faces
    items = panels(model)
    rows = (len(items) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.5 * rows), dpi=110)
    for ax in axes.ravel()[len(items) :]:
        ax.axis("off")
    with torch.no_grad():
        for ax, (title, kwargs) in zip(axes.ravel(), items):
            out = layer(**kwargs)
            lm = out.landmarks[0].numpy() if out.landmarks is not None else None
            render_panel(ax, out.vertices[0].numpy(), faces, albedo, lm, title)
    name = model.metadata.get("name", "FLAME model")
    fig.suptitle(f"{name}: pinhole view from {DISTANCE} m, landmarks (contour yellow)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flame.contact_sheet", description=__doc__)
    parser.add_argument("-o", "--output", default="docs/flame/standin_contact_sheet.png")
    add_flame_arguments(parser)
    args = parser.parse_args(argv)
    model = model_from_args(args)
    print(make_contact_sheet(model, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
