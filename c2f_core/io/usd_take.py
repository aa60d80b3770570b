"""A whole take as one USD file: hand and object as meshes whose points and topology change every frame.

Layout of the stage (Blender imports it with `bpy.ops.wm.usd_import` as a Mesh Sequence Cache):
```
/C2F            Xform, the default prim
/C2F/hand       Mesh, time-sampled xformOp:translate, points, faceVertexCounts, faceVertexIndices, extent
/C2F/object     Mesh, the same
```
Convention: metres (metersPerUnit 1), Z up, in the world of `c2f_core.geometry.axes`
(camera at the origin looking along +Y); time code = the take's frame number, and
timeCodesPerSecond = framesPerSecond = the take's fps. Each frame's points (and extent) are local
to the centre of that frame's bounding box, which is the prim's translate at that time: world
point = translate + point, so an imported object's origin sits in the middle of its mesh, as the
per-frame import places it, and rotating it pivots there.

Writing streams: each frame's samples go to the file and the layer is saved every few frames.
A `.usdc` (crate) layer saves incrementally and then holds saved samples on disk rather than in
memory, so memory stays flat however long the take (measured: 150 frames of 50k vertices, 505 MB
peak without intermediate saves, 163 MB with them). The file is written under a temporary name
and renamed at the end, so an interrupted run never leaves a partial `take.usdc`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.axes import opencv_to_blender
from c2f_core.geometry.mesh_arrays import mesh_arrays
from c2f_core.geometry.mesh_clean import clean_mesh
from c2f_core.io.atomic import atomic_path

ROOT_PRIM = "/C2F"
MESH_PRIMS = {"hand": "/C2F/hand", "object": "/C2F/object"}
SAVE_EVERY_FRAMES = 16
"""Frames between intermediate saves: bounds the unsaved samples held in memory."""
HOLD_FRAMES = 1e-3
"""How long before a frame whose vertex count changes the translate still holds the last frame's
centre (USD interpolates linearly; two samples this close make a step), in frames: well inside a
motion-blur shutter's subframes."""


def _import_pxr():
    try:
        from pxr import Sdf, Usd, UsdGeom, Vt
    except ImportError:
        raise C2FError("writing USD needs the usd-core package: pip install usd-core") from None
    return Sdf, Usd, UsdGeom, Vt


def mesh_centre(vertices: np.ndarray) -> np.ndarray:
    """(3,) float64 centre of the axis-aligned bounding box of (V, 3) vertices; the origin for V = 0.

    The origin of every imported object: the cache's translate here, and the add-on's per-frame
    objects use the same function, so both imports place an object's origin alike.
    """
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if len(vertices) == 0:
        return np.zeros(3)
    return (vertices.min(axis=0) + vertices.max(axis=0)) / 2


def new_stage(path: Path, fps: float):
    """A new USD layer and stage at `path`: z up, metres, `fps` time codes and frames per second,
    the root prim (`ROOT_PRIM`) as default prim. Returns (layer, stage)."""
    Sdf, Usd, UsdGeom, _ = _import_pxr()
    layer = Sdf.Layer.CreateNew(str(path))
    if layer is None:
        raise C2FError(f"cannot create USD file {path}")
    stage = Usd.Stage.Open(layer)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    stage.SetTimeCodesPerSecond(fps)
    stage.SetFramesPerSecond(fps)
    stage.SetDefaultPrim(UsdGeom.Xform.Define(stage, ROOT_PRIM).GetPrim())
    return layer, stage


