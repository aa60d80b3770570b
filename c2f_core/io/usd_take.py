"""A whole take as one USD file: hand and object as meshes whose points and topology change every frame.

Layout of the stage (Blender imports it with `bpy.ops.wm.usd_import` as a Mesh Sequence Cache):
```
/C2F            Xform, the default prim
/C2F/hand       Mesh, time-sampled points, faceVertexCounts, faceVertexIndices, extent
/C2F/object     Mesh, the same
```
Convention: metres (metersPerUnit 1), Z up, in the world of `c2f_core.geometry.axes`
(camera at the origin looking along +Y); time code = the take's frame number, and
timeCodesPerSecond = framesPerSecond = the take's fps.

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
from c2f_core.geometry.mesh_clean import clean_mesh
from c2f_core.io.atomic import atomic_path

ROOT_PRIM = "/C2F"
MESH_PRIMS = {"hand": "/C2F/hand", "object": "/C2F/object"}
SAVE_EVERY_FRAMES = 16
"""Frames between intermediate saves: bounds the unsaved samples held in memory."""


def _import_pxr():
    try:
        from pxr import Sdf, Usd, UsdGeom, Vt
    except ImportError:
        raise C2FError("writing USD needs the usd-core package: pip install usd-core") from None
    return Sdf, Usd, UsdGeom, Vt


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
    vertices = np.asarray(vertices, dtype=np.float32)
    faces = np.asarray(faces)
    vertices = vertices.reshape(-1, 3) if vertices.size == 0 else vertices
    faces = faces.reshape(-1, 3) if faces.size == 0 else faces
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"frame {frame}: {what} vertices must be (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"frame {frame}: {what} faces must be (F, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"frame {frame}: {what} faces index outside 0..{len(vertices) - 1}")
    return vertices, faces.astype(np.int32)


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
    _, Usd, UsdGeom, Vt = _import_pxr()
    with atomic_path(path) as tmp:
        layer, stage = new_stage(tmp, fps)
        attrs = {}
        for part, prim_path in MESH_PRIMS.items():
            mesh = UsdGeom.Mesh.Define(stage, prim_path)
            mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
            attrs[part] = (
                mesh.CreatePointsAttr(),
                mesh.CreateFaceVertexCountsAttr(),
                mesh.CreateFaceVertexIndicesAttr(),
                mesh.CreateExtentAttr(),
            )
        first = last = None
        for count, (frame, hand_v, hand_f, obj_v, obj_f) in enumerate(frames, start=1):
            frame = int(frame)
            if last is not None and frame <= last:
                raise C2FError(f"USD take frames must increase: frame {frame} came after {last}")
            first = frame if first is None else first
            last = frame
            time = Usd.TimeCode(frame)
            for part, (vertices, faces) in (("hand", (hand_v, hand_f)), ("object", (obj_v, obj_f))):
                vertices, faces = clean_mesh(*_check_mesh(frame, part, vertices, faces))
                world = opencv_to_blender(vertices)
                points_attr, counts_attr, indices_attr, extent_attr = attrs[part]
                points_attr.Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(world)), time)
                counts_attr.Set(Vt.IntArray.FromNumpy(np.full(len(faces), 3, np.int32)), time)
                indices_attr.Set(Vt.IntArray.FromNumpy(np.ascontiguousarray(faces.ravel())), time)
                # An empty mesh gets a zero-size extent so no earlier frame's box is held over it.
                extent = (
                    np.stack([world.min(0), world.max(0)]) if len(world) else np.zeros((2, 3), np.float32)
                )
                extent_attr.Set(Vt.Vec3fArray.FromNumpy(extent), time)
            if count % save_every == 0:
                layer.Save()
        if first is None:
            raise C2FError(f"no frames to write to {path}")
        stage.SetStartTimeCode(first)
        stage.SetEndTimeCode(last)
        layer.Save()
        # Drop every handle on the layer before the rename, so USD's registry forgets the temporary name.
        del stage, attrs, mesh, layer
    return path
