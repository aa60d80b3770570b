"""Writes a small stand-in for the licensed MANO model file, with the official file's structure.

Same keys as MANO_RIGHT.pkl / MANO_LEFT.pkl, `shapedirs`/`posedirs`/`J` as chumpy `Ch` objects,
`J_regressor` as an old-style `scipy.sparse.csc.csc_matrix`, pickled with protocol 2 like the real
files, but for a synthetic 133-vertex hand: 16 joints laid out like a hand, a ring of 4 vertices
around every joint and every bone's midpoint, one vertex per fingertip, smooth skinning weights
cut to zero far from a bone, and pose blend shapes only on vertices a joint skins.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.sparse

PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
"""Raw MANO order: wrist, index1-3, middle1-3, little1-3, ring1-3, thumb1-3."""

FINGER_CHAINS = {
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "little": (7, 8, 9),
    "ring": (10, 11, 12),
    "thumb": (13, 14, 15),
}
TIP_ORDER = ("thumb", "index", "middle", "ring", "little")
NUM_JOINTS = 16
RING = 4
TIP_VERTEX_IDS = tuple(2 * NUM_JOINTS * RING + i for i in range(5))
"""Fingertip vertices (thumb, index, middle, ring, little) of the synthetic hand."""
NUM_VERTS = 2 * NUM_JOINTS * RING + 5
NUM_BETAS = 10


def _joint_layout() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rest joints (16, 3) and fingertip positions, metres: fingers along +x, thumb towards +y."""
    joints = np.zeros((NUM_JOINTS, 3))
    tips = {}
    for finger, y, length in (
        ("index", 0.025, 1.0),
        ("middle", 0.005, 1.05),
        ("ring", -0.015, 0.95),
        ("little", -0.033, 0.8),
    ):
        xs = 0.085 + length * np.array([0.0, 0.03, 0.053, 0.073])
        for joint, x in zip(FINGER_CHAINS[finger], xs[:3]):
            joints[joint] = (x, y, 0.0)
        tips[finger] = np.array([xs[3], y, 0.0])
    thumb = np.array(
        [[0.025, 0.035, -0.01], [0.05, 0.055, -0.012], [0.07, 0.07, -0.012], [0.088, 0.082, -0.01]]
    )
    joints[list(FINGER_CHAINS["thumb"])] = thumb[:3]
    tips["thumb"] = thumb[3]
    return joints, tips


def _bone_end(joint: int, joints: np.ndarray, tips: dict[str, np.ndarray]) -> np.ndarray:
    """End point of the bone a joint rotates: its child, its fingertip, or (wrist) the palm."""
    if joint == 0:
        return joints[4]
    for finger, chain in FINGER_CHAINS.items():
        if joint in chain:
            position = chain.index(joint)
            return joints[chain[position + 1]] if position < 2 else tips[finger]
    raise AssertionError(joint)


