"""The output folder of `c2f reconstruct`: the one definition shared by the core (writer) and Blender (reader).

```
OUT/reconstruction.json   {"version": 1, "take": "<abs path of the input take or null>", "name": "<take name>",
                           "intrinsics": {fx, fy, cx, cy, width, height, depth_scale[, fps]},
                           "fps": 30.0, "frames": [0, 1, 2, ...], "failed": {"7": "message"},
                           "checkpoint": "...", "format": "ply",
                           "color_files": {"0": {"absolute": "<abs path>", "relative": "<path from OUT>"}}}
OUT/NNNNNN_hand.ply       hand mesh, metres, OpenCV camera frame (x right, y down, z forward); or .obj/.glb
OUT/NNNNNN_object.ply     object mesh, same frame
OUT/NNNNNN.json           {"frame": N, "meshes": {"hand": {"vertices": V, "faces": F}, "object": {...}},
                           "joints": [[x, y, z] * 21], "object_center": [x, y, z], "queries": int,
                           "timings": {stage: seconds}, "bbox": [x0, y0, x1, y1],
                           "made_with": {"checkpoint", "checkpoint_sha256", "settings"}}
OUT/.c2f.lock             while a run writes the folder (`c2f_core.io.lock`)
OUT/take.usdc             optional: the whole take as time-sampled meshes (`c2f_core.io.usd_take`)
```
`frames` lists the frames that have results, `failed` maps the others to their error message.
`color_files` (optional: older folders lack it) names each frame's colour image, the footage
behind the meshes, both absolute and relative to OUT, so a folder moved together with its images
still finds them (`Reconstruction.color_file`); a single frame reconstructed from files has no
take folder, and this is the only record of its image.
Every file is written atomically and a frame's JSON is written after its meshes, so a frame
whose JSON exists is complete. A mesh may be empty (0 vertices) when nothing was found.

This module imports numpy and trimesh only (no torch, no bpy): the Blender add-on bundles it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.mesh_arrays import mesh_arrays
from c2f_core.geometry.mesh_clean import clean_mesh
from c2f_core.io.atomic import ensure_writable_dir, write_text_atomic
from c2f_core.io.intrinsics import Intrinsics, intrinsics_from_dict
from c2f_core.io.mesh_io import MESH_FORMATS, read_mesh, write_mesh

FORMAT_VERSION = 1
SUMMARY_NAME = "reconstruction.json"
USD_NAME = "take.usdc"
DEFAULT_FPS = 30.0
NUM_JOINTS = 21
PARTS = ("hand", "object")
_SUMMARY_REQUIRED = ("version", "name", "intrinsics", "fps", "frames", "failed", "format")
_SUMMARY_OPTIONAL = ("take", "checkpoint", "color_files")
_INFO_KEYS = ("joints", "object_center", "queries", "timings", "bbox")
HAND_MESH_SDF = "network SDF"
"""A frame JSON's "hand_mesh" when the hand is the network's SDF surface."""
HAND_MESH_FIT = "open hand fit"
"""A frame JSON's "hand_mesh" when the hand is the fitted open hand (one topology in every frame)."""


@dataclass(frozen=True)
class FrameFiles:
    """Where one frame's result files live."""

    frame: int
    hand: Path
    object: Path
    info: Path


@dataclass(frozen=True)
class FrameMeshes:
    """One frame's meshes.

    Convention: vertices (V, 3) float32 metres in the OpenCV camera frame (x right, y down,
    z forward); faces (F, 3) int32 indices into the vertices. Either mesh may be empty.
    """

    frame: int
    hand_vertices: np.ndarray
    hand_faces: np.ndarray
    object_vertices: np.ndarray
    object_faces: np.ndarray
    hand_mesh: str | None = None
    """The frame JSON's "hand_mesh" (``HAND_MESH_SDF``, ``HAND_MESH_FIT``), None when not said."""
    joints: np.ndarray | None = None
    """The frame JSON's (21, 3) joints, metres, or None when not written."""
    network_joints: np.ndarray | None = None
    """The network's own (21, 3) joints: the JSON's "network_joints", else its joints."""


