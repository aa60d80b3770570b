"""An animated take as one glTF 2.0 binary (`take.glb`): a skinned hand, a rigid object, the camera.

Layout of the file:
```
scene "c2f_take"
  node "camera"       perspective camera at the origin, the take's intrinsics (all four in extras)
  node "hand"         the armature: parent of the joint hierarchy (identity)
    node "wrist"      root joint, rotation + translation keyed per frame
      node ...        one node per joint, rotation keyed per frame (translation = the rest offset)
  node "hand_mesh"    the hand's bind-pose mesh, skinned to the joints (JOINTS_n / WEIGHTS_n)
  node "object"       the object's mesh in its own frame (origin at its centre), rotation + translation keyed
animation "take"      LINEAR samplers, one key per frame at time frame / fps
```
Convention: our data are metres in the OpenCV camera frame (x right, y down, z forward). glTF is
Y up, and a glTF camera looks down its local -Z, so the OpenCV frame turned half a turn about x,
(x, y, z) -> (x, -y, -z), puts the camera at the origin with the identity transform; the root of the
hand and the object get that turn in their keyed transforms. Blender's importer then turns glTF's
Y up into Z up, which lands on `c2f_core.geometry.axes`'s world (camera looking along +Y).

Written with pygltflib (imported when writing, so reading code never needs it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.quaternions import continuous_quaternions
from c2f_core.io.atomic import atomic_path

OPENCV_TO_GLTF = np.diag([1.0, -1.0, -1.0])
"""(3, 3) rotation from the OpenCV camera frame to glTF's (the camera's own OpenGL frame)."""
INFLUENCES_PER_SET = 4
"""Joints per JOINTS_n / WEIGHTS_n attribute set."""


@dataclass
class SkinnedTrack:
    """A skinned mesh with its joint hierarchy and per-frame joint rotations (the hand).

    Convention: the bind pose is in the model frame (the joints unrotated, at `bind_positions`); a
    joint's global transform is its parent's times [R_j | offset_j], with offset_j the bind-pose
    offset from its parent, and the root's is [R_root | root_translation] in the OpenCV frame.
    """

    names: Sequence[str]
    """(J,) node names."""
    parents: Sequence[int]
    """(J,) parent of each joint (-1 for the root, which must be joint 0); parents come before children."""
    bind_positions: np.ndarray
    """(J, 3) joint positions in the bind pose, model frame, metres."""
    vertices: np.ndarray
    """(V, 3) bind-pose mesh, model frame, metres."""
    faces: np.ndarray
    """(F, 3) vertex indices, counter-clockwise seen from outside."""
    weights: np.ndarray
    """(V, J) skinning weights, rows summing to 1."""
    rotations: np.ndarray
    """(T, J, 3, 3) per frame: the root's rotation in the OpenCV frame, the others local to their parent."""
    root_translations: np.ndarray
    """(T, 3) per frame: the root joint's position, OpenCV frame, metres."""


@dataclass
class RigidTrack:
    """A rigid mesh in its own frame and its pose per frame (the object)."""

    vertices: np.ndarray
    """(V, 3) object frame, metres."""
    faces: np.ndarray
    """(F, 3)."""
    poses: np.ndarray
    """(T, 4, 4) object-to-camera transforms, OpenCV frame."""


@dataclass
class TakeCamera:
    """A pinhole camera (OpenCV intrinsics, pixels)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int


@dataclass
class GltfTake:
    """Everything `write_take_glb` writes."""

    frames: Sequence[int]
    """(T,) frame numbers, increasing; a key at time frame / fps."""
    fps: float
    hand: SkinnedTrack | None = None
    object: RigidTrack | None = None
    camera: TakeCamera | None = None
    extras: dict = field(default_factory=dict)
    """JSON-serialisable values stored in the scene's extras."""


def check_take(take: GltfTake) -> int:
    """Raise ValueError unless the arrays of `take` fit together; return its frame count."""
    count = len(take.frames)
    if count == 0:
        raise ValueError("an animated take needs at least one frame")
    if any(b <= a for a, b in zip(take.frames, take.frames[1:])):
        raise ValueError("frames must increase")
    if not (math.isfinite(take.fps) and take.fps > 0):
        raise ValueError(f"fps must be positive, got {take.fps}")
    hand = take.hand
    if hand is not None:
        joints = len(hand.names)
        expected = {
            "bind_positions": (joints, 3),
            "weights": (len(hand.vertices), joints),
            "rotations": (count, joints, 3, 3),
            "root_translations": (count, 3),
        }
        for name, shape in expected.items():
            actual = np.shape(getattr(hand, name))
            if actual != shape:
                raise ValueError(f"hand {name} must be {shape}, got {actual}")
        if len(hand.parents) != joints or hand.parents[0] != -1:
            raise ValueError("hand parents must list one parent per joint, the root (-1) first")
        if any(not 0 <= p < j for j, p in enumerate(hand.parents) if j):
            raise ValueError("every joint's parent must come before it")
    if take.object is not None and np.shape(take.object.poses) != (count, 4, 4):
        raise ValueError(f"object poses must be ({count}, 4, 4), got {np.shape(take.object.poses)}")
    return count


