"""``python -m train.landmarks IMAGES_OR_FOLDERS [--out DIR] [--all-faces] [--overlay]``.

Finds the faces in photographs and writes their 68 landmarks (iBUG order) as 300-W
``.pts`` files (``version: 1``, ``n_points: 68``, 1-based pixel coordinates): ``<stem>.pts``
for the largest face, or ``<stem>_<k>.pts`` for every face with ``--all-faces`` (k = 0 the
largest). Without ``--out`` they go beside each image, which is what
``python -m train.finetune --folder`` reads. ``--overlay`` draws the boxes and landmarks
(``<stem>_landmarks.png``); those and ``skipped.txt`` (every file not used, with why) go
to ``--report`` (default: ``--out``, or ``./landmarks-report``). An image that has a
landmark file already (perhaps made by hand) is skipped unless ``--overwrite``.

Needs the ``faces`` extra (``pip install -e ".[faces]"``). The 68-point model it uses was
trained on iBUG 300-W, whose licence excludes commercial use (docs/faces.md).
"""

from __future__ import annotations

import argparse
import sys

from train.faces.annotate import annotate
from train.faces.detect import DETECTORS, LICENCE_NOTE, DetectorUnavailable, load_detector


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.landmarks", description=__doc__)
    parser.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    parser.add_argument(
        "--out", default=None, help="folder for the .pts files (default: beside each image)"
    )
    parser.add_argument("--report", default=None, help="folder for overlays and skipped.txt")
    parser.add_argument("--all-faces", action="store_true", help="one <stem>_<k>.pts per face")
    parser.add_argument("--overlay", action="store_true", help="write <stem>_landmarks.png")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing landmark files (default: skip)"
    )
    parser.add_argument(
        "--detector",
        choices=sorted(DETECTORS),
        default="dlib",
        help="face detector and landmark model (the faces extra) (default: dlib)",
    )
    args = parser.parse_args(argv)
    try:
        detector = load_detector(args.detector)
    except DetectorUnavailable as exc:
        parser.error(str(exc))
    print(f"note: {LICENCE_NOTE}", file=sys.stderr)
    result = annotate(args.inputs, args.out, args.report, args.all_faces, args.overlay, detector)
    print(
        f"wrote {len(result.written)} landmark file(s); skipped {len(result.skipped)}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
