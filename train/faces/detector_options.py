"""The command-line options every command that detects faces shares (``train.landmarks``,
``train.infer``, ``train.finetune --folder``, ``bench.faces``): ``--detector
{auto,mediapipe,dlib}`` and ``--min-score``, and the detector they name, its licence
printed where it is loaded."""

from __future__ import annotations

import argparse
import sys

from train.faces.detect import (
    DEFAULT_DETECTOR,
    DETECTORS,
    DetectorUnavailable,
    FaceDetector,
    licence,
    load_detector,
)


def add_detector_options(parser: argparse.ArgumentParser) -> None:
    """``--detector`` and ``--min-score``, as every command that detects faces has them."""
    parser.add_argument(
        "--detector",
        choices=sorted(DETECTORS),
        default=DEFAULT_DETECTOR,
        help="face detector: auto (MediaPipe and dlib, whichever are installed, faces "
        "merged), mediapipe or dlib (the faces extra) (default: auto)",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="drop detections scoring below this (MediaPipe: probability, default 0.6; "
        "dlib: HOG margin, default 0; auto: MediaPipe's)",
    )


def detector_from_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace, required: bool = True
) -> FaceDetector | None:
    """The detector ``--detector``/``--min-score`` name, its licence printed. When it
    cannot be built: a parser error saying how to install it, or None if not
    ``required`` (the caller falls back and says so)."""
    options = {} if args.min_score is None else {"min_score": args.min_score}
    try:
        detector = load_detector(args.detector, **options)
    except DetectorUnavailable as exc:
        if not required:
            return None
        parser.error(f"--detector {args.detector}: {exc}")
    except ValueError as exc:
        parser.error(f"--min-score: {exc}")
    print(f"note: {licence(detector)}", file=sys.stderr)
    return detector
