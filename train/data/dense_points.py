"""The synthetic generator's opt-in dense points and irises (``FaceGenerator(dense=True)``).

Per sample: ``"dense" [B,N,2]`` (the model's MediaPipe embedding, SMIRK's 105 points)
and ``"iris" [B,2,5,2]`` (an ``IRIS_MM`` disc at each eye, :mod:`train.render.points`),
clean and with detector-like noise (``"dense_noisy"``, ``"iris_noisy"``: the regime's
landmark noise, isotropic, from a stream of the sample's noise seed disjoint from the
68's, so the 68 points and every other field stay what they are without ``dense``), and
the true iris diameter in the image ``"iris_diameter" [B]`` (NDC).
"""

from __future__ import annotations

import torch

from train.render.head import project_landmarks
from train.render.points import IRIS_MM, PointModel
from train.units import REFERENCE_PIXELS, ndc_per_pixel

#: mixed into a sample's noise seed for the dense points' stream
_STREAM = 0x5BD1E995


def dense_fields(
    points: PointModel, p: dict, noise_px: float, seeds: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The fields of the module docstring for the sample parameters ``p`` (the
    generator's, with its camera ``scale``, ``trans``, ``rho``)."""
    b = p["shape"].shape[0]
    diameter = torch.full((b,), IRIS_MM / 1000)
    dense, iris = points(
        p["shape"], p["expression"], p["global_pose"], p["jaw_pose"], p["eyelids"], diameter
    )
    out: dict[str, torch.Tensor] = {}
    parts = {"iris": iris} if dense is None else {"dense": dense, "iris": iris}
    noise = [torch.Generator().manual_seed(int(s) ^ _STREAM) for s in seeds.tolist()]
    for name, pts in parts.items():
        uv = project_landmarks(pts.reshape(b, -1, 3), p["scale"], p["trans"], p["rho"])
        sigma = noise_px * ndc_per_pixel(REFERENCE_PIXELS)
        eps = torch.stack([torch.randn(uv.shape[1:], generator=g) for g in noise]) * sigma
        shape = (b, 2, 5, 2) if name == "iris" else uv.shape
        out[name] = uv.reshape(shape)
        out[f"{name}_noisy"] = (uv + eps).reshape(shape)
    across = (out["iris"][..., 1, :] - out["iris"][..., 3, :]).norm(dim=-1)
    down = (out["iris"][..., 2, :] - out["iris"][..., 4, :]).norm(dim=-1)
    out["iris_diameter"] = ((across + down) / 2).mean(-1)
    return out
