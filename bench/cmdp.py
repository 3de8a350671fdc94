"""Reading the Caltech Multi-Distance Portraits (CMDP) release: 68 landmarks per portrait
with its subject, camera distance and image size.

CMDP (Burgos-Artizzu, Ronchi and Perona, "Distance estimation of an unknown person
from a portrait", ECCV 2014; CaltechDATA doi:10.22002/D1.20110) ships three archives:
``CMDP-ANNO.zip`` (the MATLAB file ``CMDP-ANNO/dinfo.mat``) and ``CMDP_1.zip`` /
``CMDP_2.zip`` (the portraits, ``CMDP_<k>/<n>_<id>/<id>_<feet>.jpg``). ``dinfo.mat``
(MATLAB v5, read with ``scipy.io.loadmat``) holds, for ``numSubjects`` subjects and
``numPics`` = 7 distances:

- ``imagePathsOriginal {numSubjects, numPics}``: each portrait's path below
  ``CMDP_1`` or ``CMDP_2`` (``<n>_<id>/<id>_<feet>.jpg``);
- ``distancesVec_FT`` / ``distancesVec_MM [numPics]``: the distances (2-16 ft);
- ``fids_Rcpr300F_OR [numSubjects, 136, numPics]``: 68 landmarks in the Multi-PIE
  (iBUG) order, found by RCPR trained on 300 Faces, in the original image's pixels
  (MATLAB's, 1-based), x in columns 1-68 and y in 69-136;
- ``fids_Manual_OR [numSubjects, 110, numPics]``: the 55 landmarks annotated by hand,
  in the authors' own layout (eyes, brows, nose, mouth, the head's outline and the
  hairline); ``_ST`` variants of both for the standardised crops.

The fit reads the 68 RCPR points: their order is the fit's own (iBUG), so they map
one to one. The 55 manual points are not used: their layout is not documented in the
release's files we could read (only their count), and about a third lie on the hair
and head outline, which FLAME's landmarks do not have.

The layout above comes from the release's demo script as copied into public
repositories and from two public evaluations that read it (``scipy.io.loadmat``,
``imagePathsOriginal``, ``distancesVec_FT``); we have not downloaded the release.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import numpy as np
import torch

from train.fit.inputs import pixels_to_ndc

#: the landmark array read (68 points, iBUG order, original images)
FIDS_KEY = "fids_Rcpr300F_OR"
FEET_RE = re.compile(r"_(\d+)\.jpe?g$", re.IGNORECASE)
FT_TO_M = 0.3048


class CmdpSet(NamedTuple):
    """The portraits read (N of them): ``landmarks [N,68,2]`` float32 NDC of the centred
    square (:func:`train.fit.inputs.pixels_to_ndc`), ``subject [N]`` int64 ids (the
    rows of ``dinfo.mat``, one per subject folder ``<n>_<id>``), ``distance_m [N]``
    float64 camera distances (metres, from the file names' feet), ``size [N,2]`` int64
    image (width, height) in pixels, ``paths`` the image files; ``skipped`` the
    portraits left out, with why."""

    landmarks: torch.Tensor
    subject: torch.Tensor
    distance_m: torch.Tensor
    size: torch.Tensor
    paths: list[str]
    skipped: list[tuple[str, str]]


def _dinfo_path(root: str) -> str:
    for cand in (os.path.join(root, "CMDP-ANNO", "dinfo.mat"), os.path.join(root, "dinfo.mat")):
        if os.path.isfile(cand):
            return cand
    raise FileNotFoundError(
        f"no CMDP annotation file under {root!r}: expected CMDP-ANNO/dinfo.mat (unzip "
        "CMDP-ANNO.zip there) next to CMDP_1/ and CMDP_2/"
    )


def _image_path(root: str, rel: str) -> str | None:
    for part in ("", "CMDP_1", "CMDP_2", "CMDP", os.path.join("images", "CMDP_1")):
        cand = os.path.join(root, part, rel)
        if os.path.isfile(cand):
            return cand
    cand = os.path.join(root, "images", "CMDP_2", rel)
    return cand if os.path.isfile(cand) else None


def read_cmdp(root: str) -> CmdpSet:
    """Read the CMDP release unzipped under ``root`` (module docstring).

    Raises ``FileNotFoundError`` without ``dinfo.mat``, ``ValueError`` when it lacks
    the fields read or they have other shapes, or a file name disagrees with its
    distance. Portraits whose image is missing or whose landmarks are not finite are
    skipped (listed in ``skipped``)."""
    from PIL import Image
    from scipy import io

    path = _dinfo_path(root)
    try:
        info = io.loadmat(path, squeeze_me=False)
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5)
        raise ValueError(f"{path}: a MATLAB v7.3 file; expected the release's v5 file") from exc
    missing = [k for k in (FIDS_KEY, "imagePathsOriginal", "distancesVec_FT") if k not in info]
    if missing:
        raise ValueError(f"{path} lacks {missing}: not CMDP's dinfo.mat")
    fids = np.asarray(info[FIDS_KEY], dtype=np.float64)
    paths = info["imagePathsOriginal"]
    feet = np.asarray(info["distancesVec_FT"], dtype=np.float64).ravel()
    if fids.ndim != 3 or fids.shape[1] != 136:
        raise ValueError(f"{FIDS_KEY} must be [subjects, 136, distances], got {fids.shape}")
    n_sub, _, n_pic = fids.shape
    if paths.shape != (n_sub, n_pic) or feet.shape != (n_pic,):
        raise ValueError(
            f"imagePathsOriginal {paths.shape} and distancesVec_FT {feet.shape} must be "
            f"[{n_sub}, {n_pic}] and [{n_pic}] to match {FIDS_KEY}"
        )
    lmk, subj, dist, size, files, skipped = [], [], [], [], [], []
    for i in range(n_sub):
        for j in range(n_pic):
            rel = str(np.asarray(paths[i, j]).ravel()[0]).replace("\\", "/")
            m = FEET_RE.search(rel)
            if m is None:
                raise ValueError(f"{rel!r}: expected a file name <id>_<feet>.jpg")
            if float(m.group(1)) != feet[j]:
                raise ValueError(f"{rel!r} says {m.group(1)} ft, distancesVec_FT {feet[j]:g}")
            image = _image_path(root, rel)
            pts = np.stack([fids[i, :68, j], fids[i, 68:, j]], 1) - 1.0  # 1-based -> 0-based
            if image is None:
                skipped.append((rel, "image not found under CMDP_1/ or CMDP_2/"))
                continue
            if not np.isfinite(pts).all():
                skipped.append((rel, "landmarks not finite"))
                continue
            with Image.open(image) as im:
                w, h = im.size
            lmk.append(pixels_to_ndc(pts, w, h))
            subj.append(i)
            dist.append(float(m.group(1)) * FT_TO_M)
            size.append((w, h))
            files.append(image)
    if not lmk:
        raise ValueError(f"no CMDP portrait with its image and landmarks under {root!r}")
    return CmdpSet(
        torch.tensor(np.stack(lmk), dtype=torch.float32),
        torch.tensor(subj, dtype=torch.int64),
        torch.tensor(dist, dtype=torch.float64),
        torch.tensor(size, dtype=torch.int64),
        files,
        skipped,
    )
