"""MANO (Romero et al. 2017) in torch, read from the official model files without chumpy.

The model files are licensed and never shipped: register at https://mano.is.tue.mpg.de, download
"Models & Code", and put `MANO_RIGHT.pkl` (and `MANO_LEFT.pkl`) in a folder named by the
environment variable `C2F_MANO_DIR`, or pass the file's path.

The official files are Python-2 pickles holding chumpy arrays and scipy sparse matrices. They are
read with a restricted unpickler: numpy arrays are rebuilt, chumpy and scipy objects become inert
records turned into numpy afterwards, and any other class (which could run code) is refused.

Model, in the SMPL notation of the MANO paper (per batch element):
    v_shaped = T + B_S(beta)                      T: v_template, B_S: shapedirs . beta
    J        = J_regressor @ v_shaped             16 joints
    v_posed  = v_shaped + B_P(theta)              B_P: posedirs . concat_k(R_k - I), k = 1..15
    G_k      = G_parent(k) [R_k | J_k - J_parent(k)],   G_0 = [R_0 | J_0]
    v        = sum_k w_k (G_k [I | -J_k]) v_posed + trans      (linear blend skinning)
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse
import torch

from c2f_core.errors import C2FError
from c2f_core.hands.base import HandOutput
from c2f_core.hands.rotations import axis_angle_to_matrix

MANO_DIR_ENV = "C2F_MANO_DIR"
"""Environment variable naming the folder that holds MANO_RIGHT.pkl / MANO_LEFT.pkl."""

MANO_URL = "https://mano.is.tue.mpg.de"

MANO_FILE_NAMES = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}

MANO_TIP_VERTEX_IDS = (745, 317, 444, 556, 673)
"""Vertices of the 778-vertex MANO mesh used as fingertips: thumb, index, middle, ring, little."""

MANO_TO_COMMON = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
"""Indices into [16 MANO joints, 5 tips] giving the common order of `hands.base.JOINT_NAMES`.

Raw MANO joint order: wrist, index1-3, middle1-3, little1-3, ring1-3, thumb1-3; the appended
tips are thumb, index, middle, ring, little.
"""

NUM_MANO_JOINTS = 16
NUM_HAND_POSE = 45
"""Axis-angle values of the 15 finger joints."""

_NUMPY_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


def _numpy_multiarray_global(name: str) -> Any:
    try:  # numpy >= 2 (numpy.core is deprecated there)
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric

    return {
        "_reconstruct": multiarray._reconstruct,
        "scalar": multiarray.scalar,
        "_frombuffer": numeric._frombuffer,
    }[name]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for `_codecs.encode`, which Python 3 protocol-2 pickles use to store bytes."""
    if encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _PickledRecord:
    """An inert record of a pickled object whose class we never import (chumpy, old scipy).

    Unpickling calls `__new__` (NEWOBJ or a REDUCE of the class) and `__setstate__` (BUILD);
    both only store what they are given.
    """

    pickled_class = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        record = super().__new__(cls)
        record.args = args
        record.state = None
        return record

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ChumpyRecord(_PickledRecord):
    """A pickled chumpy object; a plain `chumpy.ch.Ch` keeps its array in `state['x']`."""


