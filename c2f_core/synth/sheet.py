"""Contact sheets of takes: colour | colour-mapped depth | ground-truth meshes and joints over colour.

The third panel re-renders the stored GT meshes (hand orange, object blue) with the take's own
intrinsics and draws the GT joints, so any misalignment between images and ground truth shows.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import project
from c2f_core.hands.base import PARENTS
from c2f_core.io.images import write_color
from c2f_core.io.take import Take
from c2f_core.io.visual import depth_to_rgb
from c2f_core.synth.render import LABEL_HAND, LABEL_OBJECT, Lighting, Renderer, SceneMesh

HAND_RGB = np.array([1.0, 0.55, 0.2])
OBJECT_RGB = np.array([0.2, 0.5, 1.0])
MAX_FRAMES = 16


def gt_overlay(color: np.ndarray, gt: dict[str, np.ndarray], renderer: Renderer) -> np.ndarray:
    """Colour image with the GT hand and object meshes blended in and the GT joints drawn."""
    meshes = []
    for key, label, rgb in (("hand", LABEL_HAND, HAND_RGB), ("object", LABEL_OBJECT, OBJECT_RGB)):
        vertices, faces = gt[f"{key}_verts"], gt[f"{key}_faces"]
        colors = np.repeat(rgb[None], len(vertices), axis=0)
        meshes.append(SceneMesh(key, vertices, faces, colors, label, True, 0.6))
    lighting = Lighting(direction=np.array([0.3, 0.5, 1.0]), intensity=3.0, ambient=np.full(3, 0.45))
    rendered = renderer.render(meshes, lighting)
    covered = (rendered.depth_m > 0)[..., None]
    out = np.where(covered, 0.35 * color + 0.65 * rendered.color, color).astype(np.uint8)
    uv, z = project(np.asarray(gt["hand_joints"], dtype=np.float64), np.asarray(gt["K"], dtype=np.float64))
    scale = max(1, round(color.shape[1] / 320))
    for joint, parent in enumerate(PARENTS):
        if parent >= 0 and z[joint] > 0 and z[parent] > 0:
            cv2.line(
                out,
                tuple(np.round(uv[joint]).astype(int)),
                tuple(np.round(uv[parent]).astype(int)),
                (255, 255, 255),
                scale,
            )
    for point, depth in zip(uv, z):
        if depth > 0:
            cv2.circle(out, tuple(np.round(point).astype(int)), 2 * scale, (255, 0, 0), -1)
    return out


def contact_sheet(
    take_dir: str | Path, out_png: str | Path, frames: int = MAX_FRAMES, panel_width: int = 320
) -> Path:
    """Write a PNG of up to `frames` (at most 16) frames of a take: colour | depth | GT overlay.

    Frames are picked evenly across the take; two frames per row.
    """
    take = Take.open(take_dir)
    if not take.frame_ids:
        raise C2FError(f"take {take_dir} has no frames")
    count = min(frames, MAX_FRAMES, len(take.frame_ids))
    picks = [take.frame_ids[i] for i in np.linspace(0, len(take.frame_ids) - 1, count).round().astype(int)]
    intr = take.intrinsics
    renderer = Renderer(intr.width, intr.height, intr.K)
    panel_height = round(panel_width * intr.height / intr.width)
    tiles = []
    try:
        for frame_id in picks:
            frame = take.read_frame(frame_id, with_gt=True, check=False)
            panels = [frame.color, depth_to_rgb(frame.depth_m)]
            if frame.gt is not None and "hand_verts" in frame.gt:
                panels.append(gt_overlay(frame.color, frame.gt, renderer))
            else:
                panels.append(np.zeros_like(frame.color))
            panels = [
                cv2.resize(p, (panel_width, panel_height), interpolation=cv2.INTER_AREA) for p in panels
            ]
            tile = np.concatenate(panels, axis=1)
            cv2.putText(tile, f"{frame_id:06d}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
            tiles.append(tile)
    finally:
        renderer.close()
    if len(tiles) % 2:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + 2], axis=1) for i in range(0, len(tiles), 2)]
    sheet = np.concatenate(rows, axis=0)
    out_png = Path(out_png)
    if out_png.parent and not out_png.parent.exists():
        out_png.parent.mkdir(parents=True, exist_ok=True)
    write_color(out_png, np.ascontiguousarray(sheet))
    return out_png
