"""BlazeFace, MediaPipe's face detector, run from its ``.tflite`` file: the image
letterboxed into the model's square input, SSD anchors, box and keypoint decoding, and
weighted non-maximum suppression, as MediaPipe's graphs define them
(``mediapipe/modules/face_detection/face_detection.pbtxt`` with the options of
``face_detection_full_range.pbtxt`` and ``face_detection_short_range.pbtxt``, the
calculators ``SsdAnchorsCalculator``, ``TensorsToDetectionsCalculator`` and
``NonMaxSuppressionCalculator``).

Outputs are in source pixels (0-based, pixel centres at integers, docs/design.md
section 2); boxes as ``left, top, right, bottom`` edges shifted by half a pixel the way
:class:`train.faces.detect.Box` counts them (``right - left`` is the width). The six
keypoints are, in MediaPipe's order: the two eyes (the image's left one first for an
upright face), the nose tip, the mouth centre and the two ear tragions.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from train.faces.crop_box import CropBox, warp


@dataclasses.dataclass(frozen=True)
class Variant:
    """One BlazeFace model: its file, input side, anchor strides, whether an extra
    interpolated anchor sits at each location, and MediaPipe's score threshold."""

    file: str
    size: int
    strides: tuple[int, ...]
    interpolated: bool
    min_score: float


#: The two detectors: ``full`` (faces up to about 5 m, 192 px input, 2304 anchors) and
#: ``short`` (selfie range, 128 px, 896 anchors).
VARIANTS = {
    "full": Variant("face_detection_full_range.tflite", 192, (4,), False, 0.6),
    "short": Variant("face_detection_short_range.tflite", 128, (8, 16, 16, 16), True, 0.5),
}

#: The IoU above which a detection joins a higher-scoring one (MediaPipe: 0.3).
NMS_IOU = 0.3
#: Raw scores are clipped to this before the sigmoid (MediaPipe: 100).
SCORE_CLIP = 100.0


@dataclasses.dataclass
class Detection:
    """One face: ``box`` ``[4]`` float64 (left, top, right, bottom; see the module
    docstring), ``keypoints`` ``[6,2]`` float64 source pixels, ``score`` in (0, 1)."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float


def ssd_anchors(size: int, strides: tuple[int, ...], interpolated: bool) -> np.ndarray:
    """Anchor centres ``[N,2]`` float64 (x, y) in [0, 1] of the model's input, in the order
    of its outputs: ``SsdAnchorsCalculator`` with ``fixed_anchor_size`` (every anchor 1 x 1),
    offset 0.5, one aspect ratio, layers of equal stride sharing one grid."""
    if size < 1 or not strides or min(strides) < 1:
        raise ValueError(f"need size >= 1 and positive strides, got {size}, {strides}")
    centres = []
    layer = 0
    while layer < len(strides):
        last, repeats = layer, 0
        while last < len(strides) and strides[last] == strides[layer]:
            repeats += 2 if interpolated else 1
            last += 1
        cells = -(-size // strides[layer])  # ceil, as the calculator's feature map size
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, repeats, axis=1).reshape(-1, 2))
        layer = last
    return np.concatenate(centres).astype(np.float64)


def decode(raw: np.ndarray, anchors: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``[N,4]`` (xmin, ymin, xmax, ymax) and keypoints ``[N,6,2]`` in [0, 1] of the
    input from the regressor output ``[N,16]`` (centre x, centre y, w, h, then six x, y;
    in input pixels relative to the anchor centre)."""
    raw = np.asarray(raw, dtype=np.float64).reshape(len(anchors), -1)
    if raw.shape[1] != 16:
        raise ValueError(f"expected 16 values per anchor, got {raw.shape[1]}")
    centre = raw[:, 0:2] / size + anchors
    half = raw[:, 2:4] / size / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) / size + anchors[:, None, :]
    return boxes, keypoints


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of ``box`` ``[4]`` with each of ``boxes`` ``[N,4]``
    (xmin, ymin, xmax, ymax); 0 where the union is empty."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0.0, None), axis=-1)  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, threshold: float = NMS_IOU
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: the best remaining detection and all
    others overlapping it by IoU > ``threshold`` are replaced by their score-weighted
    mean box and keypoints, with the best one's score; repeated until none remain.
    Inputs ``[N,4]``, ``[N,K,2]``, ``[N]``; returns ``(box, keypoints, score)`` best first."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while len(order):
        best = order[0]
        close = iou(boxes[best], boxes[order]) > threshold
        close[0] = True
        group = order[close]
        weights = scores[group] / scores[group].sum()
        box = (boxes[group] * weights[:, None]).sum(0)
        kps = (keypoints[group] * weights[:, None, None]).sum(0)
        out.append((box, kps, float(scores[best])))
        order = order[~close]
    return out