class _SparseRecord(_PickledRecord):
    """A pickled scipy sparse matrix (its instance `__dict__`)."""


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """Stand-in for `copy_reg._reconstructor` (protocol 0/1 objects), limited to our records."""
    if not (isinstance(cls, type) and issubclass(cls, _PickledRecord)) or base is not object:
        raise pickle.UnpicklingError(f"refusing copy_reg._reconstructor for {cls!r}")
    return cls.__new__(cls)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain Python data, and refuses every other class.

    Subclasses widen it through `extra_global`. A refused class raises C2FError before anything
    of it runs.
    """

    allowed = "numpy arrays and plain Python data"

    def __init__(self, file: Any, source: str, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.source = source

    def extra_global(self, module: str, name: str) -> Any | None:
        """Return a replacement for `module.name`, or None to refuse it."""
        return None

    def find_class(self, module: str, name: str) -> Any:
        """Resolve a pickled global against the allow-list."""
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(module, name)]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
            "_reconstruct",
            "scalar",
        ):
            return _numpy_multiarray_global(name)
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            return _numpy_multiarray_global(name)
        if module in ("__builtin__", "builtins") and name in ("set", "frozenset", "object"):
            return {"set": set, "frozenset": frozenset, "object": object}[name]
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _safe_reconstructor
        replacement = self.extra_global(module, name)
        if replacement is not None:
            return replacement
        raise C2FError(
            f"{self.source}: refusing to load class {module}.{name} (this file may hold only "
            f"{self.allowed}); is this the right file?"
        )


# What unpickling a truncated or garbled file raises; C2FError (a refused class) passes through.
_CORRUPT_PICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    UnicodeDecodeError,
    OverflowError,
    MemoryError,
)


def load_restricted_pickle(path: str | Path, what: str = "pickle") -> Any:
    """Load a pickle that may hold only numpy arrays and plain Python data (Python 2 or 3)."""
    path = Path(path)
    if not path.is_file():
        raise C2FError(f"{what} file not found: {path}")
    return _run_unpickler(RestrictedUnpickler, path, what)


def _run_unpickler(cls: Callable[..., RestrictedUnpickler], path: Path, what: str) -> Any:
    with open(path, "rb") as handle:
        try:
            # latin1: Python 2 str objects (including numpy's raw buffers) come back byte for byte.
            return cls(handle, source=str(path), encoding="latin1").load()
        except _CORRUPT_PICKLE_ERRORS as exc:
            raise C2FError(
                f"cannot read {what} {path}: not a readable pickle ({type(exc).__name__}: {exc})"
            ) from None


class _ManoUnpickler(RestrictedUnpickler):
    """Also accepts chumpy classes and scipy sparse matrices, as inert records."""

    allowed = "numpy arrays, chumpy arrays and scipy sparse matrices"

    def __init__(self, file: Any, source: str, **kwargs: Any) -> None:
        super().__init__(file, source, **kwargs)
        self._record_classes: dict[tuple[str, str], type] = {}

    def extra_global(self, module: str, name: str) -> Any | None:
        if module == "chumpy" or module.startswith("chumpy."):
            base: type = _ChumpyRecord
        elif module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix", "coo_matrix"):
            base = _SparseRecord
        else:
            return None
        key = (module, name)
        if key not in self._record_classes:
            self._record_classes[key] = type(name, (base,), {"pickled_class": f"{module}.{name}"})
        return self._record_classes[key]


class _NotConvertible(Exception):
    pass


def _sparse_from_record(record: _SparseRecord) -> scipy.sparse.spmatrix:
    state = record.state if isinstance(record.state, dict) else {}
    shape = state.get("_shape", state.get("shape"))
    kind = record.pickled_class.rsplit(".", 1)[-1]
    try:
        shape = tuple(int(s) for s in shape)
        if kind == "coo_matrix":
            return scipy.sparse.coo_matrix((state["data"], (state["row"], state["col"])), shape=shape)
        matrix_class = scipy.sparse.csc_matrix if kind == "csc_matrix" else scipy.sparse.csr_matrix
        return matrix_class((state["data"], state["indices"], state["indptr"]), shape=shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise _NotConvertible(f"{record.pickled_class} with state keys {sorted(state)} ({exc})") from None


def _to_plain(value: Any) -> Any:
    """Turn chumpy records into numpy arrays and sparse records into scipy matrices."""
    if isinstance(value, _ChumpyRecord):
        state = value.state if isinstance(value.state, dict) else {}
        if "x" not in state:
            # A chumpy expression (a sum, a slice...) rather than a stored array: evaluating it
            # would mean re-implementing chumpy, so only such keys the layer needs are an error.
            raise _NotConvertible(f"a chumpy expression of class {value.pickled_class}")
        return np.asarray(_to_plain(state["x"]))
    if isinstance(value, _SparseRecord):
        return _sparse_from_record(value)
    return value


@dataclass(frozen=True)
class ManoModel:
    """The arrays of a MANO model file, as numpy (float64 unless noted)."""

    v_template: np.ndarray
    """(V, 3) template vertices, metres."""
    shapedirs: np.ndarray
    """(V, 3, S) shape blend shapes."""
    posedirs: np.ndarray
    """(V, 3, 135) pose blend shapes, over the 15 finger joints' (R - I) flattened row-major."""
    J_regressor: np.ndarray
    """(16, V) joint regressor (dense)."""
    weights: np.ndarray
    """(V, 16) skinning weights."""
    parents: tuple[int, ...]
    """(16,) parent column of each joint, -1 for the root."""
    faces: np.ndarray
    """(F, 3) int64 triangles."""
    hands_components: np.ndarray
    """(C, 45) PCA basis of the finger pose, one component per row."""
    hands_mean: np.ndarray
    """(45,) mean finger pose (axis-angle)."""
    path: str = ""
    """File the model was read from."""


