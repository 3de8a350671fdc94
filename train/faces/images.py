"""Reading photographs robustly: every format PIL opens, EXIF orientation applied,
greyscale / palette / RGBA / 16-bit / float images brought to 8-bit RGB, and
decompression bombs refused from the header, before any pixel is decoded.

Pixel convention (docs/design.md section 2): ``image[row, col]``, pixel centres at
integer (x = col, y = row) coordinates, 0-based, after the EXIF rotation, which is
what a viewer shows and what landmark files refer to.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: The largest image read, in pixels (width x height): PIL's own bomb limit
#: (about 89.5 megapixels, e.g. 9460 x 9460). Larger images are refused unread.
MAX_PIXELS = 89_478_485

#: Video container suffixes (read by train.faces.video, never as still images).
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def _image_suffixes() -> tuple[str, ...]:
    Image.init()
    readable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return tuple(sorted(readable - set(VIDEO_SUFFIXES)))


#: Every file suffix PIL can open (lower case, with the dot): .png, .jpg, .ppm, .tif, ...
IMAGE_SUFFIXES: tuple[str, ...] = _image_suffixes()


class ImageError(ValueError):
    """An image that cannot be used; the message names the file and what was wrong."""


def _to_uint8_rgb(img: Image.Image) -> np.ndarray:
    """``[H,W,3]`` uint8 RGB from any PIL mode: alpha composited over mid grey, 16-bit and
    32-bit integer images scaled by their type's range, float images by their own range."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.float64) / 65535.0
        return np.repeat((arr * 255.0).round().astype(np.uint8)[..., None], 3, axis=2)
    if mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode == "I":
            # PNG 16-bit greyscale opens as "I" with values in 0..65535
            top = 65535.0 if arr.max(initial=0) > 255 else 255.0
            arr = np.clip(arr, 0.0, top) / top
        else:
            finite = np.isfinite(arr)
            lo = arr[finite].min(initial=0.0)
            hi = arr[finite].max(initial=1.0)
            arr = np.where(finite, (arr - lo) / max(hi - lo, 1e-12), 0.0)
        return np.repeat((arr * 255.0).round().astype(np.uint8)[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        grey = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        return np.asarray(Image.alpha_composite(grey, rgba).convert("RGB")).copy()
    return np.asarray(img.convert("RGB")).copy()


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as ``[H,W,3]`` uint8 RGB, upright (EXIF orientation applied).

    Accepts every format PIL opens (PNG, JPEG, PPM/PGM, TIFF, BMP, WebP, ...), in any mode:
    greyscale is repeated to three channels, alpha is composited over mid grey, 16-bit
    images are scaled from 0..65535 to 0..255. Raises :class:`ImageError` (a
    ``ValueError``) naming the file for a missing or unreadable file, one that is not an
    image, and an image of more than ``max_pixels`` pixels (checked from the header,
    before decoding: a decompression bomb costs nothing).
    """
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be > 0, got {max_pixels}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImageError(f"{path}: no such file")
    # PIL's own bomb check (a warning, or an error at twice its global limit) is replaced
    # by ours, which names the file and the limit
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as raw:
            w, h = raw.size
            if w * h > max_pixels:
                raise ImageError(
                    f"{path}: {w}x{h} = {w * h} pixels is over the limit of {max_pixels} pixels "
                    "(a decompression bomb or an oversized image; pass a larger max_pixels "
                    "if you trust it)"
                )
            if w < 1 or h < 1:
                raise ImageError(f"{path}: empty image ({w}x{h})")
            raw.load()
            upright = ImageOps.exif_transpose(raw)
            return _to_uint8_rgb(upright)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image PIL can read") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def is_video(path: str) -> bool:
    """True for a file whose suffix is a video container (:data:`VIDEO_SUFFIXES`)."""
    return path.lower().endswith(VIDEO_SUFFIXES)


def list_inputs(
    inputs: list[str], companions: tuple[str, ...] = (".pts", ".npy", ".json")
) -> tuple[list[str], list[tuple[str, str]]]:
    """The files to process from files and folders, and what was skipped with why.

    A folder contributes every regular file in it (sorted, not recursive) whose suffix
    is an image (:data:`IMAGE_SUFFIXES`) or a video (:data:`VIDEO_SUFFIXES`); any other
    file is returned as skipped ("not an image or video") except a landmark file
    (``companions``, and ``<stem>.mp.npy``) that has an image of the same stem beside it
    (or is ``<stem>_<k>.*``), and the folder's ``rho_prior.json``, ``skipped.txt`` and
    ``faces.tsv``. Files named explicitly are always returned
    (a reader decides later); missing inputs are skipped.
    """
    paths: list[str] = []
    skipped: list[tuple[str, str]] = []
    for item in inputs:
        if os.path.isdir(item):
            names = sorted(n for n in os.listdir(item) if os.path.isfile(os.path.join(item, n)))
            stems = {os.path.splitext(n)[0] for n in names if n.lower().endswith(IMAGE_SUFFIXES)}
            for name in names:
                stem, suffix = os.path.splitext(name)
                if name.endswith(".mp.npy"):  # MediaPipe's points beside a .pts
                    stem = name[: -len(".mp.npy")]
                full = os.path.join(item, name)
                if name.lower().endswith(IMAGE_SUFFIXES + VIDEO_SUFFIXES):
                    paths.append(full)
                elif name in ("rho_prior.json", "skipped.txt", "faces.tsv"):
                    continue
                elif suffix.lower() in companions and (
                    stem in stems or stem.rpartition("_")[0] in stems
                ):
                    continue
                else:
                    skipped.append((full, f"not an image or video (suffix {suffix or 'none'!r})"))
        elif os.path.isfile(item):
            paths.append(item)
        else:
            skipped.append((item, "no such file or folder"))
    return paths, skipped


def report_skipped(skipped: list[tuple[str, str]], stream: TextIO | None = None) -> None:
    """Print one line per skipped file, ``skipped PATH: WHY``, to ``stream`` (standard
    error by default): plain lines, where ``warnings`` would add a line of our source."""
    out = sys.stderr if stream is None else stream
    for path, why in skipped:
        print(f"skipped {path}: {why}", file=out)
