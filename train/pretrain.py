"""``python -m train.pretrain``: the orthographic model on ``studio`` + ``wild``.

Our stand-in for the pretrained SMIRK that the paper fine-tunes: camera
``ortho`` (rho fixed to 0), far-away regimes only. Every config field is a
flag (``--help``); ``--preset smoke|default|full`` picks a size.
"""

from __future__ import annotations

import sys

from train.engine.config import parse_config
from train.engine.recipe import PRETRAIN_DEFAULTS, run_pretraining


def main(argv: list[str] | None = None) -> None:
    cfg, args = parse_config(
        argv, base=PRETRAIN_DEFAULTS, prog="python -m train.pretrain", description=__doc__
    )
    run = run_pretraining(cfg, resume=args.resume)
    print(f"pretraining done: {run.dir}/final.safetensors", file=sys.stderr)


if __name__ == "__main__":
    main()
