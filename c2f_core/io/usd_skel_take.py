"""An animated take as USD (`take_rig.usdc`): the hand as a UsdSkel rig, the object as an animated Xform.

Layout of the stage:
```
/C2F                         Xform, the default prim
/C2F/hand                    SkelRoot
/C2F/hand/skeleton           Skeleton: joints (paths along the hierarchy), bind and rest transforms
/C2F/hand/skeleton/animation SkelAnimation: per-frame joint rotations, translations, scales
/C2F/hand/mesh               Mesh in the bind pose, bound to the skeleton (jointIndices / jointWeights)
/C2F/object                  Xform with a time-sampled transform
/C2F/object/mesh             Mesh in the object's own frame (origin at its centre)
```
Convention: metres (metersPerUnit 1), Z up, in the world of `c2f_core.geometry.axes` (camera at the
origin looking along +Y), as `io.usd_take` writes; time code = the take's frame number and
timeCodesPerSecond = the take's fps. The input is what `io.gltf_take` takes (OpenCV camera frame).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.axes import OPENCV_TO_BLENDER
from c2f_core.geometry.quaternions import continuous_quaternions
from c2f_core.io.atomic import atomic_path
from c2f_core.io.gltf_take import GltfTake, check_take
from c2f_core.io.usd_take import new_stage

HAND_PRIM = "/C2F/hand"
OBJECT_PRIM = "/C2F/object"


def _import_pxr():
    try:
        from pxr import Gf, UsdGeom, UsdSkel, Vt
    except ImportError:
        raise C2FError("writing USD needs the usd-core package: pip install usd-core") from None
    return Gf, UsdGeom, UsdSkel, Vt


def _matrix(Gf, rotation: np.ndarray, translation: np.ndarray):
    """A Gf.Matrix4d of p -> R p + t (USD matrices act on row vectors: the transpose, translation last)."""
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = translation
    return Gf.Matrix4d(matrix.T.tolist())


def _joint_paths(names, parents) -> list[str]:
    paths: list[str] = []
    for name, parent in zip(names, parents):
        paths.append(str(name) if parent < 0 else f"{paths[parent]}/{name}")
    return paths


def _mesh(UsdGeom, Vt, stage, path: str, vertices: np.ndarray, faces: np.ndarray):
    mesh = UsdGeom.Mesh.Define(stage, path)
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    points = np.ascontiguousarray(vertices, dtype=np.float32)
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(points))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(faces), 3, np.int32)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(np.ascontiguousarray(faces, np.int32).ravel()))
    mesh.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(np.stack([points.min(0), points.max(0)])))
    return mesh


def write_take_usd(path: str | Path, take: GltfTake) -> Path:
    """Write an animated take (the hand as UsdSkel, the object as an animated Xform) to a `.usdc` file.

    Args:
        path: the target file, ending in `.usdc`; written atomically.
        take: frames, fps, hand and object, as for `io.gltf_take.write_take_glb` (the camera is not written).

    Returns:
        The path written.
    """
    path = Path(path)
    if path.suffix != ".usdc":
        raise ValueError(f"the USD rig must be a .usdc file, got {path}")
    check_take(take)
    Gf, UsdGeom, UsdSkel, Vt = _import_pxr()
    frames = [int(f) for f in take.frames]
    world = OPENCV_TO_BLENDER
    with atomic_path(path) as tmp:
        layer, stage = new_stage(tmp, take.fps)
        stage.SetStartTimeCode(frames[0])
        stage.SetEndTimeCode(frames[-1])
        hand = take.hand
        if hand is not None:
            UsdSkel.Root.Define(stage, HAND_PRIM)
            skeleton = UsdSkel.Skeleton.Define(stage, f"{HAND_PRIM}/skeleton")
            joints = _joint_paths(hand.names, hand.parents)
            bind = np.asarray(hand.bind_positions, np.float64)
            offsets = np.array([bind[j] - bind[p] if p >= 0 else bind[j] for j, p in enumerate(hand.parents)])
            skeleton.CreateJointsAttr(joints)
            skeleton.CreateBindTransformsAttr(Vt.Matrix4dArray([_matrix(Gf, np.eye(3), b) for b in bind]))
            skeleton.CreateRestTransformsAttr(Vt.Matrix4dArray([_matrix(Gf, np.eye(3), o) for o in offsets]))
            animation = UsdSkel.Animation.Define(stage, f"{HAND_PRIM}/skeleton/animation")
            animation.CreateJointsAttr(joints)
            rotations = np.asarray(hand.rotations, np.float64).copy()
            rotations[:, 0] = world @ rotations[:, 0]
            quats = continuous_quaternions(rotations)  # (T, J, 4) x, y, z, w
            translations = np.tile(offsets, (len(frames), 1, 1))
            translations[:, 0] = np.asarray(hand.root_translations, np.float64) @ world.T
            rotation_attr = animation.CreateRotationsAttr()
            translation_attr = animation.CreateTranslationsAttr()
            animation.CreateScalesAttr(Vt.Vec3hArray([Gf.Vec3h(1, 1, 1)] * len(joints)))
            for t, frame in enumerate(frames):
                wxyz = np.concatenate([quats[t, :, 3:], quats[t, :, :3]], 1)
                rotation_attr.Set(Vt.QuatfArray([Gf.Quatf(*map(float, q)) for q in wxyz]), frame)
                translation_attr.Set(Vt.Vec3fArray.FromNumpy(translations[t].astype(np.float32)), frame)
            UsdSkel.BindingAPI.Apply(skeleton.GetPrim()).CreateAnimationSourceRel().SetTargets(
                [animation.GetPath()]
            )
            mesh = _mesh(UsdGeom, Vt, stage, f"{HAND_PRIM}/mesh", hand.vertices, hand.faces)
            binding = UsdSkel.BindingAPI.Apply(mesh.GetPrim())
            binding.CreateSkeletonRel().SetTargets([skeleton.GetPath()])
            weights = np.asarray(hand.weights, np.float64)
            influences = max(1, int((weights > 0).sum(1).max()))
            order = np.argsort(-weights, axis=1, kind="stable")[:, :influences]
            chosen = np.take_along_axis(weights, order, 1)
            chosen = chosen / chosen.sum(1, keepdims=True)
            binding.CreateJointIndicesPrimvar(False, influences).Set(
                Vt.IntArray.FromNumpy(order.astype(np.int32).ravel())
            )
            binding.CreateJointWeightsPrimvar(False, influences).Set(
                Vt.FloatArray.FromNumpy(chosen.astype(np.float32).ravel())
            )
            binding.CreateGeomBindTransformAttr(Gf.Matrix4d(1.0))
        if take.object is not None:
            xform = UsdGeom.Xform.Define(stage, OBJECT_PRIM)
            op = xform.AddTransformOp()
            for pose, frame in zip(np.asarray(take.object.poses, np.float64), frames):
                op.Set(_matrix(Gf, world @ pose[:3, :3], world @ pose[:3, 3]), frame)
            _mesh(UsdGeom, Vt, stage, f"{OBJECT_PRIM}/mesh", take.object.vertices, take.object.faces)
        layer.Save()
        del stage, layer
    return path
