"""OpenGL on Mesa's llvmpipe (a CPU software rasterizer) as a peer for the visibility job.

``moderngl`` opens a standalone EGL context (no window, no X server); the renderer
must be llvmpipe, else the peer refuses to run (a hardware GPU is not the CPU peer).
It draws minirast's own clip positions ``(x, y, z, w)`` (ppcam's ``to_clip``) and reads
back, per pixel, the triangle id, the perspective-correct barycentrics and the depth
``z/w`` -- what ``minirast.rasterize`` returns.

Conventions, matched exactly:

- **Orientation.** minirast's NDC has (-1, -1) at the top-left corner and y growing
  downwards, so image row r is at NDC y = (2r+1)/H - 1. GL maps NDC y = -1 to window
  row 0 (the bottom of the window), and ``glReadPixels`` returns window row 0 first.
  The two flips cancel: feeding our y unchanged and reading rows in order gives row r
  at the same NDC y as ours, with no flip anywhere. Columns agree directly; GL
  samples at pixel centres ((2c+1)/W - 1 in NDC) without multisampling, like ours,
  after snapping each vertex to 1/256 pixel (llvmpipe's 8 subpixel bits):
  pixel centres within about 1/512 pixel of an edge can go to the other side, so
  agreement with minirast is just below 100 % (:func:`subpixel_snap` reproduces it).
  Culling is off (ours covers both windings), so GL's front-face convention plays
  no part.
- **Depth and clipping.** GL clips to -w <= z <= w; ours only drops faces with a
  vertex at w <= 1e-6 (``EPS_W``). The vertex shader therefore writes
  ``z' = a z + b w`` with ``a > 0``, ``b`` chosen per image so that the vertices'
  ``z/w`` span [-0.999, 0.999]: the same ordering as our ``z/w`` (linear in screen
  space in both), no face clipped by the near/far planes, and the whole depth buffer's
  resolution spent on the mesh. A geometry shader drops faces with a vertex at
  ``w <= 1e-6``, as ours does. The depth test is LESS and faces are drawn in index
  order, so exact ties go to the lower face index, as ours.
- **Outputs.** Triangle id in an R32I attachment (``gl_PrimitiveID + 1``, cleared to 0,
  read back minus one: -1 is background); barycentrics as a perspective-correct
  varying (GL's default interpolation, like ours) and depth ``z/w`` as a
  ``noperspective`` varying (linear in screen space, like ours) in an RGBA32F
  attachment.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os

import numpy as np
import torch

from minirast import EPS_W

#: How to get this peer, for the report's peer notes.
INSTALL = (
    "`pip install moderngl` and `apt-get install libegl-mesa0 libgl1-mesa-dri` (Debian/Ubuntu)"
)
#: The vertices' z/w are mapped onto [-DEPTH_SPAN, DEPTH_SPAN] of GL's clip volume.
DEPTH_SPAN = 0.999
#: EGL devices tried for a llvmpipe renderer.
MAX_DEVICES = 8

VERTEX_SHADER = """
#version 330
in vec4 in_clip;
uniform vec2 depth_map;  // NDC depth = depth_map.x * z/w + depth_map.y
out vec4 v_clip;
void main() {
    v_clip = in_clip;
    gl_Position = vec4(in_clip.xy, depth_map.x * in_clip.z + depth_map.y * in_clip.w, in_clip.w);
}
"""

GEOMETRY_SHADER = """
#version 330
layout(triangles) in;
layout(triangle_strip, max_vertices = 3) out;
in vec4 v_clip[];
out vec3 g_bary;
noperspective out float g_depth;
void main() {
    // minirast drops a face with a vertex at w <= EPS_W
    if (v_clip[0].w <= EPS_W || v_clip[1].w <= EPS_W || v_clip[2].w <= EPS_W) return;
    for (int k = 0; k < 3; ++k) {
        gl_Position = gl_in[k].gl_Position;
        gl_PrimitiveID = gl_PrimitiveIDIn;
        g_bary = vec3(k == 0, k == 1, k == 2);
        g_depth = v_clip[k].z / v_clip[k].w;
        EmitVertex();
    }
    EndPrimitive();
}
""".replace("EPS_W", repr(float(EPS_W)))

FRAGMENT_SHADER = """
#version 330
in vec3 g_bary;
noperspective in float g_depth;
layout(location = 0) out int out_id;
layout(location = 1) out vec4 out_attr;
void main() {
    out_id = gl_PrimitiveID + 1;
    out_attr = vec4(g_bary, g_depth);
}
"""


def mesa_egl_available() -> bool:
    """Whether Mesa's EGL driver library (``libEGL_mesa``, Debian's ``libegl-mesa0``) is
    installed: without it no llvmpipe context can exist; with it, failing to open one
    is a bug to report, not a missing peer."""
    return ctypes.util.find_library("EGL_mesa") is not None


def is_software_renderer(renderer: str) -> bool:
    """Whether a ``GL_RENDERER`` string names Mesa's CPU rasterizer."""
    return "llvmpipe" in renderer.lower()


