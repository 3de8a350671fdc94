"""Face masking for the neural renderer: SMIRK's, and the paper's change to it.

SMIRK (docs/design.md section 6) blanks the face region (the convex hull of the
landmarks, dilated) of the input image, then copies a sparse set of face pixels
back as guidance, with +-5 % intensity noise and random square dropout patches.
The paper (sec. 4.5.3) erodes the face mask so that nothing near the face
contour is copied back, and masks a disc at the nose so that no nose pixel is
copied back: both are exactly the regions whose size changes with the camera
distance, so the renderer must get them from the rendered geometry.

All sizes in pixels are given at the 224x224 reference resolution (SMIRK's)
and scaled by ``min(H, W) / 224`` (rounded, at least 1 where non-zero), so the
masking looks the same at 64 px as at 224 px. Pass ``reference_size=None`` to
use them as given.

Pure torch, batch-vectorized (no per-pixel Python loop), any device;
deterministic given ``generator``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch.nn import functional as F

from train.models._validate import mask_face_inputs
from train.units import REFERENCE_PIXELS

NOSE_LANDMARKS = tuple(range(27, 36))
"""68-point iBUG indices (0-based) of the nose: bridge 27-30 (tip 30), nostrils 31-35."""
OUTER_EYE_CORNERS = (36, 45)


class MaskResult(NamedTuple):
    """Output of :func:`mask_face`.

    - ``masked [B, 3, H, W]``: the image with ``region`` blanked (zeros) and the
      ``keep`` pixels copied back (with intensity noise), same dtype as the input.
    - ``keep [B, 1, H, W]`` bool: the pixels copied back (after dropout).
    - ``region [B, 1, H, W]`` bool: the blanked region (dilated hull or face mask).
    """

    masked: torch.Tensor
    keep: torch.Tensor
    region: torch.Tensor


def ndc_to_pixels(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """NDC ``[..., 2]`` (x, y) -> pixel coordinates ``(col, row)`` whose integers are pixel centres.

    Inverse of docs/design.md section 2's ``x = (2c + 1) / W - 1``: ``c = ((x + 1) W - 1) / 2``.
    """
    col = ((points[..., 0] + 1.0) * width - 1.0) * 0.5
    row = ((points[..., 1] + 1.0) * height - 1.0) * 0.5
    return torch.stack([col, row], dim=-1)


def convex_hull_mask(
    points: torch.Tensor, height: int, width: int, dilate_px: float = 0.0
) -> torch.Tensor:
    """Rasterize the convex hull of each point set, grown by ``dilate_px``: ``[B, H, W]`` bool.

    ``points [B, N, 2]`` are pixel coordinates (col, row), integer values at
    pixel centres (see :func:`ndc_to_pixels`). A pixel is inside when its centre
    is inside (within 1e-6 px).

    Method (vectorized over the batch, O(B N^2 + B H W)): the directed pair
    (i, j) is a supporting edge when no point lies strictly on its negative
    side, and the hull is the intersection of the supporting half-planes. For
    each point i the candidate j is the extreme direction seen from p_i
    (smallest angle measured from the direction to the centroid); it is kept
    when it passes the supporting test (hull vertices: their outgoing edge;
    interior points: none). A convex region meets each pixel row in one
    interval, computed from the half-planes per row. The four sides
    of the points' bounding box are added (they are supporting lines too).
    Growing moves every half-plane outwards by ``dilate_px``: the result is the
    dilation of the hull with mitred corners clipped by the grown bounding box,
    which contains the Euclidean dilation and exceeds it only near sharp
    corners. Degenerate sets stay bounded: collinear points give their segment
    (zero width before growing), coincident points a single point.
    """
    p = points.to(torch.float64)  # angle and collinearity tests in double precision
    lo, hi = p.amin(dim=1), p.amax(dim=1)  # [B, 2]
    extent = (hi - lo).norm(dim=-1).clamp(min=1.0)[:, None, None]  # [B, 1, 1]
    d = p[:, None, :, :] - p[:, :, None, :]  # d[b, i, j] = p_j - p_i   [B, N, N, 2]
    length = d.norm(dim=-1)
    # candidate outgoing edge of i: the extreme direction seen from p_i, measured from the
    # direction to the centroid (inside the cone of a hull vertex, so no angle wraps around)
    u = p.mean(dim=1, keepdim=True) - p  # [B, N, 2]
    sin = u[:, :, None, 0] * d[..., 1] - u[:, :, None, 1] * d[..., 0]
    cos = u[:, :, None, 0] * d[..., 0] + u[:, :, None, 1] * d[..., 1]
    distinct = length > 1e-9 * extent
    angle = torch.where(distinct, torch.atan2(sin, cos), math.inf)
    j = angle.argmin(dim=2)  # [B, N]
    direction = torch.gather(d, 2, j[..., None, None].expand(-1, -1, 1, 2))[:, :, 0]
    # verify: a supporting edge has no point strictly on its negative side
    cross = direction[:, :, None, 0] * d[..., 1] - direction[:, :, None, 1] * d[..., 0]
    tol = 1e-9 * extent * direction.norm(dim=-1)[..., None]
    has_edge = (cross >= -tol).all(dim=2) & distinct.any(dim=2)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-300)
    # half-plane a . q + c >= 0 with a the unit normal towards the points:
    # d x (q - p_i) = (-d_y) q_x + d_x q_y - (-d_y p_x + d_x p_y)
    ax, ay = -direction[..., 1], direction[..., 0]
    c = -(ax * p[..., 0] + ay * p[..., 1])
    ax, ay = torch.where(has_edge, ax, 0.0), torch.where(has_edge, ay, 0.0)
    c = torch.where(has_edge, c, 1.0)  # no edge from this point: always satisfied
    one, zero = torch.ones_like(lo[:, 0]), torch.zeros_like(lo[:, 0])
    box_a = torch.stack([one, -one, zero, zero], dim=1), torch.stack([zero, zero, one, -one], dim=1)
    box_c = torch.stack([-lo[:, 0], hi[:, 0], -lo[:, 1], hi[:, 1]], dim=1)
    ax, ay = torch.cat([ax, box_a[0]], dim=1), torch.cat([ay, box_a[1]], dim=1)
    c = torch.cat([c, box_c], dim=1) + float(dilate_px) + 1e-6
    # a convex region meets each row in one interval [left, right]: bounds per (row, half-plane)
    rows = torch.arange(height, device=points.device, dtype=torch.float64)
    cols = torch.arange(width, device=points.device, dtype=torch.float64)
    rest = ay[:, :, None] * rows + c[:, :, None]  # [B, E, H]: constraint ax * x + rest >= 0
    a = ax[:, :, None].expand_as(rest)
    bound = -rest / torch.where(a == 0, 1.0, a)
    inf = torch.full_like(bound, math.inf)
    left = torch.where(a > 0, bound, -inf).amax(dim=1)  # [B, H]
    right = torch.where(a < 0, bound, inf).amin(dim=1)
    row_ok = ((a != 0) | (rest >= 0)).all(dim=1)  # horizontal half-planes
    inside = (cols >= left[..., None]) & (cols <= right[..., None]) & row_ok[..., None]
    return inside


def box_any(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """``[B, 1, H, W]`` bool: whether any pixel within Chebyshev distance ``radius`` is set.

    The binary dilation by a (2r+1)x(2r+1) square; pixels outside the image
    count as unset. Separable running sums (cumsum), so the cost does not grow
    with the radius (a max pool of that size is much slower on CPU).
    """
    if radius == 0:
        return mask
    counts = mask.to(torch.int32)
    for dim in (2, 3):
        size = counts.shape[dim]
        padded = F.pad(counts, (0, 0, radius + 1, radius) if dim == 2 else (radius + 1, radius))
        total = padded.cumsum(dim=dim)
        hi = total.narrow(dim, 2 * radius + 1, size)
        lo = total.narrow(dim, 0, size)
        counts = hi - lo
    return counts > 0


def erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary erosion of ``[B, 1, H, W]`` bool by a (2r+1)x(2r+1) square.

    A pixel survives when every pixel within Chebyshev distance ``radius`` that
    lies inside the image is in the mask: the image border does not erode
    (a face cut by the frame has no contour there).
    """
    if radius == 0:
        return mask
    return mask & ~box_any(~mask, radius)


