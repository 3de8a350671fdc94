"""FLAME head model layer, safe model loading and a bundled stand-in head.

import flame
model = flame.load_model("bundled")          # or a real FLAME file
layer = flame.FLAME(model, n_shape=300, n_expr=100)
out = layer(shape=beta, expression=psi, jaw_pose=jaw)
out.vertices   # [B, V, 3] metres, x left / y up / z out of the face
out.landmarks  # [B, 68, 3]
"""

from . import cli, lbs
from .io import load_landmark_embedding, load_model, mode_names
from .layer import FLAME, FlameOutput
from .model import FlameModel
from .safe_pickle import UnsafePickleError
from .storage import save_model

__all__ = [
    "FLAME",
    "cli",
    "lbs",
    "FlameModel",
    "FlameOutput",
    "UnsafePickleError",
    "load_landmark_embedding",
    "load_model",
    "mode_names",
    "save_model",
]