@dataclass(frozen=True)
class FrameInfo:
    """The contents of one frame's `NNNNNN.json` (camera-frame metres; pixels for the box)."""

    frame: int
    mesh_sizes: dict[str, tuple[int, int]]
    """(vertices, faces) per part, keys "hand" and "object"."""
    joints: np.ndarray | None
    """(21, 3) hand joints, metres, OpenCV camera frame."""
    object_center: np.ndarray | None
    """(3,) object centre, metres, OpenCV camera frame."""
    queries: int | None
    """Number of SDF queries the reconstruction made."""
    timings: dict[str, float]
    """Seconds per stage."""
    bbox: tuple[float, float, float, float] | None
    """Crop box (x0, y0, x1, y1) in pixels of the input image."""
    hand_mesh: str | None = None
    """What the hand mesh is: ``HAND_MESH_SDF``, ``HAND_MESH_FIT`` (fixed topology), or None (not said)."""
    network_joints: np.ndarray | None = None
    """(21, 3) the network's own joints when `joints` come from elsewhere (landmarks, the fit)."""


@dataclass(frozen=True)
class Reconstruction:
    """A validated output folder of `c2f reconstruct` (files listed, meshes not yet read)."""

    root: Path
    name: str
    take: Path | None
    intrinsics: Intrinsics
    fps: float
    frames: tuple[int, ...]
    failed: dict[int, str]
    checkpoint: str | None
    mesh_format: str
    usd: Path | None
    color_files: dict[int, tuple[Path, str | None]] | None = None
    """frame -> (absolute path, path relative to `root` or None) of its colour image, as recorded;
    None for a folder written before c2f recorded them."""
    depth_lag: int = 0
    """Colour frame t was reconstructed with the take's depth file t + depth_lag (`io.depth_lag`)."""

    def color_file(self, frame: int) -> Path | None:
        """Where the colour image `frame` was reconstructed from is now; None when not found or not recorded.

        The recorded absolute path first, else the recorded path relative to the folder (the folder
        and its images moved together).
        """
        if not self.color_files or frame not in self.color_files:
            return None
        absolute, relative = self.color_files[frame]
        for path in (absolute, None if relative is None else self.root / relative):
            if path is not None and path.is_file():
                return path
        return None

    def files(self, frame: int) -> FrameFiles:
        """The result files of `frame` (which must be one of `frames`)."""
        if frame not in self.frames:
            raise C2FError(f"reconstruction {self.root} has no result for frame {frame}")
        return frame_files(self.root, frame, self.mesh_format)

    @property
    def frame_range(self) -> tuple[int, int]:
        """(first, last) frame number over successful and failed frames."""
        numbers = list(self.frames) + list(self.failed)
        if not numbers:
            raise C2FError(f"reconstruction {self.root} holds no frames")
        return min(numbers), max(numbers)


def frame_files(out_dir: str | Path, frame: int, fmt: str = "ply") -> FrameFiles:
    """The paths of one frame's result files in `out_dir` (whether or not they exist)."""
    out_dir = Path(out_dir)
    stem = f"{int(frame):06d}"
    return FrameFiles(
        frame=int(frame),
        hand=out_dir / f"{stem}_hand.{fmt}",
        object=out_dir / f"{stem}_object.{fmt}",
        info=out_dir / f"{stem}.json",
    )


def _check_format(fmt: str) -> str:
    if fmt not in MESH_FORMATS:
        raise C2FError(f"unknown mesh format '{fmt}' (choose one of {', '.join(MESH_FORMATS)})")
    return fmt


def _check_mesh(mesh: tuple[np.ndarray, np.ndarray], what: str) -> tuple[np.ndarray, np.ndarray]:
    return mesh_arrays(*mesh, what)


def _check_info(info: Mapping[str, object]) -> dict[str, object]:
    """Validate the known keys of a frame's info and return its JSON form."""
    out: dict[str, object] = {}
    for key, value in info.items():
        if key in ("frame", "meshes"):
            raise ValueError(f"frame info key '{key}' is set by write_frame_result, do not pass it")
        if value is None:
            out[key] = None
        elif key in ("joints", "network_joints"):
            joints = np.asarray(value, dtype=np.float64)
            if joints.shape != (NUM_JOINTS, 3):
                raise ValueError(f"{key} must be ({NUM_JOINTS}, 3), got {joints.shape}")
            out[key] = joints.tolist()
        elif key == "object_center":
            center = np.asarray(value, dtype=np.float64)
            if center.shape != (3,):
                raise ValueError(f"object_center must be (3,), got {center.shape}")
            out[key] = center.tolist()
        elif key == "queries":
            out[key] = int(value)  # type: ignore[call-overload]
        elif key == "timings":
            out[key] = {str(stage): float(seconds) for stage, seconds in dict(value).items()}  # type: ignore[call-overload]
        elif key == "bbox":
            box = [float(x) for x in value]  # type: ignore[union-attr]
            if len(box) != 4:
                raise ValueError(f"bbox must be (x0, y0, x1, y1), got {value!r}")
            out[key] = box
        else:
            out[key] = value
    json.dumps(out)  # fail here, not half-way through a file, on a value JSON cannot hold
    return out


