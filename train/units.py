"""Units and landmark groups that the whole ``train`` package shares: the 224 px
reference resolution and the landmark-error unit, each named once."""

from __future__ import annotations

#: SMIRK's input resolution. Pixel sizes (masking, detector noise) are given at this
#: size, and the report also gives landmark errors in pixels of a 224 x 224 image.
REFERENCE_PIXELS = 224

#: The paper's table 1 unit: landmark errors are mean squared NDC distances x 1e4.
LANDMARK_UNIT = 1e4

#: Landmark indices (68-point iBUG order): 0-16 jaw line, 17-67 the rest.
JAW = slice(0, 17)
OTHER = slice(17, 68)


def ndc_per_pixel(size: int) -> float:
    """The NDC length of one pixel of a ``size``-pixel-wide image (NDC spans 2)."""
    return 2.0 / size