_REQUIRED_KEYS = (
    "v_template",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "weights",
    "kintree_table",
    "f",
    "hands_components",
    "hands_mean",
)


def resolve_mano_path(path: str | Path | None = None, side: str = "right") -> Path:
    """Find the MANO model file: `path` (a file or a folder), else the folder in `C2F_MANO_DIR`.

    Raises:
        C2FError: saying where to download MANO and where to put it, when no file is found.
    """
    if side not in MANO_FILE_NAMES:
        raise C2FError(f"MANO side must be 'right' or 'left', got {side!r}")
    file_name = MANO_FILE_NAMES[side]
    if path is None:
        folder = os.environ.get(MANO_DIR_ENV, "")
        if not folder:
            raise C2FError(
                f"no MANO model: set {MANO_DIR_ENV} to a folder holding {file_name} or pass its path "
                f"(register at {MANO_URL} and download 'Models & Code'; the model is not shipped)"
            )
        candidate = Path(folder).expanduser() / file_name
        where = f"{MANO_DIR_ENV}={folder}"
    else:
        candidate = Path(path).expanduser()
        if candidate.is_dir():
            candidate = candidate / file_name
        where = str(path)
    if not candidate.is_file():
        raise C2FError(
            f"MANO model file not found: {candidate} (from {where}); register at {MANO_URL}, download "
            f"'Models & Code', and put {file_name} in the folder named by {MANO_DIR_ENV} or pass its path"
        )
    return candidate


def _check_shape(key: str, array: np.ndarray, expected: Sequence[int | None], source: str) -> None:
    if array.ndim != len(expected) or any(e is not None and e != a for e, a in zip(expected, array.shape)):
        shown = tuple("*" if e is None else e for e in expected)
        raise C2FError(f"{source}: '{key}' has shape {array.shape}, expected {shown}")


def _parents_from_kintree(kintree_table: np.ndarray, source: str) -> tuple[int, ...]:
    table = np.asarray(kintree_table).astype(np.int64)
    _check_shape("kintree_table", table, (2, NUM_MANO_JOINTS), source)
    id_to_col = {int(joint_id): col for col, joint_id in enumerate(table[1])}
    parents = [-1]
    for col in range(1, table.shape[1]):
        parent = id_to_col.get(int(table[0, col]))
        if parent is None or parent >= col:
            raise C2FError(
                f"{source}: kintree_table column {col} has parent id {table[0, col]}, not an earlier joint"
            )
        parents.append(parent)
    return tuple(parents)


