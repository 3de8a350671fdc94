"""The data of a run: every ``(regime, split)`` rendered once and cached under
``<out_dir>/.data/``, plus the ``--folder`` data split into train and test.

Every function takes the run's data section (:class:`~train.data.data_config.DataConfig`)
and ``out_dir``, the folder that holds the runs and their shared ``.data/`` cache."""

from __future__ import annotations

import hashlib
import os

import torch
import torch.distributed as dist

from train.data.batches import Samples
from train.data.data_config import DataConfig
from train.data.folder import load_folder
from train.data.folder_annotate import annotation_cache_dir
from train.data.seeding import seeded
from train.data.shards import load_shards, save_shards
from train.data.sources import FOLDER, SOURCES
from train.data.synthetic import SPLITS, FaceGenerator, generate_split


def data_cache_dir(cfg: DataConfig, out_dir: str) -> str:
    """The cache folder of a run's data, keyed by FLAME model, size, seed and basis sizes."""
    key = f"{cfg.flame}|{cfg.image_size}|{cfg.seed}|{cfg.n_shape}|{cfg.n_expr}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return os.path.join(out_dir, ".data", f"s{cfg.image_size}-{digest}")


def split_size(cfg: DataConfig, split: str) -> int:
    """Samples per regime in ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
    return {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}[split]


def rendered_layout(samples: Samples) -> Samples:
    """``samples`` laid out as :class:`~train.data.synthetic.FaceGenerator` renders them:
    images and masks ``[N,C,H,W]`` channels-last (strides ``(H*W*C, 1, W*C, C)``, a
    permuted ``[N,H,W,C]``), every other tensor contiguous. The bytes of a split are
    the same rendered or read from the cache, but the cache gives ``[N,C,H,W]``
    contiguous, and a layout picks other convolution kernels, with other roundings:
    a run that rendered its data and one that read it (e.g. its resume) would differ
    from step 1 by an ulp, and grow apart."""
    out = {}
    for key, value in samples.items():
        if value.dim() != 4:
            out[key] = value.contiguous()
            continue
        n, c, h, w = value.shape
        strides = (h * w * c, 1, w * c, c)
        if value.stride() != strides:  # compare strides: a mask's C=1 passes either test
            value = torch.empty_strided(value.shape, strides, dtype=value.dtype).copy_(value)
        out[key] = value
    return out


def load_data(cfg: DataConfig, out_dir: str, regimes=None, splits=SPLITS, progress=True) -> dict:
    """``{(regime, split): samples}``, rendered once and cached as safetensors shards
    under ``<out_dir>/.data/`` (keyed by FLAME model, size, seed and basis sizes).
    Rendered or read back, the samples have the same bytes in the same layout
    (:func:`rendered_layout`), so a run trains the same either way."""
    regimes = tuple(regimes or cfg.regimes)
    cache = data_cache_dir(cfg, out_dir)
    distributed = dist.is_available() and dist.is_initialized()
    if distributed and dist.get_rank() != 0:
        dist.barrier()  # rank 0 renders and caches first; the others then read the cache
    generator = None
    out = {}
    for regime in regimes:
        for split in splits:
            n = split_size(cfg, split)
            path = os.path.join(cache, f"{regime}-{split}-n{n}-00000.safetensors")
            if os.path.exists(path):
                out[(regime, split)] = rendered_layout(load_shards([path]))
                continue
            if generator is None:
                generator = FaceGenerator(
                    cfg.flame, cfg.image_size, cfg.n_shape, cfg.n_expr, cfg.seed
                )
            samples = generate_split(generator, regime, split, n, progress=progress)
            save_shards(
                samples,
                cache,
                f"{regime}-{split}-n{n}",
                {"regime": regime, "split": split, "n": n},
                shard_size=n,
            )
            out[(regime, split)] = rendered_layout(samples)
    if distributed and dist.get_rank() == 0:
        dist.barrier()
    if cfg.folder and FOLDER not in regimes:
        out.update(folder_splits(cfg, out_dir, template=next(iter(out.values()), None)))
    return out


def folder_splits(cfg: DataConfig, out_dir: str, template: Samples | None) -> dict:
    """The ``--folder`` data as samples of source ``"folder"``: a seeded hold-out of
    ``folder_test_fraction`` for val/test, the rest for training. Quantities a real
    image does not have (camera, parameters, mask) are NaN / zero."""
    annotate = (
        annotation_cache_dir(out_dir, cfg.folder, cfg.detector) if cfg.folder_annotate else None
    )
    data = load_folder(
        cfg.folder,
        cfg.image_size,
        crop=cfg.folder_crop,
        annotate_cache=annotate,
        detector_name=cfg.detector,
    )
    n = len(data.names)
    n_test = min(n - 1, max(1, round(cfg.folder_test_fraction * n))) if n > 1 else 0
    order = torch.randperm(n, generator=seeded(cfg.seed, "folder", n))
    parts = {"test": order[:n_test], "train": order[n_test:]}
    parts["val"] = parts["test"]
    out = {}
    for split, idx in parts.items():
        if len(idx) == 0:
            continue
        samples = {}
        for key, like in (template or {}).items():
            shape = (len(idx), *like.shape[1:])
            if like.is_floating_point():
                samples[key] = torch.full(shape, float("nan"), dtype=like.dtype)
            else:
                samples[key] = torch.zeros(shape, dtype=like.dtype)
        samples["image"] = data.image[idx]
        samples["landmarks"] = data.landmarks[idx]
        samples["landmarks_noisy"] = data.landmarks[idx]  # real detections are noisy already
        samples["regime"] = torch.full((len(idx),), SOURCES.index(FOLDER))
        samples["index"] = idx
        out[(FOLDER, split)] = samples
    return out
