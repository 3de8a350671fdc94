"""Inference on photographs: per face the FLAME parameters and the camera as JSON, an
overlay PNG and the posed mesh as OBJ (``python -m train.infer`` is its command).

Each image is read robustly (train.faces.images: EXIF rotation, any mode, bombs
refused) and cut into network inputs by ``crop`` (train.faces.input_crops): ``detect`` gives
one SMIRK crop per detected face, written as ``<stem>_<k>.*`` (k = 0 the largest face),
plus ``<stem>_faces.png`` with every face's predicted landmarks on the photograph;
``centre`` and ``none`` give one input, written as ``<stem>.*``. Landmarks are reported
in NDC of the crop and in pixels of the original image; the JSON holds the crop box.

A video file (or, with ``sequence=True``, a folder of frames) is one sequence: one face
is tracked through it (train.faces.video), each frame gets ``<stem>_<frame>.json`` and
``_overlay.png`` (no OBJ), and ``<stem>_summary.json`` holds the sequence's median rho
and its spread (quartiles, IQR, MAD).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

import ppcam
from _common.atomic import write_text
from train.engine.device import pick_device
from train.engine.provenance import real_image_warning, training_data
from train.engine.system import read_system
from train.faces.crop_box import SCALE_INFER, warp
from train.faces.detect import FaceDetector
from train.faces.draw import draw_faces
from train.faces.images import ImageError, is_video, list_inputs, read_image, report_skipped
from train.faces.input_crops import FaceCrop, face_crops
from train.faces.landmark_files import read_landmarks
from train.fit.inputs import landmark_files
from train.infer.refine import refine_faces
from train.metrics import sequence_rho_summary
from train.render.head import camera_vertices, project_landmarks, render_mesh
from train.render.writers import overlay, write_obj

#: ``--refine``: none, or the landmark fit from the prediction (train.infer.refine)
REFINE_MODES = ("none", "fit")


def list_images(inputs: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Image paths from files and folders (sorted), and the inputs skipped with why
    (train.faces.images.list_inputs: every file PIL reads is an image)."""
    return list_inputs(inputs)


@dataclasses.dataclass
class Job:
    """One network input of one source image, with the name its outputs get."""

    path: str
    name: str
    face: FaceCrop
    image_key: str  # the source image (or video frame) this crop belongs to
    extra: dict = dataclasses.field(default_factory=dict)  # more fields for the JSON
    size: tuple[int, int] | None = None  # the source image's (W, H), for --refine fit


@dataclasses.dataclass
class Prediction:
    """What the network said about one :class:`Job` (CPU tensors / plain values)."""

    record: dict
    landmarks_px: np.ndarray


