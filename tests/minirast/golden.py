"""Golden renders: a procedural sphere and the bundled stand-in head, normal-shaded.

``python -m tests.minirast.golden`` rewrites the PNGs under ``tests/minirast/golden/``
(look at them before committing).
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np
import torch

import minirast

GOLDEN_DIR = pathlib.Path(__file__).parent / "golden"
SIZE = (160, 160)


def _normal_colours(normals_cam: torch.Tensor) -> torch.Tensor:
    """Camera-frame normals shown the usual normal-map way (x right, y up, z to the viewer)."""
    return minirast.normals_to_rgb(normals_cam * torch.tensor([1.0, -1.0, -1.0]))


def _render(verts_cam, faces, clip, background=0.15):
    frag = minirast.rasterize(clip, faces, SIZE, backend="torch")
    normals = minirast.vertex_normals(verts_cam, faces)
    colour = minirast.interpolate(_normal_colours(normals), frag, faces)
    colour = torch.where(frag.mask[..., None], colour, torch.full_like(colour, background))
    return minirast.antialias(colour, frag, clip, faces)[0]


def render_sphere() -> torch.Tensor:
    """UV sphere (24 x 32) seen in perspective, slightly off-centre. ``[H,W,3]`` in [0,1]."""
    verts, faces = minirast.uv_sphere(24, 32)
    cam = verts * torch.tensor([1.0, -1.0, -1.0]) * 0.5 + torch.tensor([0.05, -0.03, 0.0])
    x, y, z = cam.unbind(-1)
    rho = 1.2
    clip = torch.stack([1.4 * x, 1.4 * y, z, 1 + rho * z], -1)[None]
    return _render(cam, faces, clip)


def head_fingerprint() -> str | None:
    """Hash of the bundled stand-in head's template and faces, or None without flame."""
    try:
        import flame

        model = flame.load_model("bundled")
    except Exception:
        return None
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(np.asarray(model.v_template, dtype=np.float32)).tobytes())
    h.update(np.ascontiguousarray(np.asarray(model.faces, dtype=np.int64)).tobytes())
    return h.hexdigest()[:16]


def render_head() -> torch.Tensor:
    """The bundled stand-in head (template), turned 25 degrees, ppcam camera S=5.5, rho=3."""
    import flame
    import ppcam

    model = flame.load_model("bundled")
    verts = torch.as_tensor(np.asarray(model.v_template), dtype=torch.float32)
    faces = torch.as_tensor(np.asarray(model.faces), dtype=torch.int64)
    a = torch.tensor(25.0 * torch.pi / 180)
    rot = torch.tensor(
        [[torch.cos(a), 0, torch.sin(a)], [0, 1, 0], [-torch.sin(a), 0, torch.cos(a)]]
    )
    cam = ppcam.flame_to_camera(verts @ rot.T)
    cam = cam - torch.tensor([0.0, 0.0, float(cam[:, 2].mean())])
    clip = ppcam.to_clip(cam[None], 5.5, torch.tensor([[0.0, -0.018]]), 3.0)
    return _render(cam, faces, clip)


def main() -> None:
    GOLDEN_DIR.mkdir(exist_ok=True)
    minirast.save_image(render_sphere(), GOLDEN_DIR / "sphere_normals.png")
    fingerprint = head_fingerprint()
    if fingerprint is not None:
        minirast.save_image(render_head(), GOLDEN_DIR / "head_normals.png")
        (GOLDEN_DIR / "head_normals.json").write_text(
            json.dumps({"flame_bundled_fingerprint": fingerprint}, indent=2) + "\n"
        )
    print(f"wrote golden images to {GOLDEN_DIR}")


if __name__ == "__main__":
    main()
