"""What the photometric fit compares: the photo resampled into the render's frame (each
face's window), the masks that say which pixels count, and the background behind the
silhouette band (the render itself: :mod:`train.render.textured`).

Frames and colours:

- The variables and landmarks live on the centred square of side ``s = max(W, H)`` of
  the photo, in the NDC of :mod:`train.fit.inputs` (the frame ``fit_landmarks``
  takes). What is rendered and compared is each image's face window
  (:func:`face_window`: a square ``(cx, cy, h)`` of that NDC around the target
  landmarks, inside the square, fixed for the fit), at ``R x R`` pixels with
  minirast's pixel centres ``(2c + 1) / R - 1`` in the window's NDC ``(u - c) / h``
  (:func:`train.render.textured.to_window`), so a small face in a large photo still
  fills the render. The part of the window outside the photo (the square's padding,
  or beyond the square for a window given explicitly) has no data:
  :func:`photo_in_square` returns it as an invalid pixel (``valid = False``) and the
  objective ignores it. The masks (:func:`skin_masks`, :func:`band_background`) take
  landmarks in the render's NDC: the target landmarks mapped by ``to_window``.
- Photos arrive in sRGB; the renderer shades in linear light (:func:`srgb_to_linear`),
  albedo maps are linear, and images are converted back (:func:`linear_to_srgb`) only
  for output and for the PSNR.
- Lighting is order-2 spherical harmonics (``minirast.shade_sh``, 9 x 3 per image) on
  the camera-frame normals (OpenCV: x right, y down, z forward; a face towards the
  camera has ``n_z < 0``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from train.render.textured import check_window, pixel_centres, polygon_mask

#: iBUG indices: the jaw line, the brows, the eyes, the inner lip contour
JAW_LINE = list(range(0, 17))
BROWS_RIGHT_TO_LEFT = list(range(26, 16, -1))
EYES = (list(range(36, 42)), list(range(42, 48)))
INNER_MOUTH = list(range(60, 68))
#: the brows are lifted by this fraction of the chin-to-nose-bridge vector (the forehead)
FOREHEAD_LIFT = 0.2
#: the eye and inner-mouth polygons are grown about their centres by these factors
EYE_GROWTH, MOUTH_GROWTH = 1.5, 1.15
#: the band outside the face polygon (where the silhouette lies) grows it by this factor;
#: the part the head must cover shrinks it by this one (landmark noise)
SILHOUETTE_BAND, COVERED_CORE = 1.12, 0.92
#: the background behind the band is filled in from outside it over this share of the
#: render's side (two box-filter passes of this radius)
FILL_RADIUS = 0.04
#: the face window's side is the target landmarks' box's longer side times this
WINDOW_MARGIN = 2.0


def face_window(landmarks: torch.Tensor, margin: float = WINDOW_MARGIN) -> torch.Tensor:
    """``[B, 3]`` (cx, cy, half side), the square's NDC: the square window around the
    box of the landmarks ``[B, N, 2]`` (NDC), of side the box's longer side times
    ``margin``, centred on the box but moved inside the square where it would reach
    beyond it, and the whole square (0, 0, 1) when it is larger (a face that fills the
    photo): pixels beyond the square hold no photo, so they would only cost resolution.
    The box's part inside the square is always inside the window."""
    lo, hi = landmarks.amin(-2), landmarks.amax(-2)
    half = ((hi - lo).amax(-1, keepdim=True).clamp_min(1e-3) * (margin / 2)).clamp_max(1.0)
    centre = torch.maximum(torch.minimum((lo + hi) / 2, 1 - half), half - 1)
    return torch.cat([centre, half], -1)


