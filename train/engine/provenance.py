"""What data a checkpoint's weights have seen, read from its config and metadata, so
that its predictions on real photos can say whether they mean anything.

A checkpoint's ``extra["trained_on"]`` (written by :class:`train.engine.run.Run`)
carries the verdict of the checkpoint it was initialised from, so a model fine-tuned
from SMIRK's release on synthetic data still counts as having seen real faces.
"""

from __future__ import annotations

from train.engine.config import TrainConfig

#: the kinds of training data, from the least to the most real
SYNTHETIC, FOLDER, SMIRK = "synthetic", "folder", "smirk-release"


def training_data(cfg: TrainConfig, extra: dict) -> dict:
    """``{"kind", "real_faces", "description"}`` for a checkpoint's ``cfg`` (its saved
    config) and metadata ``extra``.

    ``kind``: ``"smirk-release"`` (converted by train.import_smirk, or initialised from
    such a model), ``"folder"`` (fine-tuned with a folder of real photos, or from such a
    model), else ``"synthetic"`` (renders of the FLAME layer ``cfg.data.flame`` only).
    ``real_faces``: whether the weights have seen a real face.
    """
    inherited = extra.get("trained_on") or {}
    if "imported_from" in extra or inherited.get("kind") == SMIRK:
        return {
            "kind": SMIRK,
            "real_faces": True,
            "description": "SMIRK's released model (trained by its authors on real face "
            "datasets)" + (", then fine-tuned here" if "imported_from" not in extra else ""),
        }
    if cfg.data.folder or inherited.get("kind") == FOLDER:
        where = cfg.data.folder or inherited.get("folder", "")
        return {
            "kind": FOLDER,
            "real_faces": True,
            "folder": where,
            "description": f"synthetic renders and the real photos of the folder {where}",
        }
    head = "the bundled stand-in head" if cfg.data.flame == "bundled" else cfg.data.flame
    return {
        "kind": SYNTHETIC,
        "real_faces": False,
        "description": f"synthetic renders of {head} only ({', '.join(cfg.data.regimes)}); "
        "it has never seen a real face",
    }


def real_image_warning(data: dict) -> str | None:
    """The warning for predictions of a checkpoint trained on ``data``
    (:func:`training_data`) on real images; None when it has seen real faces."""
    if data["real_faces"]:
        return None
    return (
        f"this checkpoint was trained on {data['description']}: its rho, distance and "
        "shape on real photos are not meaningful. For a real photo use "
        "`python -m train.fit` on its landmarks, or a checkpoint trained on real faces "
        "(`train.finetune --folder`, or SMIRK's release through `train.import_smirk`)"
    )