def load_mano_model(path: str | Path | None = None, side: str = "right") -> ManoModel:
    """Read an official MANO model file (or one with the same structure) into `ManoModel`.

    Args:
        path: the .pkl file or a folder holding `MANO_RIGHT.pkl`/`MANO_LEFT.pkl`; None reads the
            folder named by `C2F_MANO_DIR`.
        side: which file to pick from a folder.

    Raises:
        C2FError: missing file (with download instructions), a refused class, a missing key, a key
            of the wrong shape, or an unsupported blend-skinning style.
    """
    file_path = resolve_mano_path(path, side)
    source = str(file_path)
    raw = _run_unpickler(_ManoUnpickler, file_path, "MANO model")
    if not isinstance(raw, dict):
        raise C2FError(f"{source}: expected a MANO model dictionary, found {type(raw).__name__}")
    missing = [key for key in _REQUIRED_KEYS if key not in raw]
    if missing:
        raise C2FError(f"{source}: MANO model lacks key '{missing[0]}'")
    for key, supported in (("bs_style", "lbs"), ("bs_type", "lrotmin")):
        if key in raw and raw[key] != supported:
            raise C2FError(f"{source}: {key} is {raw[key]!r}; only {supported!r} (as in MANO) is supported")
    arrays: dict[str, Any] = {}
    for key in _REQUIRED_KEYS:
        try:
            arrays[key] = _to_plain(raw[key])
        except _NotConvertible as exc:
            raise C2FError(f"{source}: cannot read '{key}': {exc}") from None

    regressor = arrays["J_regressor"]
    regressor = regressor.toarray() if scipy.sparse.issparse(regressor) else np.asarray(regressor)
    v_template = np.asarray(arrays["v_template"], dtype=np.float64)
    _check_shape("v_template", v_template, (None, 3), source)
    num_verts = v_template.shape[0]
    shapedirs = np.asarray(arrays["shapedirs"], dtype=np.float64)
    _check_shape("shapedirs", shapedirs, (num_verts, 3, None), source)
    posedirs = np.asarray(arrays["posedirs"], dtype=np.float64)
    _check_shape("posedirs", posedirs, (num_verts, 3, 9 * (NUM_MANO_JOINTS - 1)), source)
    regressor = np.asarray(regressor, dtype=np.float64)
    _check_shape("J_regressor", regressor, (NUM_MANO_JOINTS, num_verts), source)
    weights = np.asarray(arrays["weights"], dtype=np.float64)
    _check_shape("weights", weights, (num_verts, NUM_MANO_JOINTS), source)
    faces = np.asarray(arrays["f"]).astype(np.int64)
    _check_shape("f", faces, (None, 3), source)
    if faces.size and (faces.min() < 0 or faces.max() >= num_verts):
        raise C2FError(f"{source}: 'f' indexes vertices outside 0..{num_verts - 1}")
    components = np.asarray(arrays["hands_components"], dtype=np.float64)
    _check_shape("hands_components", components, (None, NUM_HAND_POSE), source)
    hands_mean = np.asarray(arrays["hands_mean"], dtype=np.float64).reshape(-1)
    _check_shape("hands_mean", hands_mean, (NUM_HAND_POSE,), source)
    return ManoModel(
        v_template=v_template,
        shapedirs=shapedirs,
        posedirs=posedirs,
        J_regressor=regressor,
        weights=weights,
        parents=_parents_from_kintree(arrays["kintree_table"], source),
        faces=faces,
        hands_components=components,
        hands_mean=hands_mean,
        path=source,
    )


def _batched(
    value: torch.Tensor | None, batch: int, width: int, name: str, like: torch.Tensor
) -> torch.Tensor:
    """Broadcast an optional (width,), (1, width) or (B, width) input to (B, width)."""
    if value is None:
        return like.new_zeros(batch, width)
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if value.dim() == 1:
        value = value[None]
    if value.dim() != 2 or value.shape[1] != width or value.shape[0] not in (1, batch):
        raise ValueError(
            f"{name} must be ({width},), (1, {width}) or ({batch}, {width}), got {tuple(value.shape)}"
        )
    return value.expand(batch, width)


