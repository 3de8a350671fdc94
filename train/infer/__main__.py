"""``python -m train.infer IMAGES_OR_FOLDERS --checkpoint CKPT --out DIR``.

For each image: the FLAME parameters, the camera (scale, translation, rho) with
its exact pinhole equivalent (focal length and distance, ``f = S/rho``,
``t_z = 1/rho``; none for rho = 0) as JSON, an overlay PNG (the predicted mesh
and landmarks over the input) and the posed mesh as OBJ (model frame, metres).
Folders are processed with a progress bar; unreadable images, decompression bombs
and images without a face are listed, skipped, and written to ``skipped.txt``.

``--crop detect`` (the default when the ``faces`` extra is installed) finds every face
and crops each the way SMIRK does (landmark box x ``--scale`` 1.4, similarity warp to the
checkpoint's input size): one ``<stem>_<k>.json/_overlay.png/.obj`` per face (k = 0 the
largest) and ``<stem>_faces.png``, the predicted landmarks on the photograph. ``centre``
(the default without the extra) takes the central square, ``none`` a ready square crop:
one ``<stem>.*``. Landmarks are reported in NDC of the crop and in pixels of the original
image; the JSON holds the crop box and, per detected face, the backend that found it.
``--detector`` (default ``auto``: MediaPipe and dlib, whichever are installed, faces
merged) chooses the face detector; the licence of each model used is printed
(docs/faces.md: dlib's 68-point model excludes commercial use).

Video files (``.mp4``, ``.mov``, ...; the ``video`` extra) and, with ``--sequence``,
folders of frames are sequences: one face is tracked with a smoothed crop box, each
frame gets ``<stem>_<frame>.json/_overlay.png``, and ``<stem>_summary.json`` the
sequence's median rho with its spread (quartiles, IQR, MAD).

``--refine fit`` refines each image's prediction by the landmark fit of ``train.fit``
on the face's landmarks in the whole image (the detector's; with ``--crop centre`` or
``none`` the image's landmark file, e.g. ``photo.pts``), starting from the prediction
with the crop's camera mapped back to the whole image (where the principal point is),
and from the mean face, the better kept. Each JSON gains a ``refined`` block: rho with
its 95 % interval, the distance with its interval (``"0.62 m [0.48, 0.91]"``, or
"distance not observable from these landmarks"), the camera, FLAME parameters and
fitted landmarks, and their residual in pixels. Not for sequences.
"""

from __future__ import annotations

import argparse
import os
import sys

from train.faces.crop_box import SCALE_INFER
from train.faces.detector_options import add_detector_options, detector_from_args
from train.faces.input_crops import CROP_MODES
from train.infer.inference import REFINE_MODES, infer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m train.infer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    parser.add_argument("--checkpoint", required=True, help="a training checkpoint (.safetensors)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--batch", type=int, default=16, help="crops per forward pass (default: 16)"
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N] (default: auto)"
    )
    parser.add_argument(
        "--crop",
        choices=CROP_MODES,
        default=None,
        help="detect: one crop per detected face (default with the faces extra); centre: the "
        "central square (default without it); none: the images are ready square crops",
    )
    parser.add_argument(
        "--sequence",
        action="store_true",
        help="read each folder as the frames of one video (video files always are)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=SCALE_INFER,
        help="--crop detect and videos: enlargement of the landmarks' box (default: 1.4)",
    )
    parser.add_argument(
        "--refine",
        choices=REFINE_MODES,
        default="none",
        help="fit: refine each image's prediction by the landmark fit, with rho's interval "
        "(a 'refined' block in its JSON; default: none)",
    )
    add_detector_options(parser)
    args = parser.parse_args(argv)
    if args.batch <= 0:
        parser.error(f"--batch must be > 0, got {args.batch}")
    if not args.scale > 0:
        parser.error(f"--scale must be > 0, got {args.scale}")
    if not os.path.isfile(args.checkpoint):
        parser.error(f"--checkpoint: no such file {args.checkpoint}")
    detector = None
    if args.crop in (None, "detect"):
        detector = detector_from_args(parser, args, required=args.crop == "detect")
        if detector is None:
            args.crop = "centre"
            print(
                'note: no face detector (pip install -e ".[faces]"), so --crop centre',
                file=sys.stderr,
            )
        else:
            args.crop = "detect"
    written, skipped = infer(
        args.inputs,
        args.checkpoint,
        args.out,
        args.batch,
        args.device,
        crop=args.crop,
        detector=detector,
        scale=args.scale,
        sequence=args.sequence,
        refine=args.refine,
    )
    print(f"wrote {len(written)} result(s) to {args.out}; skipped {len(skipped)}", file=sys.stderr)


if __name__ == "__main__":
    main()
