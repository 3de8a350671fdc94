"""Constants of the rasterizer contract (see ``minirast/CONTRACT.md``).

Both backends (torch and Triton) receive these values as arguments, so the
two implement one rule set.
"""

#: A triangle with any vertex whose clip ``w`` is ``<= EPS_W`` is dropped (at or behind
#: the camera plane; its projection would be undefined or flipped).
EPS_W: float = 1e-6

#: Depth written to background pixels (``tri_id == -1``): finite, so it never poisons
#: gradients or reductions; use ``tri_id >= 0`` (``Fragments.mask``) to tell pixels apart.
BACKGROUND_DEPTH: float = 0.0

#: Culling codes passed to the backends: 0 none, -1 drop signed NDC area > 0 (back faces,
#: what ``cull_backfaces=True`` selects), 1 drop signed NDC area < 0.
CULL_NONE: int = 0
CULL_BACK: int = -1
CULL_FRONT: int = 1

#: Largest height or width accepted.
MAX_RESOLUTION: int = 16384

#: Largest ``B * H * W`` accepted: the torch backend keeps one int64 depth/id key per
#: pixel plus the float outputs (about 28 bytes per pixel), so 2**27 pixels is ~3.5 GiB.
MAX_PIXELS: int = 1 << 27

#: Largest ``B * F`` accepted (per-triangle setup arrays of ~100 bytes each).
MAX_TRIANGLES: int = 1 << 25

#: Screen tile edge in pixels for the torch backend's triangle binning.
TILE: int = 16

#: Torch backend memory budget. Each visible triangle gets one pixel window (its box,
#: rounded up to powers of two) or, when its box exceeds TILE x TILE, one TILE x TILE
#: window per screen tile it touches; at most MAX_WINDOWS windows (~80 bytes each) are
#: built, and windows are tested CANDIDATE_CHUNK pixels (~60 bytes each) at a time.
MAX_WINDOWS: int = 1 << 23
CANDIDATE_CHUNK: int = 1 << 18