def load_triton_first() -> None:
    """Import Triton's native library (when installed) before Mesa loads its own libLLVM.

    llvmpipe brings the system's libLLVM into the process with its symbols global;
    importing ``triton`` after that crashes (a segmentation fault while
    ``triton._C.libtriton`` loads, presumably its bundled LLVM binding to the system
    LLVM's symbols). In the other order both work, so the peer loads Triton first:
    minirast's Triton backend, its interpreter smoke test and the kernel resource
    table still run after the peer in one process.
    """
    if importlib.util.find_spec("triton") is None:
        return
    try:
        import triton  # noqa: F401
    except Exception:
        pass  # a Triton that does not import is minirast's concern, reported elsewhere


def open_context(moderngl):
    """A standalone EGL context on llvmpipe; ``RuntimeError`` naming the renderers found
    when every EGL device is a hardware GPU."""
    load_triton_first()
    found = []
    for index in range(MAX_DEVICES):
        try:
            ctx = moderngl.create_context(standalone=True, backend="egl", device_index=index)
        except Exception as exc:
            if found and "device index" in str(exc):
                break  # no more devices
            raise
        renderer = ctx.info["GL_RENDERER"]
        if is_software_renderer(renderer):
            return ctx
        found.append(renderer)
        ctx.release()
    raise RuntimeError(
        f"the EGL devices' OpenGL renderers are {found}: hardware, not Mesa's llvmpipe, so not "
        "a CPU peer (install libegl-mesa0 libgl1-mesa-dri for llvmpipe)"
    )