def nose_disc(
    landmarks_px: torch.Tensor, height: int, width: int, nose_radius: float
) -> torch.Tensor:
    """``[B, 1, H, W]`` bool: the disc over the nose, in pixel coordinates.

    Centre: the mean of the nose landmarks 27-35. Radius: the larger of
    ``nose_radius * face_size`` (face_size: geometric mean of the width and the
    height of the 68 landmarks' bounding box) and the farthest nose landmark
    from the centre plus one pixel, so every nose landmark is always inside.
    """
    nose = landmarks_px[:, list(NOSE_LANDMARKS)]
    centre = nose.mean(dim=1)  # [B, 2]
    extent = landmarks_px.amax(dim=1) - landmarks_px.amin(dim=1)
    face_size = (extent[:, 0].clamp(min=0) * extent[:, 1].clamp(min=0)).sqrt()
    spread = (nose - centre[:, None]).norm(dim=-1).amax(dim=1) + 1.0
    radius = torch.maximum(nose_radius * face_size, spread)
    cols = torch.arange(width, device=landmarks_px.device, dtype=landmarks_px.dtype)
    rows = torch.arange(height, device=landmarks_px.device, dtype=landmarks_px.dtype)
    dist = torch.hypot(
        cols[None, None, :] - centre[:, 0, None, None],
        rows[None, :, None] - centre[:, 1, None, None],
    )
    return (dist <= radius[:, None, None])[:, None]


