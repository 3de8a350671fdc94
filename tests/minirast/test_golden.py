"""Golden images: normal-shaded, antialiased renders compared with stored PNGs.

Regenerate (and look at them) with ``python -m tests.minirast.golden``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import minirast
from tests.minirast import golden


def _compare(image, name):
    got = minirast.to_uint8_image(image).astype(np.int32)
    want = np.asarray(Image.open(golden.GOLDEN_DIR / name).convert("RGB")).astype(np.int32)
    assert got.shape == want.shape
    diff = np.abs(got - want).max(-1)
    # Float rounding may flip a pixel centre lying on an edge; allow a handful of those.
    assert diff.mean() < 0.5, f"mean abs difference {diff.mean():.3f} levels"
    assert (diff > 8).mean() < 0.002, f"{int((diff > 8).sum())} pixels differ by more than 8"


def test_sphere_golden():
    _compare(golden.render_sphere(), "sphere_normals.png")


def test_head_golden():
    fingerprint = golden.head_fingerprint()
    if fingerprint is None:
        pytest.skip("flame.load_model('bundled') is not available")
    stored = json.loads((golden.GOLDEN_DIR / "head_normals.json").read_text())
    if stored["flame_bundled_fingerprint"] != fingerprint:
        pytest.skip(
            "the bundled stand-in head changed since the golden image was made; "
            "regenerate with `python -m tests.minirast.golden` and look at it"
        )
    _compare(golden.render_head(), "head_normals.png")