def _ring(center: np.ndarray, direction: np.ndarray, radius: float) -> np.ndarray:
    direction = direction / np.linalg.norm(direction)
    helper = np.array([0.0, 0.0, 1.0]) if abs(direction[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    n1 = np.cross(direction, helper)
    n1 /= np.linalg.norm(n1)
    n2 = np.cross(direction, n1)
    angles = np.arange(RING) * (2 * np.pi / RING)
    return center + radius * (np.cos(angles)[:, None] * n1 + np.sin(angles)[:, None] * n2)


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((points - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


def make_mano_arrays(side: str = "right", seed: int = 0) -> dict[str, np.ndarray]:
    """The synthetic model as plain numpy arrays (the values a loader must reproduce)."""
    rng = np.random.default_rng(seed)
    joints, tips = _joint_layout()
    starts, ends = joints, np.stack([_bone_end(k, joints, tips) for k in range(NUM_JOINTS)])
    verts = [_ring(joints[k], ends[k] - starts[k], 0.008) for k in range(NUM_JOINTS)]
    verts += [_ring(0.5 * (starts[k] + ends[k]), ends[k] - starts[k], 0.009) for k in range(NUM_JOINTS)]
    verts.append(np.stack([tips[f] for f in TIP_ORDER]))
    v_template = np.concatenate(verts)
    assert v_template.shape == (NUM_VERTS, 3)

    distances = np.stack(
        [_segment_distance(v_template, starts[k], ends[k]) for k in range(NUM_JOINTS)], axis=1
    )
    weights = np.exp(-((distances / 0.012) ** 2))
    weights[weights < 0.1 * weights.max(axis=1, keepdims=True)] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)

    regressor = np.zeros((NUM_JOINTS, NUM_VERTS))
    for k in range(NUM_JOINTS):
        regressor[k, k * RING : (k + 1) * RING] = 1.0 / RING

    posedirs = np.zeros((NUM_VERTS, 3, 9 * (NUM_JOINTS - 1)))
    for k in range(1, NUM_JOINTS):
        skinned = weights[:, k] > 0
        posedirs[skinned, :, 9 * (k - 1) : 9 * k] = rng.normal(0.0, 0.002, (int(skinned.sum()), 3, 9))
    shapedirs = rng.normal(0.0, 0.003, (NUM_VERTS, 3, NUM_BETAS))

    faces = []
    for k in range(NUM_JOINTS):
        for a, b in ((k, NUM_JOINTS + k),):
            for i in range(RING):
                j = (i + 1) % RING
                faces += [
                    (a * RING + i, b * RING + i, b * RING + j),
                    (a * RING + i, b * RING + j, a * RING + j),
                ]
    for finger, tip_vertex in zip(TIP_ORDER, TIP_VERTEX_IDS):
        last = FINGER_CHAINS[finger][2] + NUM_JOINTS
        faces += [(last * RING + i, tip_vertex, last * RING + (i + 1) % RING) for i in range(RING)]
    faces = np.asarray(faces, dtype=np.uint32)

    components, _ = np.linalg.qr(rng.normal(size=(45, 45)))
    arrays = {
        "v_template": v_template,
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": np.array(
            [[4294967295] + list(PARENTS[1:]), list(range(NUM_JOINTS))], dtype=np.int64
        ),
        "f": faces,
        "hands_components": components.T,
        "hands_mean": rng.normal(0.0, 0.15, 45),
        "hands_coeffs": rng.normal(0.0, 1.0, (30, 45)),
        "J": regressor @ v_template,
        "rest_joints": joints,
    }
    if side == "left":
        for key in ("v_template", "J", "rest_joints"):
            arrays[key] = arrays[key] * np.array([-1.0, 1.0, 1.0])
        arrays["f"] = arrays["f"][:, ::-1].copy()
    return arrays


class Ch:
    """Pickles like `chumpy.ch.Ch`: protocol 2 NEWOBJ, then its __dict__ (chumpy drops _parents/_cache)."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self._dirty_vars = {"x"}
        self._itr = None
        self._depends_on_deps = {}
        self._make_dense = False
        self._make_sparse = False


class ChumpyAdd:
    """Pickles like a chumpy expression `chumpy.ch_ops.add` (no stored value, only its terms)."""

    def __init__(self, a: Ch, b: Ch) -> None:
        self.a = a
        self.b = b
        self._dirty_vars = set()


class OldCscMatrix:
    """Pickles like a 2017 `scipy.sparse.csc.csc_matrix` (its instance __dict__)."""

    def __init__(self, dense: np.ndarray) -> None:
        matrix = scipy.sparse.csc_matrix(dense)
        self._shape = matrix.shape
        self.data = matrix.data
        self.indices = matrix.indices
        self.indptr = matrix.indptr
        self.maxprint = 50


class Evil:
    """Pickles as a call to os.system: a loader must refuse it."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        import os

        return (os.system, (self.command,))


@contextlib.contextmanager
def _fake_modules() -> Iterator[None]:
    """Register the stand-in classes under chumpy's and old scipy's module names while pickling."""
    fakes = {
        "chumpy": types.ModuleType("chumpy"),
        "chumpy.ch": types.ModuleType("chumpy.ch"),
        "chumpy.ch_ops": types.ModuleType("chumpy.ch_ops"),
        "scipy.sparse.csc": types.ModuleType("scipy.sparse.csc"),
    }
    for module_name, cls, name in (
        ("chumpy.ch", Ch, "Ch"),
        ("chumpy.ch_ops", ChumpyAdd, "add"),
        ("scipy.sparse.csc", OldCscMatrix, "csc_matrix"),
    ):
        setattr(fakes[module_name], name, cls)
        cls.__module__, cls.__qualname__, cls.__name__ = module_name, name, name
    saved = {name: sys.modules.get(name) for name in fakes}
    sys.modules.update(fakes)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def write_mano_fixture(
    folder: str | Path, side: str = "right", seed: int = 0, overrides: dict | None = None
) -> Path:
    """Write `MANO_RIGHT.pkl` or `MANO_LEFT.pkl` into `folder` and return its path.

    `overrides` replaces entries of the pickled dictionary (e.g. to plant a refused class).
    """
    arrays = make_mano_arrays(side, seed)
    model = {
        "v_template": arrays["v_template"],
        "shapedirs": Ch(arrays["shapedirs"]),
        "posedirs": Ch(arrays["posedirs"]),
        "J_regressor": OldCscMatrix(arrays["J_regressor"]),
        "J_regressor_prior": OldCscMatrix(arrays["J_regressor"]),
        "weights": arrays["weights"],
        "weights_prior": arrays["weights"],
        "kintree_table": arrays["kintree_table"],
        "f": arrays["f"],
        "J": Ch(arrays["J"]),
        "hands_components": arrays["hands_components"],
        "hands_mean": arrays["hands_mean"],
        "hands_coeffs": arrays["hands_coeffs"],
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "vert_sym_idxs": np.arange(NUM_VERTS),
    }
    model.update(overrides or {})
    path = Path(folder) / ("MANO_LEFT.pkl" if side == "left" else "MANO_RIGHT.pkl")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _fake_modules(), open(path, "wb") as handle:
        pickle.dump(model, handle, protocol=2)
    return path