class LlvmpipePeer:
    """OpenGL 3.3 on Mesa's llvmpipe through moderngl: triangle id, barycentrics, depth."""

    name = "OpenGL llvmpipe (CPU)"
    short = "llvmpipe"

    def __init__(self, faces: torch.Tensor, num_vertices: int, threads: int | None = None):
        # llvmpipe reads its rasterizer thread count once, when its screen is created.
        if threads is not None and "LP_NUM_THREADS" not in os.environ:
            os.environ["LP_NUM_THREADS"] = str(threads)
        import moderngl

        self.ctx = open_context(moderngl)
        info = self.ctx.info
        self.renderer = info["GL_RENDERER"]
        self.version = f"{info['GL_VERSION']}, moderngl {moderngl.__version__}"
        self.details = {
            "gl_renderer": self.renderer,
            "gl_version": info["GL_VERSION"],
            "gl_vendor": info["GL_VENDOR"],
            "moderngl": moderngl.__version__,
            "lp_num_threads": os.environ.get("LP_NUM_THREADS"),
        }
        self.num_vertices = num_vertices
        self.num_faces = int(faces.shape[0])
        self.program = self.ctx.program(
            vertex_shader=VERTEX_SHADER,
            geometry_shader=GEOMETRY_SHADER,
            fragment_shader=FRAGMENT_SHADER,
        )
        self.vbo = self.ctx.buffer(reserve=max(1, num_vertices) * 16, dynamic=True)
        indices = np.ascontiguousarray(faces.to(torch.int64).numpy().astype(np.int32))
        self.ibo = self.ctx.buffer(indices.tobytes() if indices.size else b"\0" * 4)
        self.vao = self.ctx.vertex_array(
            self.program, [(self.vbo, "4f", "in_clip")], index_buffer=self.ibo, index_element_size=4
        )
        self.framebuffers = {}

    def framebuffer(self, height: int, width: int):
        if (height, width) not in self.framebuffers:
            ctx = self.ctx
            ids = ctx.texture((width, height), 1, dtype="i4")
            attr = ctx.texture((width, height), 4, dtype="f4")
            fbo = ctx.framebuffer([ids, attr], ctx.depth_renderbuffer((width, height)))
            self.framebuffers[(height, width)] = fbo
        return self.framebuffers[(height, width)]

    @staticmethod
    def depth_map(clip: np.ndarray) -> tuple[float, float]:
        """``(a, b)`` with ``a * z/w + b`` spanning [-DEPTH_SPAN, DEPTH_SPAN] over the
        vertices with ``w > EPS_W`` (every vertex a drawn face uses)."""
        kept = clip[clip[:, 3] > EPS_W]
        if len(kept) == 0:
            return 0.0, 0.0
        zw = kept[:, 2].astype(np.float64) / kept[:, 3]
        lo, hi = float(zw.min()), float(zw.max())
        if hi <= lo:
            return 0.0, 0.0
        a = 2 * DEPTH_SPAN / (hi - lo)
        return a, -DEPTH_SPAN - a * lo

    def rasterize(
        self, clip: torch.Tensor | np.ndarray, resolution: tuple[int, int], attributes=True
    ) -> dict:
        """``tri_id`` ``[B,H,W]`` int32 (-1 background) and, with ``attributes``,
        ``bary`` ``[B,H,W,3]`` and ``depth`` ``[B,H,W]`` float32 for clip positions
        ``[B,V,4]`` (one draw and read-back per image; the faces were uploaded once)."""
        clip = np.ascontiguousarray(np.asarray(clip, dtype=np.float32))
        if clip.ndim == 2:
            clip = clip[None]
        if clip.shape[1:] != (self.num_vertices, 4):
            raise ValueError(f"expected clip positions [B,{self.num_vertices},4], got {clip.shape}")
        height, width = resolution
        batch = clip.shape[0]
        fbo = self.framebuffer(height, width)
        ids = np.empty((batch, height, width), np.int32)
        attr = np.empty((batch, height, width, 4), np.float32) if attributes else None
        fbo.use()
        self.ctx.enable(self.ctx.DEPTH_TEST)
        self.ctx.disable(self.ctx.CULL_FACE)
        self.ctx.depth_func = "<"
        for i in range(batch):
            fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            if self.num_faces:
                self.vbo.write(clip[i])
                self.program["depth_map"].value = self.depth_map(clip[i])
                self.vao.render(self.ctx.TRIANGLES, vertices=3 * self.num_faces)
            fbo.read_into(ids[i], components=1, attachment=0, dtype="i4")
            if attributes:
                fbo.read_into(attr[i], components=4, attachment=1, dtype="f4")
        ids -= 1
        out = {"tri_id": ids}
        if attributes:  # the clear left zeros on the background, as minirast has
            out["bary"] = attr[..., :3]
            out["depth"] = attr[..., 3]
        return out

    def render(self, points: torch.Tensor, clip: torch.Tensor, res: int) -> dict:
        """The bench's visibility job at ``res``² (camera-frame ``points`` unused)."""
        return self.rasterize(clip, (res, res))

    def close(self) -> None:
        """Release the GL context (and with it the buffers and framebuffers)."""
        self.framebuffers.clear()
        self.ctx.release()


def subpixel_snap(clip: torch.Tensor, height: int, width: int, bits: int = 8) -> torch.Tensor:
    """``clip`` with each vertex's screen position rounded to ``1/2**bits`` pixel, as
    llvmpipe's rasterizer does (Mesa's ``FIXED_ORDER``, 8 bits), ``z`` and ``w`` kept:
    minirast on these positions covers the pixels llvmpipe covers (float64 out)."""
    c = clip.to(torch.float64)
    w = c[..., 3:]
    size = torch.tensor([width, height], dtype=torch.float64)
    window = (c[..., :2] / w + 1) * size / 2
    window = torch.round(window * 2**bits) / 2**bits
    return torch.cat([(window * 2 / size - 1) * w, c[..., 2:]], -1)
