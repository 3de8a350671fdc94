"""Textured synthetic heads, opt-in: ground truth for the photometric fit (``train.fit``).

:class:`TexturedFaceGenerator` is a :class:`train.data.synthetic.FaceGenerator` whose
extra methods draw the same samples (the same shape, expression, pose, camera and
landmarks for the same identity) with an albedo map in the head's UV layout and SH
lighting instead of per-vertex colour and one directional light. The default data are
untouched: :meth:`FaceGenerator.generate` and its kin never call this module.

The albedo map of an identity (a single image, or a capture's subject) is linear
reflectance ``[T, T, 3]``: a skin tone drawn from light to dark with a hue jitter, a
smooth blotchy variation, redder cheeks, darker brows, red lips, pale eyes with dark
irises, and fine per-texel grain; the features are placed at the UVs of the head's own
landmarks (:func:`landmark_uvs`). Lighting is SH (``[9, 3]`` per frame, camera frame):
ambient 0.45-0.75, a directional part of 0.2-0.45 from the front half-space, a little of
band 2 and a colour tint. Renders are linear, mipmapped, antialiased, composited over
:func:`train.data.synthetic.textured_background` and converted to sRGB, quantised to
8 bits as a camera would store them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from train.data.seeding import seeded
from train.data.synthetic import (
    FaceGenerator,
    capture_parameters,
    regime_spec,
    sample_parameters,
    textured_background,
)
from train.render.textured import linear_to_srgb, polygon_mask, render_textured, srgb_to_linear

#: the SH band-0 coefficient of unit irradiance (minirast.sh_basis)
SH_UNIT = math.sqrt(4 * math.pi)
#: skin tones (sRGB) at the light and the dark end of the range drawn
LIGHT_SKIN, DARK_SKIN = (0.92, 0.75, 0.64), (0.36, 0.23, 0.17)


def landmark_uvs(layer) -> torch.Tensor:
    """The UVs ``[68, 2]`` of the layer's static landmarks 17-67 (rows 0-16, the jaw's
    dynamic contour, are the front bins' faces): where features go on the map."""
    faces = layer.uv_faces[layer.static_lmk_faces_idx]  # [51, 3]
    static = (layer.uvs[faces] * layer.static_lmk_bary_coords[..., None]).sum(1)
    front = layer.dynamic_lmk_faces_idx[layer.dynamic_lmk_faces_idx.shape[0] // 2]
    mid = layer.dynamic_lmk_bary_coords[layer.dynamic_lmk_faces_idx.shape[0] // 2]
    jaw = (layer.uvs[layer.uv_faces[front]] * mid[..., None]).sum(1)
    return torch.cat([jaw, static]).float()


def _smooth_noise(g: torch.Generator, cells: int, size: int, channels: int) -> torch.Tensor:
    low = torch.randn(1, channels, cells, cells, generator=g)
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)[0]


def albedo_map(uv_landmarks: torch.Tensor, g: torch.Generator, size: int) -> torch.Tensor:
    """One identity's albedo map ``[size, size, 3]`` linear (module docstring), drawn
    from ``g``; ``uv_landmarks [68, 2]`` place its features."""
    tone = float(torch.rand(1, generator=g))
    light, dark = torch.tensor(LIGHT_SKIN), torch.tensor(DARK_SKIN)
    skin = light + (dark - light) * tone
    skin = skin * (1 + 0.06 * (torch.rand(3, generator=g) - 0.5))
    base = srgb_to_linear(skin.clamp(0, 1))[:, None, None]  # [3, 1, 1]
    tex = base * (1 + 0.12 * _smooth_noise(g, 6, size, 1) + 0.05 * _smooth_noise(g, 24, size, 3))
    ndc = uv_landmarks[None] * 2 - 1

    def paint(points: torch.Tensor, colour: torch.Tensor, growth: float = 1.0, soft: int = 3):
        centre = points.mean(0, keepdim=True)
        poly = (centre + growth * (points - centre))[None]
        mask = polygon_mask(poly, size).float()[None]  # [1, 1, T, T]
        mask = F.avg_pool2d(mask, 2 * soft + 1, 1, soft, count_include_pad=False)[0]
        return tex * (1 - mask) + colour[:, None, None] * mask

    lips = base * torch.tensor([1.4, 0.45, 0.5]) * (0.8 + 0.3 * float(torch.rand(1, generator=g)))
    brows = base * (0.25 + 0.2 * float(torch.rand(1, generator=g)))
    for brow in (list(range(17, 22)), list(range(22, 27))):
        pts = ndc[0, brow]
        band = torch.cat(
            [pts + torch.tensor([0.0, -0.018]), pts.flip(0) + torch.tensor([0, 0.018])]
        )
        tex = paint(band, brows[:, 0, 0])
    for cheek in (ndc[0, [1, 2, 31, 40]], ndc[0, [15, 14, 35, 47]]):
        red = base[:, 0, 0] * torch.tensor([1.12, 0.92, 0.92])
        tex = paint(cheek, red, growth=0.8, soft=max(2, size // 40))
    tex = paint(ndc[0, 48:60], lips[:, 0, 0], soft=2)
    for eye in (list(range(36, 42)), list(range(42, 48))):
        tex = paint(ndc[0, eye], torch.tensor([0.75, 0.72, 0.70]), growth=1.1, soft=1)
        iris = ndc[0, eye].mean(0) + 0.012 * torch.tensor(
            [[1.0, 0], [0.5, 0.87], [-0.5, 0.87], [-1, 0], [-0.5, -0.87], [0.5, -0.87]]
        )
        tex = paint(iris, torch.tensor([0.05, 0.035, 0.02]), soft=1)
    grain = 1 + 0.04 * torch.randn(1, size, size, generator=g)
    return (tex * grain).clamp(0.01, 1.0).permute(1, 2, 0).contiguous()


def sh_lighting(g: torch.Generator) -> torch.Tensor:
    """One frame's SH lighting ``[9, 3]`` (module docstring), drawn from ``g``."""
    sh = torch.zeros(9, 3)
    ambient = 0.45 + 0.3 * float(torch.rand(1, generator=g))
    d = torch.randn(3, generator=g)
    d[2] = -abs(float(d[2])) - 0.5  # from the front half-space (towards the camera)
    d = d / d.norm()
    strength = 0.2 + 0.25 * float(torch.rand(1, generator=g))
    tint = 1 + 0.15 * (torch.rand(3, generator=g) - 0.5)
    sh[0] = SH_UNIT * ambient
    sh[1:4] = strength * torch.stack([d[1], d[2], d[0]])[:, None] * SH_UNIT / math.sqrt(3)
    sh[4:] = 0.08 * torch.randn(5, 1, generator=g)
    return sh * tint


class TexturedFaceGenerator(FaceGenerator):
    """:class:`FaceGenerator` with textured renders (module docstring); ``texture_size``
    is the albedo maps' side."""

    def __init__(self, *args, texture_size: int = 256, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.layer.has_uvs:
            raise ValueError("textured samples need a FLAME layer with a UV layout")
        self.texture_size = texture_size
        self._uv_landmarks = landmark_uvs(self.layer)

    @torch.no_grad()
    def generate_textured(self, regime: str, split: str, indices: list[int]) -> dict:
        """Samples ``indices`` of ``(regime, split)``: the truth of :meth:`generate`
        (same identities) plus ``image [B, H, W, 3]`` float sRGB in [0, 1], ``mask``,
        ``albedo [B, T, T, 3]`` (linear) and ``sh [B, 9, 3]``."""
        spec = regime_spec(regime, split)
        params = [
            sample_parameters(spec, self.seed, split, i, self.n_shape, self.n_expr) for i in indices
        ]
        identities = [f"{split}/image/{i}" for i in indices]
        lights = [f"{split}/image/{i}" for i in indices]
        return self._textured(spec, params, indices, identities, lights)

    @torch.no_grad()
    def generate_textured_capture(
        self, regime: str, split: str, sequence: int, frames: list[int]
    ) -> dict:
        """Frames of capture ``sequence`` (:meth:`generate_capture`'s identities), one
        albedo map for the capture's subject, lighting per frame; as
        :meth:`generate_textured` plus ``"sequence"``."""
        spec = regime_spec(regime, split)
        params = [
            capture_parameters(spec, self.seed, split, sequence, f, self.n_shape, self.n_expr)
            for f in frames
        ]
        identities = [f"{split}/capture/{sequence}"] * len(frames)
        lights = [f"{split}/capture/{sequence}/{f}" for f in frames]
        out = self._textured(spec, params, frames, identities, lights)
        out["sequence"] = torch.full((len(frames),), sequence)
        return out

    def _textured(self, spec, params, indices, identities, lights) -> dict:
        sample = self._make(spec, params, indices, render=False)
        maps = {}
        for ident in dict.fromkeys(identities):
            g = seeded(self.seed, spec.name, "albedo", ident)
            maps[ident] = albedo_map(self._uv_landmarks, g, self.texture_size)
        albedo = torch.stack([maps[i] for i in identities])
        sh = torch.stack([sh_lighting(seeded(self.seed, spec.name, "light", k)) for k in lights])
        p = {k: torch.stack([q[k] for q in params]) for k in ("background_seed",)}
        background = textured_background(p["background_seed"][:, 0], self.size)
        background = srgb_to_linear(background.permute(0, 2, 3, 1))
        out = self.layer(
            shape=sample["shape"],
            expression=sample["expression"],
            global_pose=sample["global_pose"],
            jaw_pose=sample["jaw_pose"],
            eyelids=sample["eyelids"] if self.layer.has_eyelids else None,
        )
        rendered = render_textured(
            self.layer,
            out.vertices,
            sample["scale"],
            sample["trans"],
            sample["rho"],
            albedo,
            sh,
            background,
            self.size,
            mipmapped=True,
        )
        image = (linear_to_srgb(rendered.image) * 255).round() / 255
        return {**sample, "image": image, "mask": rendered.covered, "albedo": albedo, "sh": sh}