class Predictor:
    """A checkpoint's regressor on network inputs; writes each job's JSON, overlay, OBJ."""

    def __init__(self, checkpoint: str, device: str = "auto", refine: str = "none"):
        if refine not in REFINE_MODES:
            raise ValueError(f"refine must be one of {REFINE_MODES}, got {refine!r}")
        self.refine = refine
        self.device = pick_device(device)
        self.system, info = read_system(checkpoint, self.device)
        self.size = self.system.cfg.data.image_size
        self.faces = self.system.flame_layer.faces
        layer = self.system.flame_layer
        self.uvs = layer.uvs.cpu().numpy() if layer.has_uvs else None
        self.uv_faces = layer.uv_faces.cpu().numpy() if layer.has_uvs else None
        self.checkpoint = checkpoint
        #: what the weights have seen, and the warning their numbers on real photos need
        self.trained_on = training_data(self.system.cfg, info["extra"])
        self.warning = real_image_warning(self.trained_on)

    @torch.no_grad()
    def run(
        self, jobs: list[Job], out: str, crop_mode: str, meshes: bool = True
    ) -> list[Prediction]:
        """Predict a batch of jobs and write ``<name>.json``, ``<name>_overlay.png`` and
        (``meshes``) ``<name>.obj`` for each into ``out``; returns their records in order."""
        x = torch.stack(
            [torch.from_numpy(j.face.pixels).permute(2, 0, 1).float() / 255.0 for j in jobs]
        ).to(self.device)
        system, size = self.system, self.size
        pred = system.encode(x)
        geo = system.geometry(pred)
        lmk = project_landmarks(geo.landmarks, pred.scale, pred.trans, pred.rho)
        shaded = render_mesh(
            camera_vertices(geo.vertices), self.faces, pred.scale, pred.trans, pred.rho, size
        )
        refined = self._refined(jobs, pred) if self.refine == "fit" else {}
        results = []
        for i, job in enumerate(jobs):
            rho = float(pred.rho[i])
            if rho > 0:
                focal, tz = (float(v) for v in ppcam.pseudo_to_pinhole(pred.scale[i], pred.rho[i]))
            else:
                focal = tz = None  # orthographic: a camera at infinite distance
            ndc = lmk[i].cpu().double().numpy()
            # NDC of the crop -> crop pixels (centres at integers) -> source pixels
            px = job.face.crop.to_image((ndc + 1.0) * size / 2.0 - 0.5)
            record = {
                "image": job.path,
                "face_index": job.face.index,
                "crop_mode": crop_mode,
                "crop": job.face.crop.to_json(),
                "scale": float(pred.scale[i]),
                "trans": pred.trans[i].tolist(),
                "rho": rho,
                "focal_ndc": focal,
                "distance_m": tz,
                "global_pose": pred.global_pose[i].tolist(),
                "shape": pred.shape[i].tolist(),
                "expression": pred.expression[i].tolist(),
                "jaw_pose": pred.jaw_pose[i].tolist(),
                "eyelids": pred.eyelids[i].tolist(),
                "landmarks_ndc": lmk[i].tolist(),
                # pixel centres of the original image are at integer coordinates
                "landmarks_px": px.tolist(),
                "camera_mode": system.cfg.model.camera,
                "checkpoint": self.checkpoint,
                "trained_on": self.trained_on,
            }
            if self.warning:
                record["warning"] = self.warning
            if job.face.box is not None:
                record["detector_box_px"] = list(job.face.box.as_tuple())
                record["detector_score"] = job.face.box.score
                record["detector_source"] = job.face.box.source
                record["mesh_presence"] = job.face.presence
                record["detector_landmarks_px"] = job.face.landmarks.tolist()
            if self.refine == "fit":
                record["refined"] = refined.get(i, {"skipped": "no landmarks of the whole image"})
            record.update(job.extra)
            write_text(os.path.join(out, f"{job.name}.json"), json.dumps(record, indent=1))
            overlay(
                x[i].cpu(),
                shaded.image[i].cpu(),
                shaded.mask[i].cpu(),
                lmk[i].cpu(),
                os.path.join(out, f"{job.name}_overlay.png"),
            )
            if meshes:
                write_obj(
                    os.path.join(out, f"{job.name}.obj"),
                    geo.vertices[i].cpu().numpy(),
                    self.faces.cpu().numpy(),
                    uvs=self.uvs,
                    uv_faces=self.uv_faces,
                    producer="train.infer",
                )
            results.append(Prediction(record, px))
        return results

    def _refined(self, jobs: list[Job], pred) -> dict[int, dict]:
        """``--refine fit``: per job with whole-image landmarks (the detector's, or the
        image's landmark file for ``centre``/``none``), the refined block
        (:func:`train.infer.refine.refine_faces`), keyed by the job's position."""
        picks = [(i, job_landmarks(j)) for i, j in enumerate(jobs) if j.size is not None]
        picks = [(i, p) for i, p in picks if p is not None]
        if not picks:
            return {}
        rows = torch.tensor([i for i, _ in picks])
        fields = ("scale", "trans", "rho", "global_pose", "shape", "expression", "jaw_pose")
        rows = rows.to(self.device)
        prediction = {k: getattr(pred, k)[rows].float().cpu() for k in (*fields, "eyelids")}
        blocks = refine_faces(
            prediction,
            [p for _, p in picks],
            [jobs[i].face.crop for i, _ in picks],
            [jobs[i].size for i, _ in picks],
            self.system.flame_layer,
        )
        return {i: block for (i, _), block in zip(picks, blocks)}


def job_landmarks(job: Job) -> np.ndarray | None:
    """The 68 landmarks of a job's face in its whole image (0-based pixels): the
    detector's, else (``centre``/``none``) the image's own landmark file, if any."""
    if job.face.landmarks is not None:
        return np.asarray(job.face.landmarks, dtype=np.float64)
    files = landmark_files(job.path)
    if len(files) != 1:
        return None
    try:
        points = read_landmarks(files[0][1])
    except (OSError, ValueError) as exc:
        print(f"warning: {files[0][1]}: {exc}; not refined", file=sys.stderr)
        return None
    return points


def image_jobs(
    path: str, mode: str, size: int, detector: FaceDetector | None, scale: float
) -> tuple[np.ndarray, list[Job]]:
    """Read one image and cut it into jobs; raises ``ValueError`` (with why) to skip it."""
    image = read_image(path)
    crops = face_crops(image, mode, size, detector, scale)
    stem = os.path.splitext(os.path.basename(path))[0]
    if not crops:
        h, w = image.shape[:2]
        raise ValueError(f"no face found ({w}x{h} px)")
    size = (image.shape[1], image.shape[0])
    if mode == "detect":
        return image, [Job(path, f"{stem}_{c.index}", c, path, size=size) for c in crops]
    return image, [Job(path, stem, crops[0], path, size=size)]