def _check_mesh(
    frame: int, what: str, vertices: np.ndarray, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    return mesh_arrays(
        vertices, faces, f"frame {frame}: {what}", finite=False, vertex_dtype=np.float32, face_dtype=np.int32
    )


class _PartSamples:
    """One part's Mesh prim and the time samples written to it: translate, points, faces and extent."""

    def __init__(self, stage, prim_path: str):
        _, _, UsdGeom, _ = _import_pxr()
        mesh = UsdGeom.Mesh.Define(stage, prim_path)
        mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
        self.translate = mesh.AddTranslateOp(UsdGeom.XformOp.PrecisionDouble)
        self.points = mesh.CreatePointsAttr()
        self.counts = mesh.CreateFaceVertexCountsAttr()
        self.indices = mesh.CreateFaceVertexIndicesAttr()
        self.extent = mesh.CreateExtentAttr()
        self.last_centre = np.zeros(3)
        self.last_count: int | None = None

    def add(self, frame: int, vertices: np.ndarray, faces: np.ndarray) -> None:
        """Write frame `frame`: (V, 3) metres, OpenCV camera frame, and (F, 3) clean triangles."""
        from pxr import Gf, Usd, Vt

        world = opencv_to_blender(vertices).astype(np.float64)
        # An empty mesh keeps the last centre, so the origin does not jump to the camera and back.
        centre = mesh_centre(world) if len(world) else self.last_centre
        local = (world - centre).astype(np.float32)
        if self.last_count is not None and len(local) != self.last_count:
            # USD interpolates the translate between samples but holds points whose count changes,
            # so between the two frames the held mesh would drift towards the next centre; a
            # sample just before this frame holds the translate with it.
            self.translate.Set(Gf.Vec3d(*self.last_centre.tolist()), Usd.TimeCode(frame - HOLD_FRAMES))
        time = Usd.TimeCode(frame)
        self.translate.Set(Gf.Vec3d(*centre.tolist()), time)
        self.points.Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(local)), time)
        self.counts.Set(Vt.IntArray.FromNumpy(np.full(len(faces), 3, np.int32)), time)
        self.indices.Set(Vt.IntArray.FromNumpy(np.ascontiguousarray(faces.ravel())), time)
        # An empty mesh gets a zero-size extent so no earlier frame's box is held over it.
        extent = np.stack([local.min(0), local.max(0)]) if len(local) else np.zeros((2, 3), np.float32)
        self.extent.Set(Vt.Vec3fArray.FromNumpy(extent), time)
        self.last_centre, self.last_count = centre, len(local)


def write_usd_take(
    path: str | Path,
    frames: Iterable[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    fps: float,
    save_every: int = SAVE_EVERY_FRAMES,
) -> Path:
    """Write hand and object meshes of a take as time samples of one `.usdc` file, frame by frame.

    Args:
        path: the target file; must end in `.usdc`.
        frames: (frame_number, hand_vertices (V, 3), hand_faces (F, 3), object_vertices (W, 3),
            object_faces (G, 3)) per frame, in increasing frame order; vertices in metres in the
            OpenCV camera frame (x right, y down, z forward), converted here to the Z-up world.
            Degenerate and duplicate faces are left out (`clean_mesh`).
            Any iterable works, a generator keeps memory flat. Empty meshes are allowed.
        fps: frames per second of the take.
        save_every: frames between intermediate saves (bounds memory).

    Returns:
        The path written.

    Raises:
        C2FError: when usd-core is missing or the frames are not in increasing order or empty.
    """
    path = Path(path)
    if path.suffix != ".usdc":
        raise C2FError(f"a USD take must be a .usdc file, got {path}")
    if not math.isfinite(fps) or fps <= 0:
        raise C2FError(f"fps must be positive, got {fps}")
    with atomic_path(path) as tmp:
        layer, stage = new_stage(tmp, fps)
        parts = {part: _PartSamples(stage, prim_path) for part, prim_path in MESH_PRIMS.items()}
        first = last = None
        for count, (frame, hand_v, hand_f, obj_v, obj_f) in enumerate(frames, start=1):
            frame = int(frame)
            if last is not None and frame <= last:
                raise C2FError(f"USD take frames must increase: frame {frame} came after {last}")
            first = frame if first is None else first
            last = frame
            for part, (vertices, faces) in (("hand", (hand_v, hand_f)), ("object", (obj_v, obj_f))):
                parts[part].add(frame, *clean_mesh(*_check_mesh(frame, part, vertices, faces)))
            if count % save_every == 0:
                layer.Save()
        if first is None:
            raise C2FError(f"no frames to write to {path}")
        stage.SetStartTimeCode(first)
        stage.SetEndTimeCode(last)
        layer.Save()
        # Drop every handle on the layer before the rename, so USD's registry forgets the temporary name.
        del stage, parts, layer
    return path
