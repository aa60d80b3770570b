"""The take-level fit as files: the open hand's rig and pose track, the object's mesh and pose track.

Turns a `HandTrack` and an `ObjectTrack` into what `io.gltf_take` writes (a joint hierarchy with
inverse bind matrices and per-frame rotations, a rigid track, the camera) and into the records of
`animation/poses.json` (`io.animation_output`).

The open hand's skeleton: its 20 bones (`hands.open_hand.BONE_NAMES`: the wrist, the thumb's
three bones and each finger's metacarpal and three phalanges) plus one leaf joint per fingertip,
25 joints in all. Each of the 21 common joints (`hands.base.JOINT_NAMES`) is one of them, under
its own name (the bone whose head it is, or the fingertip); the 4 metacarpals (`index0` ..
`little0`) are the extra joints the palm needs to cup. A joint sits at its bone's head.
"""

from __future__ import annotations

import numpy as np
import torch

from c2f_core.geometry.quaternions import continuous_quaternions, quaternions_to_matrices
from c2f_core.hands.base import JOINT_NAMES
from c2f_core.hands.open_hand import BONE_NAMES, FINGER_BONES, TIP_JOINTS, OpenHandLayer
from c2f_core.io.gltf_take import GltfTake, RigidTrack, SkinnedTrack, TakeCamera
from c2f_core.recon.extract import Mesh
from c2f_core.take_fit.hand_track import HandTrack, open_hand_layer
from c2f_core.take_fit.object_track import ObjectTrack

TIP_NAMES = tuple(JOINT_NAMES[j] for j in TIP_JOINTS)
"""The fingertip joints, leaves of the skeleton."""
SKELETON_NAMES = tuple(BONE_NAMES) + TIP_NAMES
"""The 25 joints of the exported skeleton: the 20 bones, then the 5 fingertips."""


def rest_hand(track: HandTrack, layer: OpenHandLayer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The take's hand in its rest pose: vertices (V, 3) and bone heads (20, 3), canonical frame, metres."""
    layer = layer or open_hand_layer()
    with torch.no_grad():
        vertices, heads = layer.rest(torch.as_tensor(track.betas, dtype=layer.dtype)[None])
    return vertices[0].numpy().astype(np.float64), heads[0].numpy().astype(np.float64)


def hand_skin(track: HandTrack) -> SkinnedTrack:
    """The hand track as a skinned mesh with the 25-joint skeleton (OpenCV camera frame)."""
    layer = open_hand_layer()
    vertices, heads = rest_hand(track, layer)
    tip_ids = layer.tip_vertex_ids.numpy()
    bind = np.concatenate([heads, vertices[tip_ids]])
    parents = list(layer.parents) + [bones[-1] for bones in FINGER_BONES]
    bones = len(BONE_NAMES)
    weights = np.zeros((len(vertices), len(SKELETON_NAMES)))
    weights[:, :bones] = layer.skinning_weights.numpy()
    count = len(track.transl)
    rotations = np.tile(np.eye(3), (count, len(SKELETON_NAMES), 1, 1))
    rotations[:, 0] = track.global_orient
    rotations[:, 1:bones] = track.finger_rotations
    return SkinnedTrack(
        names=SKELETON_NAMES,
        parents=parents,
        bind_positions=bind,
        vertices=vertices,
        faces=track.faces,
        weights=weights,
        rotations=rotations,
        root_translations=heads[0] + track.transl,
    )


def take_camera(intrinsics: dict) -> TakeCamera:
    """The glTF camera of a take's intrinsics (as `reconstruction.json` stores them)."""
    return TakeCamera(
        float(intrinsics["fx"]),
        float(intrinsics["fy"]),
        float(intrinsics["cx"]),
        float(intrinsics["cy"]),
        int(intrinsics["width"]),
        int(intrinsics["height"]),
    )


def gltf_take(
    frames: list[int], fps: float, intrinsics: dict, hand: HandTrack | None, obj: ObjectTrack | None
) -> GltfTake:
    """Everything `io.gltf_take.write_take_glb` needs for the animated take."""
    rigid = None
    if obj is not None and not obj.mesh.is_empty:
        rigid = RigidTrack(obj.mesh.vertices, obj.mesh.faces, obj.poses)
    return GltfTake(
        frames=frames,
        fps=fps,
        hand=None if hand is None else hand_skin(hand),
        object=rigid,
        camera=take_camera(intrinsics),
        extras={"c2f_frames": [int(f) for f in frames], "c2f_fps": float(fps)},
    )


def hand_record(frames: list[int], track: HandTrack) -> dict:
    """The "hand" entry of `poses.json`."""
    skin = hand_skin(track)
    quats = continuous_quaternions(skin.rotations[:, : len(BONE_NAMES)])
    return {
        "bone_names": list(BONE_NAMES),
        "bone_parents": [int(p) for p in skin.parents[: len(BONE_NAMES)]],
        "joint_names": list(JOINT_NAMES),
        "betas": track.betas.tolist(),
        "per_frame": [
            {
                "frame": int(frame),
                "bridged": bool(track.bridged[t]),
                "unseen": bool(track.unseen[t]) if track.unseen is not None else False,
                "root_rotation": track.global_orient[t].tolist(),
                "root_translation": skin.root_translations[t].tolist(),
                "bone_rotations": quats[t].tolist(),
                "joints": track.joints[t].tolist(),
            }
            for t, frame in enumerate(frames)
        ],
    }


def object_record(frames: list[int], track: ObjectTrack, mesh_name: str) -> dict:
    """The "object" entry of `poses.json`."""
    return {
        "mesh": mesh_name,
        "mesh_offset_m": track.mesh_offset_m,
        "per_frame": [
            {
                "frame": int(frame),
                "tracked": bool(track.tracked[t]),
                "rotation": track.poses[t, :3, :3].tolist(),
                "translation": track.poses[t, :3, 3].tolist(),
            }
            for t, frame in enumerate(frames)
        ],
    }


def rest_mesh(track: HandTrack) -> Mesh:
    """The take's hand mesh in its rest pose (canonical frame)."""
    vertices, _ = rest_hand(track)
    return Mesh(vertices.astype(np.float32), track.faces)


def hand_from_record(hand: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The animated hand of a `poses.json` "hand" entry: vertices (T, V, 3) float32, joints (T, 21, 3), faces."""
    layer = open_hand_layer()
    per_frame = hand["per_frame"]
    betas = torch.as_tensor(hand["betas"], dtype=layer.dtype)[None]
    with torch.no_grad():
        _, heads = layer.rest(betas)
    rotations = quaternions_to_matrices(np.array([f["bone_rotations"] for f in per_frame]))
    transl = np.array([f["root_translation"] for f in per_frame]) - heads[0, 0].numpy()
    count = len(per_frame)
    with torch.no_grad():
        out = layer(
            torch.as_tensor(np.array([f["root_rotation"] for f in per_frame]), dtype=layer.dtype),
            torch.as_tensor(rotations[:, 1:], dtype=layer.dtype),
            betas=betas.expand(count, -1),
            transl=torch.as_tensor(transl, dtype=layer.dtype),
        )
    return out.vertices.numpy(), out.joints.numpy().astype(np.float64), layer.faces.numpy()