def infer(
    inputs: list[str],
    checkpoint: str,
    out: str,
    batch: int = 16,
    device: str = "auto",
    crop: str = "centre",
    detector: FaceDetector | None = None,
    scale: float = SCALE_INFER,
    sequence: bool = False,
    refine: str = "none",
):
    """Run the model on every image; returns ``(written_names, skipped)``.

    ``crop``: ``detect`` (one result per face, needs a detector: ``detector`` or the
    ``faces`` extra's dlib), ``centre`` or ``none`` (train.faces.input_crops). An unreadable
    file, a decompression bomb, an image without a face and a video (see
    :func:`infer_sequence`) are skipped with the reason; the batch goes on. Video files,
    and with ``sequence`` every folder, are run as sequences (:func:`infer_sequence`).
    ``refine="fit"`` adds to each image's JSON a ``refined`` block: the prediction
    refined by the landmark fit with rho's 95 % interval (:mod:`train.infer.refine`;
    not for sequences).
    """
    predictor = Predictor(checkpoint, device, refine)
    if predictor.warning:
        print(f"warning: {predictor.warning}", file=sys.stderr)
    folders = [i for i in inputs if sequence and os.path.isdir(i)]
    paths, skipped = list_images([i for i in inputs if i not in folders])
    videos = folders + [p for p in paths if is_video(p)]
    paths = [p for p in paths if not is_video(p)]
    os.makedirs(out, exist_ok=True)
    written: list[str] = []
    pending: list[Job] = []
    images: dict[str, np.ndarray] = {}

    def flush():
        if not pending:
            return
        results = predictor.run(pending, out, crop)
        written.extend(j.name for j in pending)
        if crop == "detect":
            by_image: dict[str, list[np.ndarray]] = {}
            for job, res in zip(pending, results):
                by_image.setdefault(job.path, []).append(res.landmarks_px)
            for path, points in by_image.items():
                stem = os.path.splitext(os.path.basename(path))[0]
                draw_faces(images[path], points, path=os.path.join(out, f"{stem}_faces.png"))
        pending.clear()
        images.clear()

    for path in tqdm(paths, desc="infer", unit="image", disable=not paths):
        try:
            image, jobs = image_jobs(path, crop, predictor.size, detector, scale)
        except (ImageError, ValueError, OSError) as exc:
            skipped.append((path, str(exc)))
            continue
        images[path] = image
        pending.extend(jobs)
        if len(pending) >= batch:
            flush()
    flush()
    for source in videos:
        try:
            names, _ = infer_sequence(source, predictor, out, batch, detector, scale)
        except (ValueError, ImportError) as exc:
            skipped.append((source, str(exc)))
            continue
        written.extend(names)
    report_skipped(skipped)
    write_text(os.path.join(out, "skipped.txt"), "".join(f"{p}\t{why}\n" for p, why in skipped))
    return written, skipped


def infer_sequence(
    source: str,
    predictor: Predictor,
    out: str,
    batch: int = 16,
    detector: FaceDetector | None = None,
    scale: float = SCALE_INFER,
    step: int = 1,
    smoothing: float = 0.5,
) -> tuple[list[str], dict]:
    """Track one face through a video file or a folder of frames and run the model on
    each frame's smoothed crop; writes per frame ``<stem>_<frame>.json`` and
    ``_overlay.png`` and ``<stem>_summary.json`` (median rho and spread, frames with a
    face, held and lost). Returns the written names and the summary. ``ValueError`` /
    ``ImportError`` (PyAV missing) name the source when it cannot be read at all."""
    from train.faces.video import FaceTracker, folder_frames, video_frames

    stem = os.path.basename(os.path.normpath(source))
    stem = os.path.splitext(stem)[0] if os.path.isfile(source) else stem
    frames = folder_frames(source, step) if os.path.isdir(source) else video_frames(source, step)
    tracker = FaceTracker(predictor.size, detector, scale, smoothing=smoothing)
    written, rho, lost, held, n_frames = [], [], [], 0, 0
    pending: list[Job] = []

    def flush():
        if pending:
            for res in predictor.run(pending, out, "track", meshes=False):
                rho.append(res.record["rho"])
            written.extend(j.name for j in pending)
            pending.clear()

    for frame in tqdm(frames, desc=f"track {stem}", unit="frame"):
        n_frames += 1
        step_ = tracker.update(frame.pixels)
        if step_.crop is None:
            lost.append(frame.name)
            continue
        held += step_.held
        face = FaceCrop(
            warp(frame.pixels, step_.crop),
            step_.crop,
            0,
            step_.face.box if step_.face else None,
            step_.face.landmarks if step_.face else None,
        )
        extra = {"frame": frame.index, "frame_name": frame.name, "time_s": frame.time_s}
        extra["held"] = step_.held
        pending.append(Job(source, f"{stem}_{frame.name}", face, source, extra))
        if len(pending) >= batch:
            flush()
    flush()
    if n_frames == 0:
        raise ValueError(f"{source}: no frames")
    summary = {
        "source": source,
        "frames": n_frames,
        "frames_with_result": len(written),
        "frames_held": held,
        "frames_lost": lost,
        "rho": sequence_rho_summary(rho),
        "rho_per_frame": rho,
        "smoothing": smoothing,
        "scale": scale,
        "checkpoint": predictor.checkpoint,
        "camera_mode": predictor.system.cfg.model.camera,
        "trained_on": predictor.trained_on,
    }
    if predictor.warning:
        summary["warning"] = predictor.warning
    write_text(os.path.join(out, f"{stem}_summary.json"), json.dumps(summary, indent=1))
    return written, summary