def photo_in_square(
    images: torch.Tensor, size: int, window: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The photos ``[B, H, W, 3]`` resampled onto the ``size`` render of their centred
    square, or of each image's ``window [B, 3]`` of it (:func:`face_window`):
    ``(pixels [B, size, size, 3], valid [B, size, size] bool)``.

    Area-averaged to about the render's pixel size first (no aliasing), then sampled
    bilinearly at the render's pixel centres; ``valid`` is false where the centre falls
    outside the photo (the padding of a non-square photo, or a window beyond the
    square), whose pixels are zero.
    """
    b, h, w, _ = images.shape
    side = max(h, w)
    centres = pixel_centres(size, images.device, images.dtype)
    to_photo = torch.tensor([side / w, side / h], device=images.device, dtype=images.dtype)
    if window is None:
        window = images.new_tensor([0.0, 0.0, 1.0]).expand(b, 3)
    check_window(window, b)
    window = window.to(images.dtype)
    out = []
    for k in range(b):  # each window has its own scale, so its own area filter
        half = float(window[k, 2])
        x = images[k : k + 1].permute(0, 3, 1, 2)
        small = (max(1, round(h * size / (side * half))), max(1, round(w * size / (side * half))))
        if small[0] < h:
            x = F.interpolate(x, size=small, mode="area")
        grid = (centres * window[k, 2] + window[k, :2]) * to_photo
        out.append(F.grid_sample(x, grid[None], mode="bilinear", align_corners=False))
    pixels = torch.cat(out).permute(0, 2, 3, 1)
    grid = (centres[None] * window[:, None, None, 2:] + window[:, None, None, :2]) * to_photo
    return pixels, (grid.abs() < 1).all(-1)


def _grown(points: torch.Tensor, factor: float) -> torch.Tensor:
    centre = points.mean(-2, keepdim=True)
    return centre + factor * (points - centre)


def face_polygon(landmarks: torch.Tensor) -> torch.Tensor:
    """``[B, 27, 2]``: the jaw line, then the brows lifted onto the forehead."""
    lift = FOREHEAD_LIFT * (landmarks[:, 27] - landmarks[:, 8])[:, None]
    return torch.cat([landmarks[:, JAW_LINE], landmarks[:, BROWS_RIGHT_TO_LEFT] + lift], 1)


def skin_masks(landmarks: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """From the target landmarks ``[B, 68, 2]`` (the render's NDC): ``(inside, compared)``, both
    ``[B, size, size]`` bool. ``inside``: the face polygon (:func:`face_polygon`)
    shrunk by ``COVERED_CORE``, which the head must cover; ``compared``: that polygon
    grown by ``SILHOUETTE_BAND`` (the cheeks' and jaw's silhouette), less the eyes
    and the mouth's interior, where the render is compared with the photo."""
    face = face_polygon(landmarks)
    inside = polygon_mask(_grown(face, COVERED_CORE), size)
    compared = polygon_mask(_grown(face, SILHOUETTE_BAND), size)
    for part, growth in ((EYES[0], EYE_GROWTH), (EYES[1], EYE_GROWTH), (INNER_MOUTH, MOUTH_GROWTH)):
        compared &= ~polygon_mask(_grown(landmarks[:, part], growth), size)
    return inside, compared


def band_background(
    photo: torch.Tensor, landmarks: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """What the photo would show behind the head in the silhouette band: ``[B, R, R, 3]``
    (``landmarks [B, 68, 2]`` in the render's NDC),
    the photo itself outside the grown face polygon (:func:`skin_masks`), and inside it
    the photo's pixels outside the polygon spread inwards (normalised box filtering,
    radius ``FILL_RADIUS`` of the side, twice); pixels that filling does not reach
    (the face's core, covered by the head anyway) keep the photo.

    Uncovered band pixels are compared with this, not with the photo itself, so the
    silhouette counts both ways: a head that covers background pays, and so does a
    head that leaves face pixels of the band uncovered (they differ from the
    background around them)."""
    size = photo.shape[1]
    outside = ~polygon_mask(_grown(face_polygon(landmarks), SILHOUETTE_BAND), size) & valid
    r = max(1, round(FILL_RADIUS * size))
    x = (photo * outside[..., None]).permute(0, 3, 1, 2)
    w = outside[:, None].to(photo.dtype)
    for _ in range(2):
        x = F.avg_pool2d(x, 2 * r + 1, 1, r, count_include_pad=True)
        w = F.avg_pool2d(w, 2 * r + 1, 1, r, count_include_pad=True)
    filled = (x / w.clamp_min(1e-6)).permute(0, 2, 3, 1)
    reached = (w[:, 0] > 1e-3) & ~outside
    return torch.where(reached[..., None], filled, photo)
