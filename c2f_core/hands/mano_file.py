"""Reading the official MANO model file (Romero et al. 2017) into numpy, without chumpy.

The model files are licensed and never shipped: register at https://mano.is.tue.mpg.de, download
"Models & Code", and put `MANO_RIGHT.pkl` (and `MANO_LEFT.pkl`) in a folder named by the
environment variable `C2F_MANO_DIR`, or pass the file's path.

The official files are Python-2 pickles holding chumpy arrays and scipy sparse matrices. They are
read with a restricted unpickler (`io.safe_pickle`): numpy arrays are rebuilt, chumpy and scipy
objects become inert records turned into numpy afterwards, and any other class (which could run
code) is refused. The torch layer that poses the model is `hands.mano`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from c2f_core.errors import C2FError
from c2f_core.io.safe_pickle import PickledRecord, RestrictedUnpickler, run_unpickler

MANO_DIR_ENV = "C2F_MANO_DIR"
"""Environment variable naming the folder that holds MANO_RIGHT.pkl / MANO_LEFT.pkl."""

MANO_URL = "https://mano.is.tue.mpg.de"

MANO_FILE_NAMES = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}

NUM_MANO_JOINTS = 16
"""Joints of the MANO kinematic tree: the wrist and 15 finger joints."""

NUM_HAND_POSE = 45
"""Axis-angle values of the 15 finger joints."""


class _ChumpyRecord(PickledRecord):
    """A pickled chumpy object; a plain `chumpy.ch.Ch` keeps its array in `state['x']`."""


class _SparseRecord(PickledRecord):
    """A pickled scipy sparse matrix (its instance `__dict__`)."""


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
    raw = run_unpickler(_ManoUnpickler, file_path, "MANO model")
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