def write_frame_result(
    out_dir: str | Path,
    frame: int,
    hand: tuple[np.ndarray, np.ndarray],
    object_mesh: tuple[np.ndarray, np.ndarray],
    info: Mapping[str, object] | None = None,
    fmt: str = "ply",
) -> FrameFiles:
    """Write one frame's hand and object meshes and its JSON into `out_dir`, each file atomically.

    Args:
        out_dir: the output folder (created if needed).
        frame: the take's frame number.
        hand: (vertices (V, 3) metres, OpenCV camera frame; faces (F, 3) int); may be empty.
        object_mesh: the object's (vertices, faces), same convention.
        info: optional keys of `NNNNNN.json`: joints (21, 3) metres, object_center (3,) metres,
            queries (int), timings ({stage: seconds}), bbox (x0, y0, x1, y1) pixels; other
            JSON-serialisable keys are kept as they are.
        fmt: mesh file format, one of `MESH_FORMATS`.

    Returns:
        The paths written. The JSON is written last, so its presence marks a complete frame.
    """
    _check_format(fmt)
    out_dir = ensure_writable_dir(out_dir)
    files = frame_files(out_dir, frame, fmt)
    # Cleaned here, not only in write_mesh, so the JSON's counts are those of the files.
    meshes = {
        "hand": clean_mesh(*_check_mesh(hand, "hand")),
        "object": clean_mesh(*_check_mesh(object_mesh, "object")),
    }
    record: dict[str, object] = {
        "frame": int(frame),
        "meshes": {part: {"vertices": len(v), "faces": len(f)} for part, (v, f) in meshes.items()},
    }
    record.update(_check_info(info or {}))
    write_mesh(files.hand, *meshes["hand"])
    write_mesh(files.object, *meshes["object"])
    write_text_atomic(files.info, json.dumps(record, indent=1) + "\n")
    return files


def write_reconstruction_summary(
    out_dir: str | Path,
    *,
    name: str,
    intrinsics: Intrinsics,
    frames: Iterable[int],
    failed: Mapping[int, str] | None = None,
    fps: float | None = None,
    take: str | Path | None = None,
    checkpoint: str | Path | None = None,
    fmt: str = "ply",
    color_files: Mapping[int, str | Path] | None = None,
    depth_lag: int = 0,
) -> Path:
    """Write `reconstruction.json` (atomically) describing the folder's results.

    Args:
        out_dir: the output folder.
        name: the take's name.
        intrinsics: the take's camera.
        frames: frame numbers that have results (their files must be written).
        failed: frame number -> one-line error message, for frames without results.
        fps: frames per second; defaults to the intrinsics' fps, else 30.
        take: the input take folder (stored as an absolute path) or None.
        checkpoint: the checkpoint used.
        fmt: the mesh format of the frame files.
        color_files: frame number -> the colour image it was made from (recorded absolute and
            relative to `out_dir`), for the footage behind the meshes.
        depth_lag: colour frame t was reconstructed with depth file t + depth_lag (`io.depth_lag`).

    Returns:
        The path of `reconstruction.json`.
    """
    _check_format(fmt)
    out_dir = ensure_writable_dir(out_dir)
    fps = float(fps if fps is not None else (intrinsics.fps or DEFAULT_FPS))
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frame_list = sorted({int(f) for f in frames})
    failed_map = {int(f): str(msg) for f, msg in (failed or {}).items()}
    both = set(frame_list) & set(failed_map)
    if both:
        raise ValueError(f"frame {min(both)} is listed both as a result and as failed")
    summary = {
        "version": FORMAT_VERSION,
        "take": None if take is None else str(Path(take).resolve()),
        "name": str(name),
        "intrinsics": intrinsics.to_dict(),
        "fps": fps,
        "frames": frame_list,
        "failed": {str(f): failed_map[f] for f in sorted(failed_map)},
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "format": fmt,
        "color_files": {
            str(frame): _color_entry(out_dir, Path(color))
            for frame, color in sorted((color_files or {}).items())
        },
        "depth_lag": int(depth_lag),
    }
    path = out_dir / SUMMARY_NAME
    write_text_atomic(path, json.dumps(summary, indent=1) + "\n")
    return path


