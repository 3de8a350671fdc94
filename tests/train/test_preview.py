"""``python -m train.data preview``'s grid of samples and their landmarks."""

from __future__ import annotations

from PIL import Image

from _common.figures import MIN_SHORT_SIDE_PX
from train.data.preview import preview_grid
from train.data.synthetic import FaceGenerator


def test_the_preview_shows_each_sample_large_enough(tmp_path):
    samples = FaceGenerator("bundled", size=32, n_shape=10, n_expr=10).generate(
        "hmc", "test", [0, 1, 2]
    )
    out = tmp_path / "preview.png"
    preview_grid(samples, str(out), n=8)  # more than there are: all three
    image = Image.open(out)
    assert min(image.size) >= MIN_SHORT_SIDE_PX
    assert image.size[0] > 2 * image.size[1]  # three panels side by side
