"""``python -m train.import_smirk SMIRK.pt -o smirk.safetensors [--flame ...]``.

Converts SMIRK's released checkpoint (its encoder and generator; github
georgeretsi/smirk) into this project's training checkpoint (``arch="smirk"``,
orthographic camera), so that

    python -m train.infer photo.jpg --checkpoint smirk.safetensors --out out/
    python -m train.evaluate --runs smirk.safetensors runs/finetune
    python -m train.finetune --init smirk.safetensors --preset full

take it like any run of ours. The checkpoint is read with
``torch.load(weights_only=True)``: nothing in it is executed. The FLAME model is
recorded in the checkpoint's config: ``--flame generic_model.pkl --landmarks
landmark_embedding.npy --eyelids l_eyelid.npy r_eyelid.npy`` (FLAME 2020 and
SMIRK's assets) is converted once to ``<output>.flame.safetensors``; a model
converted before (``python -m flame.convert``) is used as it is; the default is
the bundled stand-in head (for trying the pipeline; its shape space is not
FLAME's, so SMIRK's shape coefficients mean nothing on it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import flame
from train.engine import checkpoint as ckpt
from train.engine.config import TrainConfig
from train.engine.system import TrainingSystem
from train.models.smirk.adapter import SMIRK_RES_BLOCKS
from train.models.smirk.release import GENERATOR_PREFIX, file_sha256, load_smirk, smirk_flame


def import_smirk(
    smirk_path: str,
    out_path: str,
    *,
    flame_path: str = "bundled",
    landmarks: list[str] | None = None,
    eyelids: list[str] | None = None,
    image_size: int = 224,
) -> TrainConfig:
    """Convert SMIRK's checkpoint to a training checkpoint of this project.

    The result is an ``arch="smirk"``, orthographic (``camera="ortho"``) run
    trained on ``studio`` + ``wild`` in the report's terms (SMIRK's released model
    is the paper's orthographic pretrained model), at ``image_size`` (224 for the
    released weights), with FLAME from :func:`smirk_flame`. The encoder and the
    generator keep SMIRK's weights bit for bit. Returns the written config.
    """
    if not out_path.endswith(".safetensors"):
        raise ValueError(f"the output must end in .safetensors, got {out_path}")
    encoder, generator = load_smirk(smirk_path)
    if generator is None:
        raise ValueError(
            f"{smirk_path}: no {GENERATOR_PREFIX!r} keys; fine-tuning needs SMIRK's generator"
        )
    if len(generator.resnet_blocks) != SMIRK_RES_BLOCKS:
        raise ValueError(
            f"{smirk_path}: the generator has {len(generator.resnet_blocks)} residual blocks; "
            f"SMIRK's released model (the one supported) has {SMIRK_RES_BLOCKS}"
        )
    n_shape = encoder.shape_encoder.shape_layers[0].out_features
    n_expr = encoder.expression_encoder.expression_layers[0].out_features - 5
    stem = out_path[: -len(".safetensors")]
    flame_used = smirk_flame(
        flame_path, landmarks, eyelids, n_shape, n_expr, write_to=stem + ".flame.safetensors"
    )
    cfg = TrainConfig.of(
        name=os.path.basename(stem) or "smirk",
        arch="smirk",
        camera="ortho",
        regimes=("studio", "wild"),
        flame=flame_used,
        image_size=image_size,
        n_shape=n_shape,
        n_expr=n_expr,
        renderer_channels=int(generator.encoder1[0].out_channels),
    ).validate()
    system = TrainingSystem(cfg, flame.FLAME(flame_used, n_shape=n_shape, n_expr=n_expr))
    system.model.encoder.load_state_dict(encoder.state_dict(), strict=True)
    system.renderer.generator.load_state_dict(generator.state_dict(), strict=True)
    extra = {"imported_from": os.path.abspath(smirk_path), "sha256": file_sha256(smirk_path)}
    ckpt.save_checkpoint(out_path, system, None, dataclasses.asdict(cfg), 0, extra=extra)
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.import_smirk", description=__doc__)
    parser.add_argument("checkpoint", help="SMIRK's checkpoint (e.g. SMIRK_em1.pt)")
    parser.add_argument("-o", "--output", required=True, help="output .safetensors checkpoint")
    parser.add_argument(
        "--flame",
        default="bundled",
        help="FLAME 2020 generic_model.pkl, a converted .safetensors/.npz, or 'bundled' "
        "(default: bundled)",
    )
    parser.add_argument(
        "--landmarks", nargs="+", default=None, help="landmark embedding (landmark_embedding.npy)"
    )
    parser.add_argument(
        "--eyelids",
        nargs=2,
        default=None,
        metavar=("L_EYELID", "R_EYELID"),
        help="SMIRK's eyelid blendshapes (added after skinning, as SMIRK does)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=224,
        help="input size recorded in the config (default 224, SMIRK's; multiple of 16)",
    )
    args = parser.parse_args(argv)
    try:
        cfg = import_smirk(
            args.checkpoint,
            args.output,
            flame_path=args.flame,
            landmarks=args.landmarks,
            eyelids=args.eyelids,
            image_size=args.image_size,
        )
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    data = cfg.data
    print(
        f"wrote {args.output}: arch smirk, {data.n_shape} shape + {data.n_expr} expression "
        f"coefficients, generator {cfg.model.renderer_channels} channels, {data.image_size} px, "
        f"FLAME {data.flame}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
