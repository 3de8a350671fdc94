"""Synthetic face data with known ground truth (real images: :mod:`train.data.folder`).

Three regimes mirror the paper's datasets (``hmc``: head-mounted camera at
15-30 cm; ``studio``: MEAD-like, 0.6-1.0 m; ``wild``: CelebA/FFHQ-like,
1-3 m with larger head rotations). Each sample is the bundled head (or a
user's FLAME) with random shape, expression, jaw, eyelids, skin albedo,
lighting and a textured background, rendered with minirast under a true
pinhole camera. Its ground truth: clean and detector-noisy 2D landmarks (NDC),
the face mask, the FLAME parameters and the camera, with the true
``rho = 1 / t_z`` (docs/design.md section 3).

Every sample is a pure function of ``(seed, regime, split, index)``: splits use
disjoint random streams, so train, val and test never share a sample, and a
sample is the same whether generated alone, in a batch, on the fly or from a
cached shard.

``python -m train.data build --regime hmc --n 20000`` caches a split to
safetensors shards; ``python -m train.data preview`` writes a PNG grid
(:mod:`train.data.__main__`).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from tqdm import tqdm

import flame
from train.data.dense_points import dense_fields
from train.data.seeding import seeded
from train.render.head import camera_vertices, project_landmarks, render_mesh
from train.render.points import PointModel
from train.units import JAW, REFERENCE_PIXELS, ndc_per_pixel

SPLITS = ("train", "val", "test")
#: Detectors struggle most on the jaw line: its landmark noise is this much larger.
JAW_NOISE_FACTOR = 1.8
#: Shape coefficients are drawn from N(0, SHAPE_STD^2).
SHAPE_STD = 0.8
#: Expression coefficient k has std ``regime.expression_std * exp(-k / EXPRESSION_DECAY)``.
EXPRESSION_DECAY = 20.0


@dataclasses.dataclass(frozen=True)
class Regime:
    """How one kind of footage is captured. Angles in degrees, distances in metres."""

    name: str
    distance_m: tuple[float, float]  # camera to the face (centroid of the landmarks)
    face_span: tuple[float, float]  # fraction of the image width the face spans
    max_yaw: float
    max_pitch: float
    max_roll: float
    expression_std: float
    jaw_open_max: float  # radians
    landmark_noise_px: float  # detector noise, std in pixels at 224 px

    def rho_range(self, face_depth: float) -> tuple[float, float]:
        """True rho = 1 / t_z, t_z = distance to the face + the face's depth in front
        of the model origin (``face_depth``, metres)."""
        return (1.0 / (self.distance_m[1] + face_depth), 1.0 / (self.distance_m[0] + face_depth))


REGIME_SPECS = {
    "hmc": Regime("hmc", (0.15, 0.30), (0.50, 0.67), 12, 10, 6, 1.4, 0.40, 3.0),
    "studio": Regime("studio", (0.6, 1.0), (0.45, 0.60), 25, 12, 8, 1.0, 0.25, 1.5),
    "wild": Regime("wild", (1.0, 3.0), (0.40, 0.60), 45, 20, 12, 1.0, 0.25, 1.5),
}


def _axis_angle_from_euler(yaw, pitch, roll) -> torch.Tensor:
    """Axis-angle of ``R = R_y(yaw) R_x(pitch) R_z(roll)`` in the model frame (radians)."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
    rx = torch.tensor([[1, 0, 0], [0, cp, -sp], [0, sp, cp]], dtype=torch.float64)
    rz = torch.tensor([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]], dtype=torch.float64)
    r = ry @ rx @ rz
    angle = math.acos(max(-1.0, min(1.0, (float(r.trace()) - 1) / 2)))
    if angle < 1e-9:
        return torch.zeros(3)
    axis = torch.stack([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return (axis / (2 * math.sin(angle)) * angle).float()


def sample_parameters(
    regime: Regime, seed: int, split: str, index: int, n_shape: int, n_expr: int
) -> dict[str, torch.Tensor]:
    """The random parameters of one sample (a pure function of its identity)."""
    g = seeded(seed, regime.name, split, index)

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=g)

    shape = torch.randn(n_shape, generator=g) * SHAPE_STD
    expression = torch.randn(n_expr, generator=g) * regime.expression_std
    expression *= torch.exp(-torch.arange(n_expr) / EXPRESSION_DECAY)  # leading modes dominate
    jaw = torch.zeros(3)
    jaw[0] = float(uniform(0.0, regime.jaw_open_max)) * float(torch.rand(1, generator=g) < 0.7)
    eyelids = uniform(0.0, 1.0, 2) * (torch.rand(1, generator=g) < 0.3)
    deg = math.pi / 180
    yaw = float(uniform(-regime.max_yaw, regime.max_yaw)) * deg
    pitch = float(uniform(-regime.max_pitch, regime.max_pitch)) * deg
    roll = float(uniform(-regime.max_roll, regime.max_roll)) * deg
    distance = float(uniform(*regime.distance_m))
    span = float(uniform(*regime.face_span))
    jitter = uniform(-0.04, 0.04, 2)  # face centre offset, fraction of the image width
    skin = torch.tensor([0.80, 0.60, 0.50]) * uniform(0.45, 1.15) + uniform(-0.06, 0.06, 3)
    light = torch.cat([uniform(-0.6, 0.6, 2), torch.tensor([-1.0])])
    return {
        "shape": shape,
        "expression": expression,
        "jaw_pose": jaw,
        "eyelids": eyelids,
        "global_pose": _axis_angle_from_euler(yaw, pitch, roll),
        "distance": torch.tensor(distance),
        "span": torch.tensor(span),
        "jitter": jitter,
        "skin": skin.clamp(0.05, 1.0),
        "light_dir": light / light.norm(),
        "ambient": uniform(0.3, 0.6),
        "albedo_phase": uniform(0.0, 2 * math.pi, 3),
        "background_seed": torch.randint(0, 2**31 - 1, (1,), generator=g),
        "noise_seed": torch.randint(0, 2**31 - 1, (1,), generator=g),
    }


def regime_spec(regime: str, split: str) -> Regime:
    """The :class:`Regime` named ``regime``, after checking ``regime`` and ``split``."""
    if regime not in REGIME_SPECS:
        raise ValueError(f"regime must be one of {sorted(REGIME_SPECS)}, got {regime!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return REGIME_SPECS[regime]


def capture_parameters(
    regime: Regime, seed: int, split: str, sequence: int, frame: int, n_shape: int, n_expr: int
) -> dict[str, torch.Tensor]:
    """One frame of a capture (a pure function of its identity): the frame's own draw
    (expression, jaw, eyelids, head pose, framing jitter, lighting, noise) with the
    capture's subject and camera (shape, distance, face span) drawn once per sequence.
    The streams are disjoint from the single images' of the same split."""
    own = sample_parameters(regime, seed, f"{split}/capture/{sequence}", frame, n_shape, n_expr)
    subject = sample_parameters(regime, seed, f"{split}/capture", sequence, n_shape, n_expr)
    for key in ("shape", "distance", "span"):
        own[key] = subject[key]
    return own


def textured_background(seeds: torch.Tensor, size: int) -> torch.Tensor:
    """Smooth random textures ``[B,3,H,W]``: low-resolution colour noise, upsampled,
    plus a few oriented stripes; one per seed."""
    images = []
    for s in seeds.tolist():
        g = torch.Generator().manual_seed(int(s))
        low = torch.rand(1, 3, 6, 6, generator=g)
        img = torch.nn.functional.interpolate(
            low, size=(size, size), mode="bicubic", align_corners=False
        )
        yy, xx = torch.meshgrid(
            torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij"
        )
        theta = float(torch.rand(1, generator=g)) * math.pi
        freq = 3 + 10 * float(torch.rand(1, generator=g))
        stripes = torch.sin(freq * (math.cos(theta) * xx + math.sin(theta) * yy) * math.pi)
        img = img + 0.12 * stripes * torch.rand(3, 1, 1, generator=g)
        images.append(img[0].clamp(0, 1))
    return torch.stack(images)


def vertex_albedo(vertices: torch.Tensor, skin: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """Per-vertex skin colour ``[B,V,3]`` with a smooth low-frequency variation."""
    wave = torch.sin(vertices[..., 0:1] * 40 + phase[:, None, 0:1])
    wave = wave + torch.sin(vertices[..., 1:2] * 30 + phase[:, None, 1:2])
    wave = wave + torch.sin(vertices[..., 2:3] * 50 + phase[:, None, 2:3])
    return (skin[:, None, :] * (1.0 + 0.06 * wave)).clamp(0.0, 1.0)


class FaceGenerator:
    """Renders synthetic samples of the regimes with a FLAME layer.

    Args:
        flame_model: ``"bundled"`` or a path to a FLAME file (see ``flame.load_model``).
        size: image height and width in pixels.
        n_shape, n_expr: coefficients sampled (at most what the model holds).
        seed: the data seed (the ``seed`` of the sample identity).
        dense: also emit the dense points and irises (:mod:`train.data.dense_points`;
            off by default: the default samples stay exactly as they were).
    """

    def __init__(
        self,
        flame_model: str = "bundled",
        size: int = REFERENCE_PIXELS,
        n_shape: int = 50,
        n_expr: int = 50,
        seed: int = 0,
        dense: bool = False,
    ) -> None:
        if size < 16:
            raise ValueError(f"size must be >= 16 pixels, got {size}")
        self.layer = flame.FLAME(flame_model, n_shape=n_shape, n_expr=n_expr)
        if not self.layer.has_landmarks:
            raise ValueError(f"the FLAME model {flame_model!r} has no landmark embedding")
        self.size, self.seed = size, seed
        self.n_shape, self.n_expr = self.layer.n_shape, self.layer.n_expr
        self.flame_name = str(flame_model)
        self.points = PointModel(self.layer) if dense else None
        with torch.no_grad():
            neutral = self.layer().landmarks[0]
        #: depth of the landmark centroid in front of the model origin (metres)
        self.face_depth = float(neutral[:, 2].mean())
        #: jaw-line width of the neutral face (metres), what `face_span` frames
        self.face_width = float(neutral[:, 0].max() - neutral[:, 0].min())

    @torch.no_grad()
    def generate(self, regime: str, split: str, indices: list[int]) -> dict[str, torch.Tensor]:
        """Render the samples ``indices`` of ``(regime, split)``; a dict of batched tensors."""
        spec = regime_spec(regime, split)
        params = [
            sample_parameters(spec, self.seed, split, i, self.n_shape, self.n_expr) for i in indices
        ]
        return self._make(spec, params, indices, render=True)

    @torch.no_grad()
    def generate_capture(
        self, regime: str, split: str, sequence: int, frames: list[int], render: bool = True
    ) -> dict[str, torch.Tensor]:
        """Frames ``frames`` of capture ``sequence`` of ``(regime, split)``: one subject
        (shape) at one camera distance and framing, the rest drawn per frame
        (:func:`capture_parameters`). As :meth:`generate`, plus ``"sequence" [F]``;
        ``render=False`` leaves out ``image`` and ``mask`` (landmarks and truth only)."""
        spec = regime_spec(regime, split)
        params = [
            capture_parameters(spec, self.seed, split, sequence, f, self.n_shape, self.n_expr)
            for f in frames
        ]
        out = self._make(spec, params, frames, render=render)
        out["sequence"] = torch.full((len(frames),), sequence)
        return out

    def generate_captures(
        self,
        regimes: tuple[str, ...],
        split: str,
        sequences: int,
        frames: int,
        render: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Captures ``0..sequences-1`` of ``frames`` frames each for every regime of
        ``regimes``, concatenated in that order (:meth:`generate_capture`), with
        ``"capture" [N]``: a running id, one per (regime, sequence)."""
        parts = [
            self.generate_capture(regime, split, seq, list(range(frames)), render=render)
            for regime in regimes
            for seq in range(sequences)
        ]
        data = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        data["capture"] = torch.arange(len(parts)).repeat_interleave(frames)
        return data

    def _make(self, spec: Regime, params: list[dict], indices: list[int], render: bool) -> dict:
        """Pose the head, place the camera and (``render``) draw the samples ``params``."""
        p = {k: torch.stack([q[k] for q in params]) for k in params[0]}
        out = self.layer(
            shape=p["shape"],
            expression=p["expression"],
            global_pose=p["global_pose"],
            jaw_pose=p["jaw_pose"],
            eyelids=p["eyelids"] if self.layer.has_eyelids else None,
        )
        # A true pinhole camera looking at the face from `distance`; in ppcam terms
        # rho = 1 / t_z, and S frames the face so it spans `span` of the image width.
        tz = p["distance"] + self.face_depth
        rho = 1.0 / tz
        lmk_cam = camera_vertices(out.landmarks)
        centre = lmk_cam.mean(1)  # [B,3]
        w_face = 1.0 + rho * centre[:, 2]
        scale = 2.0 * p["span"] / self.face_width * w_face
        trans = -centre[:, :2] + p["jitter"] * 2.0 * w_face[:, None] / scale[:, None]
        p.update(scale=scale, trans=trans, rho=rho)
        landmarks = project_landmarks(out.landmarks, p["scale"], p["trans"], p["rho"])
        noisy = landmarks + self._landmark_noise(spec, p["noise_seed"][:, 0])
        sample = {
            "landmarks": landmarks,
            "landmarks_noisy": noisy,
            "shape": p["shape"],
            "expression": p["expression"],
            "jaw_pose": p["jaw_pose"],
            "eyelids": p["eyelids"],
            "global_pose": p["global_pose"],
            "scale": p["scale"],
            "trans": p["trans"],
            "rho": p["rho"],
            "focal": p["scale"] / p["rho"],
            "tz": tz,
            "distance": p["distance"],
            "regime": torch.full((len(indices),), list(REGIME_SPECS).index(spec.name)),
            "index": torch.tensor(indices),
        }
        if self.points is not None:
            seeds = p["noise_seed"][:, 0]
            sample.update(dense_fields(self.points, p, spec.landmark_noise_px, seeds))
        if not render:
            return sample
        verts = camera_vertices(out.vertices)
        albedo = vertex_albedo(out.vertices, p["skin"], p["albedo_phase"])
        background = textured_background(p["background_seed"][:, 0], self.size)
        rendered = render_mesh(
            verts,
            self.layer.faces,
            p["scale"],
            p["trans"],
            p["rho"],
            self.size,
            albedo=albedo,
            light_dir=p["light_dir"],
            ambient=p["ambient"],
            background=background,
        )
        image = (rendered.image * 255).round().to(torch.uint8)
        return {"image": image, "mask": rendered.mask.to(torch.uint8), **sample}

    def _landmark_noise(self, spec: Regime, seeds: torch.Tensor) -> torch.Tensor:
        """Detector-like noise in NDC: isotropic, larger on the jaw line (detectors
        struggle most there), scaled from pixels at 224 px."""
        out = []
        for s in seeds.tolist():
            g = torch.Generator().manual_seed(int(s))
            sigma = torch.full((68, 1), spec.landmark_noise_px)
            sigma[JAW] *= JAW_NOISE_FACTOR
            out.append(torch.randn(68, 2, generator=g) * sigma * ndc_per_pixel(REFERENCE_PIXELS))
        return torch.stack(out)


def generate_split(
    generator: FaceGenerator,
    regime: str,
    split: str,
    n: int,
    batch: int = 32,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Samples ``0..n-1`` of one split, rendered in batches with a progress bar."""
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    parts = []
    starts = range(0, n, batch)
    for start in tqdm(
        starts, desc=f"{regime}/{split}", unit="batch", disable=not progress, leave=False
    ):
        parts.append(generator.generate(regime, split, list(range(start, min(n, start + batch)))))
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
