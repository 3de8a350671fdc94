"""The albedo map of a photometric fit: its start and its prior.

One map per capture, ``[T, T, 3]`` linear reflectance in the head's UV layout
(``flame.FLAME.uvs``: ``v = 0`` is the map's top row). It starts uniform at the
capture's mean skin colour (the photo's mean linear colour inside the face,
:func:`mean_skin_colour`) and is held by

    smoothness * sum over neighbouring texels |a_i - a_j|^2
  + 1/2 mean over texels |a - skin|^2 / skin_std^2

The first is a discrete Dirichlet energy, about independent of ``T`` for a smooth map
(so coarse and fine levels agree); the second pulls every texel, and the texels no
frame sees, to the mean skin colour, which also fixes the scale that albedo and
lighting would otherwise trade (``albedo * k`` under ``sh / k`` renders the same).
"""

from __future__ import annotations

import torch

#: the weight of the neighbour differences and the std of the pull to the skin colour
SMOOTHNESS = 2.0
SKIN_STD = 0.25


def mean_skin_colour(photo: torch.Tensor, mask: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Per group, the mean colour ``[G, 3]`` of ``photo [B, R, R, 3]`` (linear) over
    the pixels of ``mask [B, R, R]`` of its frames (``groups [B]`` in ``0..G-1``),
    with the brightest and darkest tenth of each image's face pixels left out
    (highlights, shadows, hair)."""
    n_groups = int(groups.max()) + 1
    sums = photo.new_zeros(n_groups, 3)
    counts = photo.new_zeros(n_groups)
    for i in range(photo.shape[0]):
        pixels = photo[i][mask[i]]
        if len(pixels) == 0:
            continue
        lum = pixels.mean(-1)
        lo, hi = torch.quantile(lum, torch.tensor([0.1, 0.9], dtype=lum.dtype, device=lum.device))
        keep = pixels[(lum >= lo) & (lum <= hi)]
        sums[groups[i]] += keep.sum(0)
        counts[groups[i]] += len(keep)
    return sums / counts.clamp_min(1.0)[:, None]


def albedo_prior(albedo: torch.Tensor, skin: torch.Tensor) -> torch.Tensor:
    """The prior of the module docstring, per map: ``albedo [G, T, T, 3]``,
    ``skin [G, 3]`` -> ``[G]``."""
    dx = (albedo[:, :, 1:] - albedo[:, :, :-1]).square().sum((1, 2, 3))
    dy = (albedo[:, 1:] - albedo[:, :-1]).square().sum((1, 2, 3))
    pull = (albedo - skin[:, None, None, :]).square().sum(-1).mean((1, 2)) / SKIN_STD**2
    return SMOOTHNESS * (dx + dy) + 0.5 * pull