class ManoLayer(torch.nn.Module):
    """Differentiable MANO: pose (+ shape, translation) to a posed mesh and 21 joints in metres.

    The model's arrays are non-persistent buffers, so a `state_dict` (a checkpoint) never carries
    MANO's licensed data; `.to(device)` moves them.
    """

    def __init__(
        self,
        model: ManoModel | str | Path | None = None,
        *,
        side: str = "right",
        use_pca: bool = False,
        num_pca_comps: int = 45,
        flat_hand_mean: bool = True,
        center_idx: int | None = None,
        tip_vertex_ids: Sequence[int] = MANO_TIP_VERTEX_IDS,
    ) -> None:
        """Build the layer.

        Args:
            model: a loaded `ManoModel`, a .pkl path, a folder holding `MANO_RIGHT.pkl` /
                `MANO_LEFT.pkl`, or None for the folder in `C2F_MANO_DIR`. A left file carries
                its own template and blend shapes; nothing is mirrored here.
            side: which file to pick from a folder.
            use_pca: pose is (B, 3 + num_pca_comps): global axis-angle, then coefficients of the
                first `num_pca_comps` rows of `hands_components`. Otherwise pose is (B, 48)
                axis-angle: global rotation then the 15 finger joints in raw MANO order.
            num_pca_comps: number of PCA components used when `use_pca`.
            flat_hand_mean: True makes the zero finger pose the flat template hand; False adds
                the file's `hands_mean` to the finger pose (as DexYCB's annotations do).
            center_idx: if set, vertices and joints are made relative to this joint (index in
                the common 21-joint order, 0 = wrist) before `trans` is added.
            tip_vertex_ids: vertices used as fingertips (thumb, index, middle, ring, little).
        """
        super().__init__()
        if not isinstance(model, ManoModel):
            model = load_mano_model(model, side)
        num_verts = model.v_template.shape[0]
        tips = tuple(int(i) for i in tip_vertex_ids)
        if len(tips) != 5 or min(tips) < 0 or max(tips) >= num_verts:
            raise C2FError(
                f"{model.path}: fingertip vertex ids {tips} do not fit a mesh of {num_verts} vertices "
                "(the defaults are for the 778-vertex MANO mesh)"
            )
        if use_pca and not 1 <= num_pca_comps <= model.hands_components.shape[0]:
            raise C2FError(
                f"num_pca_comps must be in 1..{model.hands_components.shape[0]}, got {num_pca_comps}"
            )
        if center_idx is not None and not 0 <= center_idx < len(MANO_TO_COMMON):
            raise ValueError(f"center_idx must be in 0..20, got {center_idx}")
        self.use_pca = use_pca
        self.num_pca_comps = num_pca_comps if use_pca else NUM_HAND_POSE
        self.flat_hand_mean = flat_hand_mean
        self.center_idx = center_idx
        self.parents = model.parents
        self.model_path = model.path
        num_shapes = model.shapedirs.shape[2]
        self.num_betas = num_shapes

        def buffer(name: str, array: np.ndarray, dtype: torch.dtype = torch.float32) -> None:
            self.register_buffer(
                name, torch.as_tensor(np.ascontiguousarray(array), dtype=dtype), persistent=False
            )

        buffer("v_template", model.v_template)
        buffer("shapedirs", model.shapedirs.reshape(num_verts * 3, num_shapes))
        buffer("posedirs", model.posedirs.reshape(num_verts * 3, -1))
        buffer("J_regressor", model.J_regressor)
        buffer("weights", model.weights)
        buffer("faces", model.faces, torch.int64)
        buffer("hands_components", model.hands_components[: self.num_pca_comps])
        buffer("hands_mean", np.zeros(NUM_HAND_POSE) if flat_hand_mean else model.hands_mean)
        buffer("tip_vertex_ids", np.asarray(tips), torch.int64)
        buffer("joint_order", np.asarray(MANO_TO_COMMON), torch.int64)

    @property
    def pose_dim(self) -> int:
        """Width of the `pose` input: 3 + num_pca_comps with PCA, else 48."""
        return 3 + self.num_pca_comps

    def full_pose(self, pose: torch.Tensor) -> torch.Tensor:
        """Return the (B, 16, 3) axis-angle of all joints (hands mean included) for `pose`."""
        if pose.dim() != 2 or pose.shape[1] != self.pose_dim:
            raise ValueError(f"pose must be (B, {self.pose_dim}), got {tuple(pose.shape)}")
        fingers = pose[:, 3:] @ self.hands_components if self.use_pca else pose[:, 3:]
        return torch.cat([pose[:, :3], fingers + self.hands_mean], dim=1).reshape(-1, NUM_MANO_JOINTS, 3)

    def forward(
        self,
        pose: torch.Tensor,
        betas: torch.Tensor | None = None,
        trans: torch.Tensor | None = None,
    ) -> HandOutput:
        """Pose the hand.

        Args:
            pose: (B, 48) axis-angle, or (B, 3 + num_pca_comps) with `use_pca` (see __init__).
            betas: (B, S), (1, S) or (S,) shape coefficients; None for the mean shape.
            trans: (B, 3), (1, 3) or (3,) metres added to every vertex and joint; None for zero.

        Returns:
            HandOutput with vertices (B, V, 3) and joints (B, 21, 3) in metres, joints in the
            common order of `hands.base.JOINT_NAMES`.
        """
        pose = pose.to(self.v_template.dtype)
        batch = pose.shape[0]
        rotations = axis_angle_to_matrix(self.full_pose(pose))  # (B, 16, 3, 3)
        betas = _batched(betas, batch, self.num_betas, "betas", pose)
        trans = _batched(trans, batch, 3, "trans", pose)

        num_verts = self.v_template.shape[0]
        v_shaped = self.v_template + (betas @ self.shapedirs.T).reshape(batch, num_verts, 3)
        joints = torch.einsum("jv,bvc->bjc", self.J_regressor, v_shaped)
        eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
        pose_features = (rotations[:, 1:] - eye).reshape(batch, -1)
        v_posed = v_shaped + (pose_features @ self.posedirs.T).reshape(batch, num_verts, 3)

        # Forward kinematics; MANO's kintree lists every parent before its children.
        rot_world: list[torch.Tensor] = []
        pos_world: list[torch.Tensor] = []
        for k, parent in enumerate(self.parents):
            if parent < 0:
                rot_world.append(rotations[:, k])
                pos_world.append(joints[:, k])
            else:
                rot_world.append(rot_world[parent] @ rotations[:, k])
                offset = (joints[:, k] - joints[:, parent])[..., None]
                pos_world.append(pos_world[parent] + (rot_world[parent] @ offset)[..., 0])
        rot = torch.stack(rot_world, dim=1)  # (B, 16, 3, 3)
        posed_joints = torch.stack(pos_world, dim=1)  # (B, 16, 3)
        # Skinning transform of joint k maps a rest-pose point p to R_k (p - J_k) + posed J_k.
        shift = posed_joints - (rot @ joints[..., None])[..., 0]
        blend_rot = torch.einsum("vk,bkij->bvij", self.weights, rot)
        blend_shift = torch.einsum("vk,bki->bvi", self.weights, shift)
        vertices = (blend_rot @ v_posed[..., None])[..., 0] + blend_shift

        tips = vertices[:, self.tip_vertex_ids]
        joints21 = torch.cat([posed_joints, tips], dim=1)[:, self.joint_order]
        if self.center_idx is not None:
            center = joints21[:, self.center_idx : self.center_idx + 1]
            vertices = vertices - center
            joints21 = joints21 - center
        offset = trans[:, None]
        return HandOutput(vertices=vertices + offset, joints=joints21 + offset, faces=self.faces)