class _Builder:
    """Accumulates the binary buffer, buffer views and accessors of one glTF file."""

    def __init__(self, gltf_module):
        self.lib = gltf_module
        self.gltf = gltf_module.GLTF2(asset=gltf_module.Asset(generator="c2f", version="2.0"))
        self.blob = bytearray()

    def accessor(
        self, array: np.ndarray, kind: str, component: int, target: int | None = None, bounds=False
    ) -> int:
        """Append `array` (count, ...) as one accessor of `kind` ("SCALAR", "VEC3", ...); return its index."""
        lib = self.lib
        data = np.ascontiguousarray(array)
        while len(self.blob) % 4:
            self.blob.append(0)
        view = lib.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=data.nbytes, target=target)
        self.blob.extend(data.tobytes())
        self.gltf.bufferViews.append(view)
        accessor = lib.Accessor(
            bufferView=len(self.gltf.bufferViews) - 1, componentType=component, count=len(data), type=kind
        )
        if bounds:
            flat = data.reshape(len(data), -1)
            accessor.min = flat.min(0).tolist()
            accessor.max = flat.max(0).tolist()
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1

    def node(self, **kwargs) -> int:
        self.gltf.nodes.append(self.lib.Node(**kwargs))
        return len(self.gltf.nodes) - 1


def _import_pygltflib():
    try:
        import pygltflib
    except ImportError:
        raise C2FError("writing take.glb needs the pygltflib package: pip install pygltflib") from None
    return pygltflib


def _mesh(
    builder: _Builder, name: str, vertices: np.ndarray, faces: np.ndarray, extra: dict | None = None
) -> int:
    lib = builder.lib
    positions = builder.accessor(
        np.asarray(vertices, np.float32), "VEC3", lib.FLOAT, lib.ARRAY_BUFFER, bounds=True
    )
    indices = builder.accessor(
        np.asarray(faces, np.uint32).reshape(-1), "SCALAR", lib.UNSIGNED_INT, lib.ELEMENT_ARRAY_BUFFER
    )
    attributes = lib.Attributes(POSITION=positions, **(extra or {}))
    builder.gltf.meshes.append(
        lib.Mesh(
            name=name, primitives=[lib.Primitive(attributes=attributes, indices=indices, mode=lib.TRIANGLES)]
        )
    )
    return len(builder.gltf.meshes) - 1


