"""The data section of a run's configuration: which synthetic data is rendered (FLAME
model, basis sizes, image size, split sizes, seed), whether the network sees noisy
landmarks, and the optional folder of real images that joins the fine-tuning."""

from __future__ import annotations

import dataclasses
import os

from train.data.sources import FOLDER, REGIMES
from train.faces.crop_box import FOLDER_CROPS


@dataclasses.dataclass
class DataConfig:
    """What a run trains and is evaluated on. Units: pixels, samples."""

    #: the FLAME model: "bundled" (the stand-in head) or a converted model file
    flame: str = "bundled"
    #: seed of the synthetic samples and of the folder's hold-out split
    seed: int = 0
    #: the synthetic regimes a run trains on (a subset of train.data.sources.REGIMES)
    regimes: tuple[str, ...] = REGIMES
    #: side of the square network input, pixels
    image_size: int = 64
    #: FLAME shape and expression coefficients the data draws and the networks predict
    n_shape: int = 50
    n_expr: int = 50
    #: samples per regime in each split
    n_train: int = 1024
    n_val: int = 64
    n_test: int = 128
    #: the network's landmark loss uses the detector-like noisy landmarks
    landmark_noise: bool = True
    #: a folder of real images + 68-point landmark files (train.data.folder) that joins
    #: the fine-tuning with landmark supervision and its rho_prior.json; "" for none
    folder: str = ""
    #: share of the folder held out for evaluation
    folder_test_fraction: float = 0.2
    #: images of the folder without a landmark file: annotated by the face detector
    #: (the faces extra) and cached under <out_dir>/.data/folder-landmarks/, else skipped
    folder_annotate: bool = True
    #: folder crops: "auto" (SMIRK's landmark crop for annotated images, the centre
    #: square for images with their own landmark file), "centre" or "landmarks"
    folder_crop: str = "auto"

    def validate(self) -> DataConfig:
        """Raise ``ValueError`` naming the field when a value is out of range."""
        if self.folder_crop not in FOLDER_CROPS:
            raise ValueError(f"folder_crop must be one of {FOLDER_CROPS}, got {self.folder_crop!r}")
        bad = [r for r in self.regimes if r not in REGIMES]
        if bad or not self.regimes:
            raise ValueError(f"regimes must be a non-empty subset of {REGIMES}, got {self.regimes}")
        for field in ("image_size", "n_train", "n_test", "n_val", "n_shape", "n_expr"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be > 0, got {getattr(self, field)}")
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
