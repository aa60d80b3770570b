"""Tiny hand/object meshes, made in code, on which `c2f evaluate`'s numbers are pinned (tests/eval/test_eval_regression.py).

They exercise what makes evaluation slow or subtle: a predicted hand far from the truth (slow
nearest-neighbour queries, several ICP iterations), open predicted meshes (holes: winding numbers
that are not integers), a hand vertex deep in the object and hand vertices outside the object's box.
"""

from __future__ import annotations

import numpy as np
import trimesh


def _open(mesh: trimesh.Trimesh, drop_every: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of `mesh` with every `drop_every`-th face removed (holes in the surface)."""
    keep = np.ones(len(mesh.faces), bool)
    keep[::drop_every] = False
    return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces[keep], np.int64)


def ground_truth() -> dict[str, np.ndarray]:
    """A closed 'hand' (a stretched icosphere) and a closed box 'object' beside it, metres."""
    hand = trimesh.creation.icosphere(subdivisions=3, radius=0.04)
    hand.apply_scale([1.0, 0.6, 0.4])
    hand.apply_translation([0.0, 0.0, 0.5])
    obj = trimesh.creation.box(extents=(0.05, 0.05, 0.08))
    obj.apply_translation([0.055, 0.0, 0.5])
    return {
        "hand_verts": hand.vertices.astype(np.float32),
        "hand_faces": np.asarray(hand.faces),
        "object_verts": obj.vertices.astype(np.float32),
        "object_faces": np.asarray(obj.faces),
    }


def prediction(offset_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A bumpy, scaled, shifted open hand and an open, finely meshed object overlapping it, metres.

    Args:
        offset_m: shift of the predicted hand along x (0.02: far enough for slow neighbour queries).
    """
    rng = np.random.default_rng(7)
    hand = trimesh.creation.icosphere(subdivisions=4, radius=0.04)
    hand.apply_scale([1.1, 0.7, 0.45])
    bumps = 1.0 + 0.04 * rng.standard_normal(len(hand.vertices))
    hand.vertices = hand.vertices * bumps[:, None]
    hand.apply_translation([offset_m, 0.004, 0.503])
    obj = trimesh.creation.box(extents=(0.05, 0.055, 0.075))
    obj = obj.subdivide().subdivide().subdivide()
    obj.apply_translation([0.05 + offset_m, 0.002, 0.5])
    hand_v, hand_f = _open(hand, 97)
    obj_v, obj_f = _open(obj, 53)
    return hand_v.astype(np.float32), hand_f, obj_v.astype(np.float32), obj_f