def _color_entry(out_dir: Path, color: Path) -> dict[str, str | None]:
    absolute = color.resolve()
    try:
        relative = Path(os.path.relpath(absolute, out_dir.resolve())).as_posix()
    except ValueError:  # on another Windows drive: no relative path exists
        relative = None
    return {"absolute": str(absolute), "relative": relative}


def _read_color_files(summary_path: Path, value: object) -> dict[int, tuple[Path, str | None]]:
    if not isinstance(value, dict):
        raise C2FError(f"{summary_path}: 'color_files' must map frame numbers to colour image paths")
    files = {}
    for key, entry in value.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("absolute"), str):
            raise C2FError(
                f"{summary_path}: color_files[{key!r}] must hold an 'absolute' path, found {entry!r}"
            )
        relative = entry.get("relative")
        files[_as_int(key, f"{summary_path} color_files")] = (
            Path(entry["absolute"]),
            relative if isinstance(relative, str) else None,
        )
    return files


def _load_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise C2FError(f"{path}: not valid JSON ({exc})") from None


def _as_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise C2FError(f"{what}: expected a frame number, found {value!r}")
    try:
        return int(value)
    except ValueError:
        raise C2FError(f"{what}: expected a frame number, found {value!r}") from None


def read_reconstruction(out_dir: str | Path) -> Reconstruction:
    """Open and validate an output folder of `c2f reconstruct`, checking that every listed file exists.

    Raises:
        C2FError: naming the problem, when the folder is missing, is not a c2f output, was
            written by a newer format version, or lacks a frame's files.
    """
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise C2FError(f"{root} is not a folder (a reconstruction is the output folder of 'c2f reconstruct')")
    if not root.is_dir():
        raise C2FError(f"reconstruction folder not found: {root}")
    summary_path = root / SUMMARY_NAME
    if not summary_path.is_file():
        raise C2FError(
            f"{root} is not a c2f reconstruction folder (no {SUMMARY_NAME}); make one with "
            f"'c2f reconstruct TAKE --out {root}'"
        )
    data = _load_json(summary_path)
    if not isinstance(data, dict):
        raise C2FError(f"{summary_path}: expected a JSON object")
    missing = [k for k in _SUMMARY_REQUIRED if k not in data]
    if missing:
        raise C2FError(f"{summary_path}: missing key '{missing[0]}'")
    version = data["version"]
    if version != FORMAT_VERSION:
        raise C2FError(
            f"{summary_path}: format version {version!r} is not supported (this c2f reads version "
            f"{FORMAT_VERSION}); update c2f or the add-on"
        )
    fmt = data["format"]
    if fmt not in MESH_FORMATS:
        raise C2FError(
            f"{summary_path}: unknown mesh format {fmt!r} (expected one of {', '.join(MESH_FORMATS)})"
        )
    intrinsics = intrinsics_from_dict(data["intrinsics"], source=f"{summary_path} intrinsics")
    fps = data["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise C2FError(f"{summary_path}: 'fps' must be a positive number, found {fps!r}")
    if not isinstance(data["frames"], list):
        raise C2FError(f"{summary_path}: 'frames' must be a list of frame numbers")
    frames = tuple(sorted({_as_int(f, f"{summary_path} frames") for f in data["frames"]}))
    if not isinstance(data["failed"], dict):
        raise C2FError(f"{summary_path}: 'failed' must map frame numbers to messages")
    failed = {_as_int(k, f"{summary_path} failed"): str(v) for k, v in data["failed"].items()}
    absent = []
    for frame in frames:
        files = frame_files(root, frame, fmt)
        absent += [path for path in (files.hand, files.object, files.info) if not path.is_file()]
    if absent:
        more = f" and {len(absent) - 1} more files" if len(absent) > 1 else ""
        raise C2FError(f"reconstruction {root} is incomplete: {absent[0].name} is missing{more}")
    take = data.get("take")
    checkpoint = data.get("checkpoint")
    color_files = data.get("color_files")
    depth_lag = data.get("depth_lag", 0)
    if isinstance(depth_lag, bool) or not isinstance(depth_lag, int):
        raise C2FError(f"{summary_path}: 'depth_lag' must be a whole number of frames, found {depth_lag!r}")
    usd = root / USD_NAME
    return Reconstruction(
        root=root,
        name=str(data["name"]),
        take=None if take is None else Path(take),
        intrinsics=intrinsics,
        fps=float(fps),
        frames=frames,
        failed=failed,
        checkpoint=None if checkpoint is None else str(checkpoint),
        mesh_format=fmt,
        usd=usd if usd.is_file() else None,
        color_files=None if color_files is None else _read_color_files(summary_path, color_files),
        depth_lag=depth_lag,
    )


def read_frame_info(recon: Reconstruction, frame: int) -> FrameInfo:
    """Read and check one frame's `NNNNNN.json`."""
    path = recon.files(frame).info
    data = _load_json(path)
    if not isinstance(data, dict) or data.get("frame") != frame:
        raise C2FError(f'{path}: expected a JSON object with "frame": {frame}')
    sizes: dict[str, tuple[int, int]] = {}
    for part in PARTS:
        entry = (data.get("meshes") or {}).get(part)
        if not isinstance(entry, dict) or "vertices" not in entry or "faces" not in entry:
            raise C2FError(f"{path}: missing meshes.{part}.vertices/faces")
        sizes[part] = (int(entry["vertices"]), int(entry["faces"]))
    joints, network_joints = (_joints(path, data, key) for key in ("joints", "network_joints"))
    center = data.get("object_center")
    if center is not None:
        center = np.asarray(center, dtype=np.float64)
        if center.shape != (3,):
            raise C2FError(f"{path}: object_center must be [x, y, z], found shape {center.shape}")
    bbox = data.get("bbox")
    if bbox is not None:
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise C2FError(f"{path}: bbox must be [x0, y0, x1, y1], found {bbox!r}")
        bbox = tuple(float(x) for x in bbox)
    queries = data.get("queries")
    return FrameInfo(
        frame=frame,
        mesh_sizes=sizes,
        joints=joints,
        object_center=center,
        queries=None if queries is None else int(queries),
        timings={str(k): float(v) for k, v in (data.get("timings") or {}).items()},
        bbox=bbox,
        hand_mesh=None if data.get("hand_mesh") is None else str(data["hand_mesh"]),
        network_joints=network_joints,
    )


def _joints(path: Path, data: dict, key: str) -> np.ndarray | None:
    """The (21, 3) joints under `key` of a frame JSON, or None."""
    joints = data.get(key)
    if joints is None:
        return None
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (NUM_JOINTS, 3):
        raise C2FError(f"{path}: {key} must be {NUM_JOINTS} [x, y, z] triples, found shape {joints.shape}")
    return joints


def _read_part(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    n_vertices, n_faces = size
    if n_vertices == 0:
        # Some formats (OBJ) cannot be read back when empty; the JSON says there is nothing to read.
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
    mesh = read_mesh(path)
    vertices = np.asarray(mesh.vertices, dtype=np.float32)
    faces = np.asarray(mesh.faces, dtype=np.int32)
    if (len(vertices), len(faces)) != (n_vertices, n_faces):
        raise C2FError(
            f"{path} holds {len(vertices)} vertices and {len(faces)} faces but its frame JSON says "
            f"{n_vertices} and {n_faces} (a file from another run?)"
        )
    return vertices, faces


def read_frame_meshes(recon: Reconstruction, frame: int) -> FrameMeshes:
    """Read one frame's hand and object meshes (float32 metres, OpenCV camera frame)."""
    files = recon.files(frame)
    info = read_frame_info(recon, frame)
    hand_v, hand_f = _read_part(files.hand, info.mesh_sizes["hand"])
    obj_v, obj_f = _read_part(files.object, info.mesh_sizes["object"])
    network = info.network_joints if info.network_joints is not None else info.joints
    return FrameMeshes(frame, hand_v, hand_f, obj_v, obj_f, info.hand_mesh, info.joints, network)


def iter_frame_meshes(
    recon: Reconstruction, frames: Iterable[int] | None = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (frame, hand_vertices, hand_faces, object_vertices, object_faces) one frame at a time.

    The tuples match what `c2f_core.io.usd_take.write_usd_take` consumes.
    """
    for frame in recon.frames if frames is None else frames:
        meshes = read_frame_meshes(recon, frame)
        yield frame, meshes.hand_vertices, meshes.hand_faces, meshes.object_vertices, meshes.object_faces
