"""The report's photometric fit row (``python -m train.evaluate --photometric-fit``):
FLAME, the rho camera, an albedo map and SH lighting fitted to the test *images*
(:func:`train.fit.fit_images`), beside the landmark-only fits of
:mod:`train.eval.fit_rows` on the same noisy landmarks.

The regressors' synthetic test images are not photos: per-vertex colour, one
directional light, stored without the sRGB curve. The photometric fit models an albedo
map under SH light in sRGB, so it sees each synthetic test sample re-rendered textured
(:meth:`train.data.textured_faces.TexturedFaceGenerator.generate_textured`: the same
identity, expression, pose, camera and noisy landmarks as the sample, an albedo map,
SH lighting and background of its own). Real images of ``--folder`` data are photos:
they are fitted as they are. Behind a flag because it is slow on a CPU: about 2 s per
96 px image with rho's interval on 2 cores, several per 224 px image.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

import flame
from train.data.batches import Samples
from train.data.sources import REGIMES
from train.data.textured_faces import TexturedFaceGenerator
from train.engine.config import TrainConfig
from train.fit import FitResult, fit_images

#: images per photometric fit call (each image is its own problem; this bounds memory)
CHUNK = 32


def photometric_images(cfg: TrainConfig, samples: Samples, progress: bool = True) -> torch.Tensor:
    """``[N, H, W, 3]`` float sRGB in [0, 1]: what the photometric fit sees of each test
    sample (module docstring): the synthetic ones re-rendered textured by the data's
    generator settings, the folder's photos as stored."""
    d = cfg.data
    images = samples["image"].permute(0, 2, 3, 1).float() / 255.0
    synthetic = samples["regime"] < len(REGIMES)
    if not bool(synthetic.any()):
        return images
    gen = TexturedFaceGenerator(d.flame, d.image_size, d.n_shape, d.n_expr, d.seed)
    todo = synthetic.nonzero()[:, 0]
    bar = tqdm(total=len(todo), desc="textured test images", disable=not progress, leave=False)
    for rid, regime in enumerate(REGIMES):
        rows = todo[samples["regime"][todo] == rid]
        for part in rows.split(CHUNK) if len(rows) else ():
            out = gen.generate_textured(regime, "test", samples["index"][part].tolist())
            if not torch.allclose(out["landmarks"], samples["landmarks"][part], atol=1e-5):
                raise ValueError(
                    f"the textured re-render of {regime} test samples does not match the "
                    "cached samples' landmarks: the data cache was written by other "
                    "generator settings (delete it and evaluate again)"
                )
            images[part] = out["image"].to(images.dtype)
            bar.update(len(part))
    bar.close()
    return images


def fit_photometric(
    cfg: TrainConfig,
    samples: Samples,
    layer: flame.FLAME,
    landmarks: torch.Tensor,
    progress: bool = True,
) -> FitResult:
    """:func:`train.fit.fit_images` of every test sample (:func:`photometric_images`) to
    its ``landmarks [N, 68, 2]`` (the noisy ones the landmark-only rows fit), each image
    its own problem, from the mean face, in chunks of ``CHUNK``; the fits as one
    :class:`FitResult` in the samples' order. A layer without a UV layout is refused
    by the textured generator and by ``fit_images``."""
    images = photometric_images(cfg, samples, progress)
    parts = []
    chunks = list(zip(images.split(CHUNK), landmarks.split(CHUNK), strict=True))
    for image, lmk in tqdm(chunks, desc="photometric fit", unit="chunk", disable=not progress):
        parts.append(fit_images(image, lmk, layer).fit)
    joined = [None if f[0] is None else torch.cat(f) for f in zip(*parts, strict=True)]
    return FitResult(*joined)
