"""Constants of the rasterizer contract (see ``minirast/CONTRACT.md``).

Both backends (torch and Triton) receive these values as arguments, so the
two implement one rule set.
"""

#: A triangle with any vertex whose clip ``w`` is ``<= EPS_W`` is dropped (at or behind
#: the camera plane; its projection would be undefined or flipped).
EPS_W: float = 1e-6

#: A triangle whose signed NDC area ``A`` is at most this fraction of the sum of its two
#: products' magnitudes, ``|(X1-X0)(Y2-Y0)| + |(X2-X0)(Y1-Y0)|``, is dropped: zero up to
#: float32 rounding (three vertices on a line, coincident ones, or a line made a sliver by
#: the reciprocal ``1/w``), where barycentrics would be rounding noise.
DEGENERATE_AREA: float = 2.0**-20

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

#: Torch backend memory budget: triangles are scanned ROW_CHUNK (triangle, pixel row)
#: spans at a time (~150 bytes each) and their pixels tested CANDIDATE_CHUNK at a time
#: (~120 bytes each), so the working memory stays near 100 MiB at any size.
ROW_CHUNK: int = 1 << 18
CANDIDATE_CHUNK: int = 1 << 19

#: Texture filter modes (nvdiffrast's names), and "auto": trilinear when ``uv_da`` is
#: given, else bilinear.
TEXTURE_FILTERS: tuple[str, ...] = (
    "nearest",
    "linear",
    "linear-mipmap-nearest",
    "linear-mipmap-linear",
)
#: Texture boundary modes: repeat (filtering across the seam), clamp to the edge texels'
#: centres, zero outside.
TEXTURE_BOUNDARIES: tuple[str, ...] = ("wrap", "clamp", "zero")
