"""Draw the README's picture of the camera: the bundled head under rho = 0 ... 4.

    python -m tools.rho_sweep [--flame PATH] [--out docs/ppcam_rho_sweep.png]

As rho grows (the camera comes closer) the nose, nearest to the camera, is
magnified relative to the rest of the face, the cheeks and jaw contour bulge and
the ears fall behind it. S is rescaled so that the jaw line keeps its size
(S = 7 (1 + rho z_jaw)), so the picture shows the change of shape, not of size.
Grey dots: the landmarks at rho = 0.
"""

from __future__ import annotations

import argparse

import matplotlib

from _common.figures import save_figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import flame  # noqa: E402
import minirast  # noqa: E402
import ppcam  # noqa: E402

RHOS = (0.0, 0.7, 1.35, 2.95, 4.0)
LABELS = ("orthographic", "1.4 m (wild)", "0.74 m (studio)", "0.34 m (HMC)", "0.25 m (prior)")


def render(layer, rho: float, size: int, yaw: float):
    out = layer(global_pose=torch.tensor([[0.0, yaw, 0.0]]))
    verts = ppcam.flame_to_camera(out.vertices)
    lmk = ppcam.flame_to_camera(out.landmarks)
    centre = lmk.mean(1)
    trans = -centre[:, :2]
    r = torch.tensor([rho])
    jaw_depth = lmk[:, :17, 2].mean(1)
    scale = 7.0 * (1.0 + r * jaw_depth)  # the jaw line keeps its size in the image
    clip = ppcam.to_clip(verts, scale, trans, r)
    frags = minirast.rasterize(clip, layer.faces, (size, size))
    normals = minirast.interpolate(minirast.vertex_normals(verts, layer.faces), frags, layer.faces)
    color = minirast.shade_lambert(
        normals, torch.tensor([0.85, 0.72, 0.62]), (0.3, -0.4, -1.0), ambient=0.35, diffuse=0.65
    )
    color = torch.where((frags.tri_id >= 0)[..., None], color, torch.ones_like(color))
    color = minirast.antialias(color, frags, clip, layer.faces)
    uv = ppcam.project(lmk, scale, trans, r)
    return color[0].clamp(0, 1), (uv[0] + 1) * size / 2 - 0.5


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flame", default="bundled")
    parser.add_argument("--out", default="docs/ppcam_rho_sweep.png")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    layer = flame.FLAME(args.flame, n_shape=0, n_expr=0)
    fig, axes = plt.subplots(2, len(RHOS), figsize=(2.6 * len(RHOS), 5.6))
    with torch.no_grad():
        for row, yaw in enumerate((0.0, 0.6)):
            _, base = render(layer, 0.0, args.size, yaw)
            for ax, rho, label in zip(axes[row], RHOS, LABELS):
                img, lmk = render(layer, rho, args.size, yaw)
                ax.imshow(img.numpy())
                ax.scatter(base[:, 0], base[:, 1], s=4, c="0.5")
                ax.scatter(lmk[:, 0], lmk[:, 1], s=4, c="red")
                if row == 0:
                    ax.set_title(f"rho = {rho:g}\n{label}", fontsize=9)
                ax.axis("off")
    fig.suptitle(
        "ppcam: u = S x / (1 + rho z); camera distance 1/rho above each column; S keeps the "
        "jaw line's size.\nRed: landmarks; grey: the same at rho = 0 (orthographic)",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
