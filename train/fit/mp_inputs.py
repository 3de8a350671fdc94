"""MediaPipe's points for ``python -m train.fit --points dense|both`` or ``--iris-mm``:
``<stem>.mp.npy`` (``[478, 3]`` float32, 0-based source pixels, written by
``python -m train.landmarks`` beside ``<stem>.pts``), taken to the NDC of
:mod:`train.fit.inputs`: the layer's embedded points ``[N, 2]`` and the irises
``[2, 5, 2]`` (:mod:`train.fit.dense`)."""

from __future__ import annotations

import os

import numpy as np
import torch

from flame.mediapipe_embedding import IRIS_POINTS, N_MEDIAPIPE
from train.fit.inputs import FitInput, pixels_to_ndc


def mp_file(item: FitInput) -> str:
    """The ``.mp.npy`` that goes with ``item`` (its result stem, beside its image)."""
    stem = item.name or os.path.splitext(os.path.basename(item.path))[0]
    return os.path.join(os.path.dirname(item.path), f"{stem}.mp.npy")


def read_mediapipe(path: str, item: FitInput, indices: list[int]) -> tuple[torch.Tensor, ...]:
    """``(dense [N,2], iris [2,5,2])`` in NDC from ``path``; ``ValueError`` if the file is
    not ``[478, 3]`` finite numbers."""
    points = np.load(path, allow_pickle=False)
    if points.shape != (N_MEDIAPIPE, 3) or points.dtype.kind != "f":
        raise ValueError(f"expected [{N_MEDIAPIPE}, 3] floats, got {points.dtype} {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("holds NaN or inf")
    ndc = torch.from_numpy(pixels_to_ndc(points[:, :2].astype(np.float64), *item.size)).float()
    iris = ndc[torch.tensor(IRIS_POINTS).reshape(-1)].reshape(2, 5, 2)
    return ndc[indices], iris


def with_mediapipe(
    items: list[FitInput], indices: list[int]
) -> tuple[list[FitInput], torch.Tensor, torch.Tensor, list[tuple[str, str]]]:
    """The items that have a readable ``.mp.npy``, their dense points ``[B,N,2]`` and
    irises ``[B,2,5,2]``, and ``(path, reason)`` for those left out."""
    kept, dense, iris, skipped = [], [], [], []
    for item in items:
        path = mp_file(item)
        if not os.path.isfile(path):
            skipped.append((item.path, f"no {os.path.basename(path)} (python -m train.landmarks)"))
            continue
        try:
            d, i = read_mediapipe(path, item, indices)
        except (OSError, ValueError) as exc:
            skipped.append((path, f"unreadable: {exc}"))
            continue
        kept.append(item)
        dense.append(d)
        iris.append(i)
    if not kept:
        return kept, torch.zeros(0, len(indices), 2), torch.zeros(0, 2, 5, 2), skipped
    return kept, torch.stack(dense), torch.stack(iris), skipped
