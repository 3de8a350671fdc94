"""``train.engine.provenance``: what data a checkpoint has seen, from its config and
metadata."""

from __future__ import annotations

from train.engine.config import TrainConfig
from train.engine.provenance import real_image_warning, training_data


def test_synthetic_folder_and_smirk_are_told_apart():
    synthetic = training_data(TrainConfig.of(), {})
    assert synthetic["kind"] == "synthetic" and not synthetic["real_faces"]
    assert "stand-in head" in synthetic["description"]
    assert "never seen a real face" in real_image_warning(synthetic)
    folder = training_data(TrainConfig.of(folder="/photos"), {})
    assert folder["kind"] == "folder" and folder["real_faces"] and folder["folder"] == "/photos"
    assert real_image_warning(folder) is None
    imported = training_data(TrainConfig.of(), {"imported_from": "/x/SMIRK_em1.pt"})
    assert imported["kind"] == "smirk-release" and real_image_warning(imported) is None
    assert "fine-tuned" not in imported["description"]


def test_an_initialisation_passes_on_what_it_has_seen():
    cfg = TrainConfig.of()
    from_smirk = training_data(cfg, {"trained_on": {"kind": "smirk-release", "real_faces": True}})
    assert (
        from_smirk["kind"] == "smirk-release"
        and "then fine-tuned here" in from_smirk["description"]
    )
    from_folder = training_data(
        cfg, {"trained_on": {"kind": "folder", "real_faces": True, "folder": "/p"}}
    )
    assert from_folder["kind"] == "folder" and from_folder["folder"] == "/p"
    plain = training_data(cfg, {"trained_on": {"kind": "synthetic", "real_faces": False}})
    assert plain["kind"] == "synthetic"
