"""The data section of a run's configuration: which synthetic data is rendered (FLAME
model, basis sizes, image size, split sizes, seed), whether the landmark loss sees
detector-like noise, and the optional folder of real images that joins the fine-tuning."""

from __future__ import annotations

import dataclasses
import os

from train.data.sources import FOLDER, REGIMES
from train.faces.crop_box import FOLDER_CROPS
from train.faces.detect import DETECTORS
from train.options import check_options, option


@dataclasses.dataclass
class DataConfig:
    """What a run trains and is evaluated on (:mod:`train.data` receives only this)."""

    flame: str = option(
        "bundled", "FLAME model: 'bundled' (the stand-in head) or a converted model file"
    )
    seed: int = option(
        0,
        "seed of the synthetic samples and the folder's hold-out split (and, for "
        "replicate 0, of the training)",
    )
    regimes: tuple[str, ...] = option(
        REGIMES, "synthetic regimes trained on, comma-separated", choices=REGIMES
    )
    image_size: int = option(
        64,
        "side of the square network input (a multiple of 8, >= 32)",
        unit="pixels",
        positive=True,
    )
    n_shape: int = option(50, "FLAME shape coefficients drawn and predicted", positive=True)
    n_expr: int = option(50, "FLAME expression coefficients drawn and predicted", positive=True)
    n_train: int = option(1024, "training samples per regime", positive=True)
    n_val: int = option(64, "validation samples per regime", positive=True)
    n_test: int = option(128, "test samples per regime", positive=True)
    landmark_noise: bool = option(
        True, "the landmark loss uses detector-like noisy landmarks, as real detections are"
    )
    folder: str = option(
        "",
        "a folder of real images and 68-point landmark files (train.data.folder) that "
        "joins the fine-tuning with landmark supervision and its rho_prior.json; '' for none",
    )
    folder_test_fraction: float = option(
        0.2, "share of the folder held out for validation and evaluation, in (0, 1)"
    )
    folder_annotate: bool = option(
        True,
        "images of the folder without a landmark file are annotated by the face "
        "detector (the faces extra) and cached under <out-dir>/.data/folder-landmarks/; "
        "else they are skipped",
    )
    detector: str = option(
        "auto",
        "face detector that annotates the folder's images: 'auto' (MediaPipe and dlib, "
        "whichever are installed, faces merged), 'mediapipe' or 'dlib'",
        choices=tuple(sorted(DETECTORS)),
    )
    folder_crop: str = option(
        "auto",
        "folder crops: 'auto' (SMIRK's landmark crop for annotated images, the "
        "centre square for images with their own landmark file), 'centre' or 'landmarks'",
        choices=FOLDER_CROPS,
    )

    def validate(self) -> DataConfig:
        """Raise ``ValueError`` naming the field when a value is out of range."""
        check_options(self)
        if self.image_size < 32 or self.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8 and >= 32, got {self.image_size}")
        if self.folder and not os.path.isdir(self.folder):
            raise ValueError(
                f"folder not found: {self.folder!r} (a directory of images and "
                "landmark files, see train.data.folder)"
            )
        if not 0.0 < self.folder_test_fraction < 1.0:
            raise ValueError(
                f"folder_test_fraction must be in (0, 1), got {self.folder_test_fraction}"
            )
        return self

    def sources(self) -> tuple[str, ...]:
        """The data sources a run trains and evaluates on: its regimes and the folder."""
        return (*self.regimes, FOLDER) if self.folder else tuple(self.regimes)