def _skin_attributes(builder: _Builder, weights: np.ndarray) -> dict[str, int]:
    """JOINTS_n / WEIGHTS_n accessors holding every non-zero weight (sets of four, heaviest first)."""
    lib = builder.lib
    weights = np.asarray(weights, np.float64)
    used = max(1, int((weights > 0).sum(1).max()))
    sets = -(-used // INFLUENCES_PER_SET)
    # Zero columns pad a skeleton of fewer joints than a set holds; they get joint 0 and weight 0.
    padding = max(0, sets * INFLUENCES_PER_SET - weights.shape[1])
    weights = np.concatenate([weights, np.zeros((len(weights), padding))], 1)
    order = np.argsort(-weights, axis=1, kind="stable")[:, : sets * INFLUENCES_PER_SET]
    chosen = np.take_along_axis(weights, order, 1)
    chosen = chosen / chosen.sum(1, keepdims=True)
    order = np.where(chosen > 0, order, 0)
    attributes = {}
    for k in range(sets):
        columns = slice(k * INFLUENCES_PER_SET, (k + 1) * INFLUENCES_PER_SET)
        attributes[f"JOINTS_{k}"] = builder.accessor(
            order[:, columns].astype(np.uint16), "VEC4", lib.UNSIGNED_SHORT, lib.ARRAY_BUFFER
        )
        attributes[f"WEIGHTS_{k}"] = builder.accessor(
            chosen[:, columns].astype(np.float32), "VEC4", lib.FLOAT, lib.ARRAY_BUFFER
        )
    return attributes


def _channel(builder: _Builder, animation, times: int, node: int, path: str, values: np.ndarray) -> None:
    lib = builder.lib
    kind = "VEC4" if path == "rotation" else "VEC3"
    output = builder.accessor(values.astype(np.float32), kind, lib.FLOAT)
    animation.samplers.append(lib.AnimationSampler(input=times, output=output, interpolation="LINEAR"))
    animation.channels.append(
        lib.AnimationChannel(
            sampler=len(animation.samplers) - 1, target=lib.AnimationChannelTarget(node=node, path=path)
        )
    )


def _add_hand(builder: _Builder, hand: SkinnedTrack, animation, times: int, scene_nodes: list[int]) -> None:
    lib = builder.lib
    count = len(hand.names)
    bind = np.asarray(hand.bind_positions, np.float64)
    quats = continuous_quaternions(np.asarray(hand.rotations, np.float64))  # (T, J, 4)
    root_rotation = continuous_quaternions(OPENCV_TO_GLTF @ np.asarray(hand.rotations, np.float64)[:, 0])
    quats[:, 0] = root_rotation
    root_translation = np.asarray(hand.root_translations, np.float64) @ OPENCV_TO_GLTF.T
    joint_nodes = []
    for j, name in enumerate(hand.names):
        parent = hand.parents[j]
        translation = root_translation[0] if parent < 0 else bind[j] - bind[parent]
        joint_nodes.append(
            builder.node(name=str(name), rotation=quats[0, j].tolist(), translation=translation.tolist())
        )
    for j, parent in enumerate(hand.parents):
        if parent >= 0:
            builder.gltf.nodes[joint_nodes[parent]].children.append(joint_nodes[j])
    armature = builder.node(name="hand", children=[joint_nodes[0]])
    # The bind pose has every joint unrotated at its bind position: the inverse is a pure translation.
    inverse_bind = np.tile(np.eye(4), (count, 1, 1))
    inverse_bind[:, :3, 3] = -bind
    ibm = builder.accessor(
        np.ascontiguousarray(inverse_bind.transpose(0, 2, 1)).astype(np.float32), "MAT4", lib.FLOAT
    )
    builder.gltf.skins.append(
        lib.Skin(name="hand", joints=joint_nodes, inverseBindMatrices=ibm, skeleton=joint_nodes[0])
    )
    mesh = _mesh(builder, "hand", hand.vertices, hand.faces, _skin_attributes(builder, hand.weights))
    mesh_node = builder.node(name="hand_mesh", mesh=mesh, skin=len(builder.gltf.skins) - 1)
    scene_nodes += [armature, mesh_node]
    for j, node in enumerate(joint_nodes):
        if j == 0 or np.ptp(quats[:, j], axis=0).max() > 0:
            _channel(builder, animation, times, node, "rotation", quats[:, j])
    _channel(builder, animation, times, joint_nodes[0], "translation", root_translation)


def _add_object(builder: _Builder, track: RigidTrack, animation, times: int, scene_nodes: list[int]) -> None:
    poses = np.asarray(track.poses, np.float64)
    rotation = continuous_quaternions(OPENCV_TO_GLTF @ poses[:, :3, :3])
    translation = poses[:, :3, 3] @ OPENCV_TO_GLTF.T
    mesh = _mesh(builder, "object", track.vertices, track.faces)
    node = builder.node(
        name="object", mesh=mesh, rotation=rotation[0].tolist(), translation=translation[0].tolist()
    )
    scene_nodes.append(node)
    _channel(builder, animation, times, node, "rotation", rotation)
    _channel(builder, animation, times, node, "translation", translation)


def _add_camera(builder: _Builder, camera: TakeCamera, scene_nodes: list[int]) -> None:
    lib = builder.lib
    yfov = 2.0 * math.atan(camera.height / (2.0 * camera.fy))
    aspect = (camera.width / camera.fx) / (camera.height / camera.fy)
    builder.gltf.cameras.append(
        lib.Camera(
            name="camera",
            type="perspective",
            perspective=lib.Perspective(yfov=yfov, aspectRatio=aspect, znear=0.01, zfar=100.0),
            extras={
                "c2f_intrinsics": {k: getattr(camera, k) for k in ("fx", "fy", "cx", "cy", "width", "height")}
            },
        )
    )
    scene_nodes.append(builder.node(name="camera", camera=len(builder.gltf.cameras) - 1))


def write_take_glb(path: str | Path, take: GltfTake) -> Path:
    """Write an animated take as a glTF 2.0 binary (see the module docstring for its layout).

    Args:
        path: the target file, ending in `.glb`; written atomically.
        take: frames, fps, and any of the hand, the object and the camera (OpenCV frame, metres).

    Returns:
        The path written.

    Raises:
        ValueError: when the arrays do not fit together.
        C2FError: when pygltflib is missing.
    """
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise ValueError(f"take.glb must end in .glb, got {path}")
    check_take(take)
    lib = _import_pygltflib()
    builder = _Builder(lib)
    times = builder.accessor(
        (np.asarray(take.frames, np.float64) / take.fps).astype(np.float32), "SCALAR", lib.FLOAT, bounds=True
    )
    animation = lib.Animation(name="take", samplers=[], channels=[])
    scene_nodes: list[int] = []
    if take.camera is not None:
        _add_camera(builder, take.camera, scene_nodes)
    if take.hand is not None:
        _add_hand(builder, take.hand, animation, times, scene_nodes)
    if take.object is not None:
        _add_object(builder, take.object, animation, times, scene_nodes)
    if animation.channels:
        builder.gltf.animations.append(animation)
    builder.gltf.scenes.append(lib.Scene(name="c2f_take", nodes=scene_nodes, extras=dict(take.extras)))
    builder.gltf.scene = 0
    builder.gltf.buffers.append(lib.Buffer(byteLength=len(builder.blob)))
    builder.gltf.set_binary_blob(bytes(builder.blob))
    with atomic_path(path) as tmp:
        builder.gltf.save_binary(str(tmp))
    return path
