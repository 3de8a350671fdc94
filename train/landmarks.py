"""``python -m train.landmarks IMAGES_OR_FOLDERS [--out DIR] [--all-faces] [--overlay]
[--detector auto|mediapipe|dlib]``.

Finds the faces in photographs and writes their 68 landmarks (iBUG order) as 300-W
``.pts`` files (``version: 1``, ``n_points: 68``, 1-based pixel coordinates): ``<stem>.pts``
for the largest face, or ``<stem>_<k>.pts`` for every face with ``--all-faces`` (k = 0 the
largest; ``python -m train.fit`` fits each). Where MediaPipe's mesh ran, its 478 points go
beside as ``<stem>.mp.npy`` (``[478,3]`` float32: x, y, relative z, 0-based pixels).
Without ``--out`` they go beside each image, which is what ``python -m train.finetune
--folder`` reads. ``--overlay`` draws the boxes (labelled with the backend that found
each face) and landmarks (``<stem>_landmarks.png``); those, ``skipped.txt`` (every file
not used, with why) and ``faces.tsv`` (per face: the backend that found it, its scores)
go to ``--report`` (default: ``--out``, or ``./landmarks-report``). An image that has a
landmark file already (perhaps made by hand) is skipped unless ``--overwrite``.

``--detector auto`` (the default) uses MediaPipe and dlib, whichever are installed, and
with both merges their faces (docs/faces.md). Needs the ``faces`` extra (``pip install -e
".[faces]"``); the licence of each model used is printed (dlib's 68-point model was
trained on iBUG 300-W, whose licence excludes commercial use; MediaPipe's models are
Apache 2.0).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from train.faces.annotate import annotate
from train.faces.detector_options import add_detector_options, detector_from_args


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
    add_detector_options(parser)
    args = parser.parse_args(argv)
    detector = detector_from_args(parser, args)
    result = annotate(
        args.inputs,
        args.out,
        args.report,
        args.all_faces,
        args.overlay,
        detector,
        overwrite=args.overwrite,
    )
    found = Counter(source for _, source in result.sources)
    by = ", ".join(f"{n} by {s or detector.name}" for s, n in sorted(found.items()))
    print(
        f"wrote {len(result.written)} landmark file(s){f' ({by})' if by else ''}; "
        f"skipped {len(result.skipped)}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
