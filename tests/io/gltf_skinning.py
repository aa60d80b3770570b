"""A reference reader for tests: poses a take.glb at one key by the glTF 2.0 rules, in numpy.

Reads the file with pygltflib, evaluates each animated node's key (no interpolation needed at a
key time), composes node transforms down the hierarchy and skins the mesh:
v' = sum_j w_j * G_j * IBM_j * v (the skinned mesh node's own transform is ignored, per the spec).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib
from scipy.spatial.transform import Rotation

COMPONENTS = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def load(path: str | Path) -> pygltflib.GLTF2:
    """The parsed file."""
    return pygltflib.GLTF2().load(str(path))


def accessor(gltf: pygltflib.GLTF2, index: int) -> np.ndarray:
    """The accessor's data as (count, width) (MAT4 rows as the 16 column-major numbers)."""
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    blob = gltf.binary_blob()
    dtype = COMPONENTS[acc.componentType]
    width = WIDTH[acc.type]
    start = view.byteOffset + (acc.byteOffset or 0)
    data = np.frombuffer(blob, dtype=dtype, count=acc.count * width, offset=start)
    return data.reshape(acc.count, width)


def _trs(node: pygltflib.Node) -> tuple[np.ndarray, np.ndarray]:
    rotation = np.array(node.rotation if node.rotation is not None else [0, 0, 0, 1], np.float64)
    translation = np.array(node.translation if node.translation is not None else [0, 0, 0], np.float64)
    return rotation, translation


def node_transforms(gltf: pygltflib.GLTF2, key: int) -> list[np.ndarray]:
    """Global (4, 4) transform of every node at animation key `key` (scene roots at the identity)."""
    local = {}
    for index, node in enumerate(gltf.nodes):
        local[index] = list(_trs(node))
    for animation in gltf.animations:
        for channel in animation.channels:
            sampler = animation.samplers[channel.sampler]
            values = accessor(gltf, sampler.output)[key].astype(np.float64)
            slot = 0 if channel.target.path == "rotation" else 1
            local[channel.target.node][slot] = values
    matrices = {}
    for index, (rotation, translation) in local.items():
        matrix = np.eye(4)
        matrix[:3, :3] = Rotation.from_quat(rotation).as_matrix()
        matrix[:3, 3] = translation
        matrices[index] = matrix
    parent = {child: index for index, node in enumerate(gltf.nodes) for child in node.children}
    result = []
    for index in range(len(gltf.nodes)):
        matrix = matrices[index]
        walk = index
        while walk in parent:
            walk = parent[walk]
            matrix = matrices[walk] @ matrix
        result.append(matrix)
    return result


def node_named(gltf: pygltflib.GLTF2, name: str) -> int:
    """The index of the node called `name`."""
    return next(i for i, node in enumerate(gltf.nodes) if node.name == name)


def skinned_vertices(gltf: pygltflib.GLTF2, key: int, mesh_node: str = "hand_mesh") -> np.ndarray:
    """(V, 3) the skinned mesh at animation key `key`, in glTF's frame."""
    node = gltf.nodes[node_named(gltf, mesh_node)]
    skin = gltf.skins[node.skin]
    primitive = gltf.meshes[node.mesh].primitives[0]
    positions = accessor(gltf, primitive.attributes.POSITION).astype(np.float64)
    inverse_bind = accessor(gltf, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    globals_ = node_transforms(gltf, key)
    joint_matrices = np.stack([globals_[j] for j in skin.joints]) @ inverse_bind
    out = np.zeros_like(positions)
    homogeneous = np.concatenate([positions, np.ones((len(positions), 1))], 1)
    for k in range(4):
        joints = getattr(primitive.attributes, f"JOINTS_{k}", None)
        if joints is None:
            break
        index = accessor(gltf, joints).astype(np.int64)
        weight = accessor(gltf, getattr(primitive.attributes, f"WEIGHTS_{k}")).astype(np.float64)
        for c in range(4):
            moved = np.einsum("vij,vj->vi", joint_matrices[index[:, c]], homogeneous)[:, :3]
            out += weight[:, c : c + 1] * moved
    return out