def letterbox(image: np.ndarray, size: int) -> CropBox:
    """The crop that fits the whole image, centred, into a ``size`` square (the rest is
    black, as MediaPipe's ``keep_aspect_ratio`` with ``BORDER_ZERO``)."""
    h, w = image.shape[:2]
    return CropBox((w - 1) / 2.0, (h - 1) / 2.0, float(max(w, h)), size)


class BlazeFace:
    """One BlazeFace model on the LiteRT interpreter (``ai_edge_litert``).

    ``path``: the ``.tflite`` file of ``variant`` (a key of :data:`VARIANTS`);
    ``min_score``: detections scoring below it are dropped (default: MediaPipe's, 0.6
    for ``full``, 0.5 for ``short``)."""

    def __init__(
        self, path: str, variant: str = "full", min_score: float | None = None, threads: int = 1
    ):
        if variant not in VARIANTS:
            raise ValueError(f"unknown BlazeFace variant {variant!r}, expected {sorted(VARIANTS)}")
        self.variant = VARIANTS[variant]
        self.min_score = self.variant.min_score if min_score is None else float(min_score)
        if not 0.0 <= self.min_score < 1.0:
            raise ValueError(f"min_score must be in [0, 1), got {self.min_score}")
        from ai_edge_litert.interpreter import Interpreter

        self._net = Interpreter(model_path=str(path), num_threads=threads)
        self._net.allocate_tensors()
        self._input = self._net.get_input_details()[0]["index"]
        outputs = {int(d["shape"][-1]): d["index"] for d in self._net.get_output_details()}
        if set(outputs) != {16, 1}:
            raise ValueError(f"{path}: not a BlazeFace model (outputs {sorted(outputs)})")
        self._boxes, self._scores = outputs[16], outputs[1]
        v = self.variant
        self.anchors = ssd_anchors(v.size, v.strides, v.interpolated)

    def __call__(self, image: np.ndarray, crop: CropBox | None = None) -> list[Detection]:
        """Faces in ``image`` (``[H,W,3]`` uint8 RGB), best first; ``crop`` (default: the
        whole image, letterboxed) is the square region the model looks at."""
        size = self.variant.size
        crop = letterbox(image, size) if crop is None else crop
        if crop.size != size:
            raise ValueError(f"the crop must be {size} px for this model, got {crop.size}")
        tensor = warp(image, crop).astype(np.float32) / 127.5 - 1.0  # [-1, 1]
        self._net.set_tensor(self._input, tensor[None])
        self._net.invoke()
        raw = self._net.get_tensor(self._boxes)[0]
        logits = self._net.get_tensor(self._scores)[0, :, 0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -SCORE_CLIP, SCORE_CLIP)))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        boxes, keypoints = decode(raw, self.anchors, size)
        boxes, keypoints, scores = boxes[keep], keypoints[keep], scores[keep]
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        found = weighted_nms(boxes[valid], keypoints[valid], scores[valid])
        out = []
        for box, kps, score in found:
            # [0, 1] of the input -> its pixel-centre coordinates -> source pixels
            corners = crop.to_image(box.reshape(2, 2) * size - 0.5)
            points = crop.to_image(kps * size - 0.5)
            edges = np.concatenate([corners.min(0), corners.max(0)]) + 0.5
            out.append(Detection(edges, points, score))
        return out
