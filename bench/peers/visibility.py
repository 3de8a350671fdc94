"""The visibility job of ``python -m bench.raster``: minirast's torch ``rasterize`` and
each peer (:func:`bench.peers.load_peers`) on the same mesh, poses and threads, timed,
with their pixel agreement, and the report section that shows them."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

import minirast
from bench.common import time_call
from bench.raster_scene import make_batch


def time_visibility(backend, clip, faces, res, device, budget_s, warmup=1):
    """rasterize alone (the job the peers do), forward: ``(ms, the last call's Fragments)``."""
    pos, f = clip.to(device), faces.to(device)
    last = []

    def step():
        with torch.no_grad():
            last[:] = [minirast.rasterize(pos, f, (res, res), backend=backend)]

    ms = time_call(step, device, warmup=warmup, min_repeats=3, max_repeats=20, budget_s=budget_s)
    return ms, last[0]


def time_peer(peer, points, clip, res, device, budget_s):
    """A peer's visibility job: ``(ms, the last call's output)`` after one call on the
    first image (which compiles the peer's kernels and shaders)."""
    peer.render(points[:1], clip[:1], res)
    last = []

    def step():
        last[:] = [peer.render(points, clip, res)]

    ms = time_call(step, device, warmup=0, min_repeats=3, max_repeats=10, budget_s=budget_s)
    return ms, last[0]


def agreement(ours, theirs: dict) -> dict:
    """Pixel agreement of triangle ids (all pixels; pixels either covers) and, where the
    peer returns them, the largest barycentric and depth differences where ids agree."""
    ids = ours.tri_id.cpu().numpy()
    same = ids == theirs["tri_id"]
    covered = (ids >= 0) | (theirs["tri_id"] >= 0)
    out = {
        "pixel_agreement": float(same.mean()),
        "covered_pixel_agreement": float(same[covered].mean()) if covered.any() else 1.0,
    }
    both = same & (ids >= 0)
    for key in ("bary", "depth"):
        if key in theirs:
            diff = np.abs(getattr(ours, key).cpu().numpy() - theirs[key])[both]
            out[f"max_{key}_difference"] = float(diff.max()) if diff.size else 0.0
    return out


def visibility_vs_peers(
    peers, verts, faces, resolutions, batches, device, budget_s, max_pixels, batches_cache
):
    """One row per peer and case: the peer's time, minirast torch ``rasterize``'s time
    (timed once per case, shared by the peers' rows) and their agreement."""
    rows = []
    if not peers:
        return rows
    cases = [(r, b) for r in resolutions for b in batches]
    for res, batch in tqdm(cases, desc="visibility vs peers", unit="case"):
        if device.type == "cpu" and batch * res * res > max_pixels:
            continue
        if batch not in batches_cache:
            batches_cache[batch] = make_batch(verts, batch)
        points, clip = batches_cache[batch]
        ours_ms, ours = time_visibility("torch", clip, faces, res, device, budget_s)
        for peer in peers:
            peer_ms, theirs = time_peer(peer, points, clip, res, device, budget_s)
            rows.append(
                {
                    "peer": peer.name,
                    "peer_short": peer.short,
                    "peer_version": peer.version,
                    "resolution": res,
                    "batch": batch,
                    "peer_ms": peer_ms,
                    "torch_rasterize_ms": ours_ms,
                    "speedup_torch_vs_peer": peer_ms / ours_ms,
                    **agreement(ours, theirs),
                }
            )
            del theirs
        del ours
    return rows


def visibility_table(p: dict) -> list[str]:
    """The visibility section: per case, minirast torch ``rasterize`` beside each peer,
    with the speed ratio (ours / peer images per second) and the pixel agreement."""
    vis = p["visibility_vs_peers"]
    shorts = list(dict.fromkeys(v["peer_short"] for v in vis))
    lines = [
        "## Visibility job vs peers (triangle id at pixel centres)",
        "",
        "Same mesh, poses, camera and threads in the same run. minirast: the torch "
        "backend's `rasterize` alone (triangle id, barycentrics, depth), forward. "
        "*speed ratio*: minirast's images/s over the peer's (above 1: minirast faster). "
        "*agreement*: pixels with the same triangle id, among those either covers.",
        "",
    ]
    for peer in p.get("peers", []):
        if peer["short"] == "llvmpipe":
            lines.append(
                f"- llvmpipe: OpenGL through moderngl {peer['moderngl']} on "
                f"`{peer['gl_renderer']}`, OpenGL `{peer['gl_version']}`, "
                f"LP_NUM_THREADS={peer['lp_num_threads']}. It draws minirast's clip "
                "positions (one draw and read-back per image, faces uploaded once) and its "
                "time includes uploading the positions and reading triangle id, "
                "barycentrics and depth back into numpy. llvmpipe snaps vertices to 1/256 "
                "pixel (its 8 subpixel bits), so pixel centres within about 1/512 pixel "
                "of an edge may go to the neighbouring face: agreement is a little below "
                "100 %, more so at low resolution where edges are dense."
            )
        elif peer["short"] == "Mitsuba":
            lines.append(
                f"- Mitsuba {peer['version']}: `prim_index` and `depth` AOVs with one "
                "un-jittered sample at each pixel centre; it rebuilds its BVH for every "
                "pose (each image has its own pose), which is part of its cost."
            )
        else:
            lines.append(f"- {peer['short']}: {peer['name']} {peer['version']}.")
    header = "| resolution | B | minirast torch rasterize ms |"
    rule = "|---|---|---|"
    for short in shorts:
        header += f" {short} ms | speed ratio vs {short} | agreement with {short} |"
        rule += "---|---|---|"
    lines += ["", header, rule]
    cases = list(dict.fromkeys((v["resolution"], v["batch"]) for v in vis))
    for res, batch in cases:
        rows = {v["peer_short"]: v for v in vis if (v["resolution"], v["batch"]) == (res, batch)}
        ours = next(iter(rows.values()))["torch_rasterize_ms"]
        line = f"| {res}² | {batch} | {ours:.1f} |"
        for short in shorts:
            v = rows.get(short)
            line += (
                f" {v['peer_ms']:.1f} | {v['speedup_torch_vs_peer']:.2f}x | "
                f"{100 * v['covered_pixel_agreement']:.3f} % |"
                if v
                else " - | - | - |"
            )
        lines.append(line)
    gl = [v for v in vis if "max_bary_difference" in v]
    if gl:
        lines += [
            "",
            "Where the triangle ids agree, llvmpipe's barycentrics differ from minirast's "
            f"by at most {max(v['max_bary_difference'] for v in gl):.1e} and its depths "
            f"by at most {max(v['max_depth_difference'] for v in gl):.1e}.",
        ]
    return lines
