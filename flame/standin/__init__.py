"""The bundled stand-in head: a FLAME-format model of our own making.

Real FLAME weights may not be redistributed, so this package builds, from
nothing but code, a head in the same format and of FLAME-like size that every
command can use offline:

- a closed surface (about 5k vertices, 10k faces) traced by rays
  from a point behind the mouth onto an implicit head (smooth unions of
  ellipsoids and round cones): cranium, face, tapered jaw and chin, neck,
  cheekbones, brow ridge, a nose standing 3.3 cm out of the cheeks (2 cm in
  front of the subnasale), eye sockets with eyeballs, lips with a folded-in
  mouth that opens with the jaw, and ears at the sides; metres, adult
  proportions (about 15 cm across the cheekbones, 15 cm head breadth, 24 cm
  crown to chin);
- model frame as FLAME: x to the subject's left, y up, z out of the face,
  origin between the ear canals (so the face lies within about 0.13 m of it);
- 300 shape and 100 expression modes, each a smooth displacement field of one
  standard deviation, sorted by variance; named modes first (head size, face
  width, nose size, jaw width, ... and mouth open, smile, brow raise, ...), then
  smooth random fields (names in ``metadata["shape_mode_names"]`` and
  ``metadata["expression_mode_names"]``, see ``flame.mode_names``);
- 5 joints (global at the neck base, neck at the skull base, jaw at the
  temporomandibular axis, two eyes at the eyeball centres) regressed from
  vertices, smooth skinning weights, small pose correctives;
- eyelid blendshapes (left, right; 1 = closed);
- a 68-point landmark embedding: 51 static points placed on the brows, nose,
  eyes and lips, and a 17-point jaw contour traced on the silhouette for each
  of DECA's 79 yaw bins;
- a MediaPipe embedding of SMIRK's 105 points (brows, eyes, nose, lips);
- vertex masks of regions (face, nose, lips, eyeballs, ears, neck, scalp,
  mouth interior, eye regions);
- a UV layout (``uvs``, ``uv_faces``; convention of :mod:`flame.uv`): the head
  unwrapped around its vertical axis with the seam down the back, the face at full
  texel density, and the folded-in mouth as a second island.

One module per stage of the build:

- :mod:`.anatomy`: the shared anchors (lip line, eyes, joints);
- :mod:`.fields`: smooth scalar fields (smoothstep, Gaussians) the stages use;
- :mod:`.implicit`: the implicit head (:func:`head_sdf`);
- :mod:`.mesh`: the neutral mesh traced onto it, with the mouth folded in;
- :mod:`.skinning`: skinning weights, joint regressor, pose correctives;
- :mod:`.bases`: random fields of the bases and their ordering by variance;
- :mod:`.shapes`: the named shape modes;
- :mod:`.expressions`: the named expression modes and the eyelids;
- :mod:`.landmarks`: the static landmarks and the per-yaw jaw contour;
- :mod:`.mediapipe`: SMIRK's 105 MediaPipe points, placed where MediaPipe finds them
  on renders of the head;
- :mod:`.masks`: the region masks;
- :mod:`.uv`: the UV layout;
- :mod:`.build`: all of them, in order, into a ``FlameModel`` (:func:`build_standin`);
- :mod:`.cache`: the cache file and :func:`bundled_model`.

The construction is deterministic (fixed seeds). :func:`bundled_model`
builds it once (about 3 s on 2 CPU cores) and caches it as safetensors in the user cache
directory (``$MINIRAST_CACHE`` or ``$XDG_CACHE_HOME/minirast`` or
``~/.cache/minirast``), written atomically; the file's name holds the
construction's :data:`VERSION` and a hash of every module of this package
(:func:`package_digest`), so editing any stage builds the head anew.
"""

from __future__ import annotations

from .anatomy import EYE_CENTRES, EYE_RADIUS, JOINTS, MOUTH_Y, PARENTS, RAY_CENTRE
from .build import N_EXPR, N_SHAPE, VERSION, build_standin
from .cache import bundled_model, cache_path, package_digest
from .implicit import head_sdf
from .landmarks import yaw_of_bin
from .mesh import MOUTH_DELTA, N_DOWN, N_LON, N_UP, vertex_normals

__all__ = [
    "EYE_CENTRES",
    "EYE_RADIUS",
    "JOINTS",
    "MOUTH_DELTA",
    "MOUTH_Y",
    "N_DOWN",
    "N_EXPR",
    "N_LON",
    "N_SHAPE",
    "N_UP",
    "PARENTS",
    "RAY_CENTRE",
    "VERSION",
    "build_standin",
    "bundled_model",
    "cache_path",
    "head_sdf",
    "package_digest",
    "vertex_normals",
    "yaw_of_bin",
]