def mask_face(
    image: torch.Tensor,
    face_mask: torch.Tensor,
    landmarks: torch.Tensor,
    *,
    mode: str = "paper",
    keep_fraction: float = 0.01,
    dilate_px: float = 12.0,
    erode_px: float = 10.0,
    nose_radius: float = 0.25,
    noise: float = 0.05,
    dropout_patch: int = 11,
    dropout_rate: float = 0.01,
    reference_size: int | None = REFERENCE_PIXELS,
    generator: torch.Generator | None = None,
) -> MaskResult:
    """Blank the face and copy a few face pixels back (SMIRK; the paper's variant).

    Args:
        image: ``[B, 3, H, W]`` floating point, values in [0, 1].
        face_mask: ``[B, 1, H, W]`` bool, or float (> 0.5 is face): the pixels
            covered by the face (e.g. the rendered face's coverage).
        landmarks: ``[B, 68, 2]`` iBUG landmarks in NDC (docs/design.md section 2: x, y in
            [-1, 1], y down, pixel centre ``(2c + 1) / W - 1``).
        mode: ``"smirk"``: copied-back pixels may be anywhere on ``face_mask``.
            ``"paper"``: only on ``face_mask`` eroded by ``erode_px`` and outside
            the nose disc (:func:`nose_disc`).
        keep_fraction: number of pixels copied back, as a fraction of the
            number of ``face_mask`` pixels of that image (the whole face mask,
            before erosion and the nose disc): ``k = round(keep_fraction *
            face_mask.sum())`` pixels, drawn uniformly without replacement from
            the allowed pixels (all of them if fewer than k are allowed). So
            "1 %" means 1 % of the face's pixels in both modes; in "paper" mode
            they are concentrated on the allowed part. Dropout then removes
            some of the k.
        dilate_px: growth of the landmarks' convex hull (mitred offset of its
            edges), pixels at 224 px (SMIRK: 10-15).
        erode_px: erosion of the face mask in "paper" mode (square structuring
            element, so every kept pixel is at Chebyshev distance > erode_px
            from any non-face pixel inside the image), pixels at 224 px.
        nose_radius: radius of the nose disc as a fraction of the face size
            (geometric mean of the landmarks' bounding-box width and height;
            0.25 covers the nose of a frontal face, about 3.5 cm of 14 cm), and
            never less than the nose landmarks' spread. Not scaled (relative).
        noise: copied-back pixels are multiplied by a factor uniform in
            ``[1 - noise, 1 + noise]`` (one factor per pixel, all channels),
            then clamped to [0, 1].
        dropout_patch: side of the square dropout patches, pixels at 224 px
            (scaled, made odd).
        dropout_rate: probability that a pixel is a dropout patch centre at
            224 px with ``dropout_patch`` (SMIRK: 0.01 with 11x11, removing
            ``1 - 0.99**121``, about 70 %, of the kept points). At other sizes
            the centre probability is adjusted so that this removed fraction
            stays the same. 0 disables dropout.
        reference_size: the resolution at which the pixel sizes are given;
            ``None`` uses them unscaled.
        generator: a ``torch.Generator`` for determinism, on any device (a CPU
            generator with CUDA images draws on the CPU: the same masks as on CPU).

    Returns:
        :class:`MaskResult` ``(masked, keep, region)``. ``region`` is the convex
        hull of the 68 landmarks grown by ``dilate_px``, union ``face_mask``.
    """
    checked = mask_face_inputs(
        image,
        face_mask,
        landmarks,
        mode=mode,
        keep_fraction=keep_fraction,
        dilate_px=dilate_px,
        erode_px=erode_px,
        nose_radius=nose_radius,
        noise=noise,
        dropout_patch=dropout_patch,
        dropout_rate=dropout_rate,
        reference_size=reference_size,
        generator=generator,
    )
    image, face_mask, landmarks = checked.image, checked.face_mask, checked.landmarks
    keep_fraction, noise, dropout_rate = checked.keep_fraction, checked.noise, checked.dropout_rate
    dilate, erode_radius, patch = checked.dilate, checked.erode_radius, checked.patch
    batch, _, height, width = image.shape

    device = image.device
    # random numbers are drawn on the generator's device (a CPU generator with CUDA images
    # gives the same masks as on the CPU), then moved to the image's device
    draw_device = device if generator is None else generator.device

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=draw_device).to(device)

    face = face_mask if face_mask.dtype == torch.bool else face_mask > 0.5
    lm_px = ndc_to_pixels(landmarks.to(torch.float32), height, width)
    hull = convex_hull_mask(lm_px, height, width, dilate)[:, None]
    region = hull | face

    if mode == "smirk":
        allowed = face
    else:
        allowed = erode(face, erode_radius) & ~nose_disc(lm_px, height, width, nose_radius)

    # exactly k = round(keep_fraction * |face|) allowed pixels, uniformly without replacement:
    # the k largest of iid uniform scores (not-allowed pixels score -1). k <= k_bound, a
    # static bound, so no device synchronization is needed.
    n_face = face.flatten(1).sum(dim=1)
    k = torch.round(keep_fraction * n_face.to(torch.float64)).to(torch.long)
    k_bound = min(height * width, math.ceil(keep_fraction * height * width))
    score = uniform(batch, height * width)
    score = torch.where(allowed.flatten(1), score, -1.0)
    top, index = torch.topk(score, k_bound, dim=1)  # sorted, largest first
    chosen = (torch.arange(k_bound, device=device) < k[:, None]) & (top >= 0)
    keep = torch.zeros(batch, height * width, dtype=torch.bool, device=device)
    keep = keep.scatter(1, index, chosen)
    keep = keep.view(batch, 1, height, width)

    factor_noise = 1.0 + noise * (2.0 * uniform(batch, 1, height, width) - 1.0)
    if dropout_rate > 0:
        removed = 1.0 - (1.0 - dropout_rate) ** (dropout_patch**2)
        centre_p = 1.0 - (1.0 - removed) ** (1.0 / patch**2)
        centres = uniform(batch, 1, height, width) < centre_p
        dropped = box_any(centres, patch // 2)
        keep = keep & ~dropped

    noisy = (image * factor_noise.to(image.dtype)).clamp(0.0, 1.0)
    masked = torch.where(keep, noisy, torch.where(region, torch.zeros_like(image), image))
    return MaskResult(masked, keep, region)
