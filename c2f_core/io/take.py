"""Takes: our native on-disk layout for RGB-D frames and sequences.

```
TAKE/intrinsics.json      {"fx","fy","cx","cy","width","height","depth_scale"[,"fps"]}
TAKE/color/000000.png     (or .jpg) 8-bit RGB
TAKE/depth/000000.png     16-bit depth, 0 = missing, metres = value * depth_scale
TAKE/gt/000000.npz        optional ground truth (keys in `c2f_core.io.frames.GT_KEYS`)
TAKE/timestamps.csv       optional "frame,seconds" lines for real capture timing
TAKE/synth.json           optional: the `c2f synth` settings that made the take
TAKE/capture.json         optional: where an imported take came from, written when the import finished
TAKE/capture.partial.json an import that has not finished (rerun it to resume)
```
Reading is lazy: opening a take lists file names only, and frames are decoded one at a time.
"""

from __future__ import annotations

import copy
import itertools
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import depth_units_to_metres, metres_to_depth_units
from c2f_core.io.atomic import TEMP_NAME, atomic_path, ensure_writable_dir, write_text_atomic
from c2f_core.io.frames import RGBDFrame
from c2f_core.io.images import read_color, read_depth_raw, write_color, write_depth_raw
from c2f_core.io.intrinsics import Intrinsics, read_intrinsics, write_intrinsics

COLOR_SUFFIXES = (".png", ".jpg", ".jpeg")
FRAME_FOLDERS = ("color", "depth", "gt")
"""The take's subfolders of per-frame files."""
TAKE_FILES = ("intrinsics.json", "timestamps.csv")
CAPTURE_FILE = "capture.json"
"""Written last by `c2f import-capture`: the take is complete."""
CAPTURE_PARTIAL_FILE = "capture.partial.json"
"""Written first by `c2f import-capture` (its settings, for a resume) and removed with `CAPTURE_FILE`."""
_FRAME_NAME = re.compile(r"^([0-9]+)$")  # ASCII digits only: int() would also read full-width ones
# A median depth outside this range almost always means a wrong depth_scale, not a real scene.
PLAUSIBLE_MEDIAN_DEPTH_M = (0.05, 20.0)


@dataclass(frozen=True)
class FramePaths:
    """Where one frame's files live."""

    color: Path
    depth: Path
    gt: Path | None


def _number_files(folder: Path, suffixes: tuple[str, ...]) -> dict[int, Path]:
    """Frame number -> file; two files with one number (000001.png, 1.png, 0001.jpg) are an error."""
    found: dict[int, Path] = {}
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    for entry in entries:
        if entry.suffix.lower() not in suffixes:
            continue
        match = _FRAME_NAME.match(entry.stem)
        if not match:
            continue
        number = int(match.group(1))
        if number in found:
            raise C2FError(
                f"{folder}: {found[number].name} and {entry.name} are both frame {number}; keep one"
            )
        found[number] = entry
    return found


def _frame_files(folder: Path) -> list[Path]:
    """The per-frame files (NNNNNN.*) in a take subfolder, and temporary files left while writing them."""
    if not folder.is_dir():
        return []
    return [
        entry
        for entry in folder.iterdir()
        if entry.is_file() and (_FRAME_NAME.match(entry.name.split(".")[0]) or TEMP_NAME.match(entry.name))
    ]


def take_has_content(root: str | Path) -> bool:
    """Whether a folder holds (part of) a take: its intrinsics.json or any per-frame file."""
    root = Path(root)
    return (root / "intrinsics.json").exists() or any(_frame_files(root / sub) for sub in FRAME_FOLDERS)


def clear_take(root: str | Path, extra_files: tuple[str, ...] = ()) -> None:
    """Delete a take's files from `root` (intrinsics, timestamps, `extra_files`, color/, depth/, gt/).

    Other files in `root` stay; a frame folder is deleted only when nothing else is left in it.
    """
    root = Path(root)
    for name in TAKE_FILES + extra_files:
        (root / name).unlink(missing_ok=True)
    for sub in FRAME_FOLDERS:
        folder = root / sub
        for entry in _frame_files(folder):
            entry.unlink()
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def find_gaps(frame_ids: list[int]) -> list[tuple[int, int]]:
    """Return the missing (first, last) frame-number ranges between consecutive sorted `frame_ids`."""
    gaps = []
    for a, b in itertools.pairwise(frame_ids):
        if b > a + 1:
            gaps.append((a + 1, b - 1))
    return gaps


def check_depth(
    depth_m: np.ndarray, name: str, valid_range: tuple[float, float] = PLAUSIBLE_MEDIAN_DEPTH_M
) -> None:
    """Fail clearly on a depth frame with no valid pixel or an implausible unit."""
    valid = depth_m[depth_m > 0]
    if valid.size == 0:
        raise C2FError(f"depth frame {name} has no valid pixels (all zeros)")
    median = float(np.median(valid))
    lo, hi = valid_range
    if not lo <= median <= hi:
        raise C2FError(
            f"depth frame {name}: median depth {median:.4g} m is implausible; check depth_scale in "
            "intrinsics.json (metres per depth unit: 0.001 for millimetres, 0.0001 for 0.1 mm)"
        )


class Take:
    """A lazily read sequence of RGB-D frames (a single frame is a take of one frame)."""

    def __init__(
        self, name: str, intrinsics: Intrinsics, frames: dict[int, FramePaths], root: Path | None = None
    ):
        self.name = name
        self.intrinsics = intrinsics
        self.root = root
        self._frames = dict(sorted(frames.items()))
        self.frame_ids: list[int] = list(self._frames)
        self.gaps: list[tuple[int, int]] = find_gaps(self.frame_ids)
        self.unpaired: list[str] = []
        self.timestamps: dict[int, float] = {}
        self.import_incomplete = False
        """True for a take whose `c2f import-capture` has not finished (no capture.json yet)."""
        self.depth_files: dict[int, Path] = {i: paths.depth for i, paths in self._frames.items()}
        """Every depth file of the take by its number, paired with a colour frame or not."""
        self.depth_lag = 0
        """Colour frame t is paired with depth file t + depth_lag (`with_depth_lag`)."""
        self.depth_borrowed: dict[int, int] = {}
        """Frames without depth file t + depth_lag -> the nearest depth file they were paired with."""

    @classmethod
    def open(cls, root: str | Path) -> Take:
        """Open a take folder, listing its frames without decoding them."""
        root = Path(root)
        if not root.exists():
            raise C2FError(f"take folder not found: {root}")
        if not root.is_dir():
            raise C2FError(
                f"{root} is not a folder (a take is a folder with intrinsics.json, color/, depth/)"
            )
        intrinsics = read_intrinsics(root / "intrinsics.json")
        for sub in ("color", "depth"):
            if not (root / sub).is_dir():
                raise C2FError(f"take {root} has no {sub}/ folder")
        colors = _number_files(root / "color", COLOR_SUFFIXES)
        depths = _number_files(root / "depth", (".png",))
        gts = _number_files(root / "gt", (".npz",))
        both = sorted(set(colors) & set(depths))
        if not both:
            raise C2FError(f"take {root} has no frames with both color/NNNNNN.png and depth/NNNNNN.png")
        frames = {i: FramePaths(colors[i], depths[i], gts.get(i)) for i in both}
        take = cls(root.name, intrinsics, frames, root=root)
        take.depth_files = dict(sorted(depths.items()))
        take.unpaired = [f"color/{colors[i].name}" for i in sorted(set(colors) - set(depths))] + [
            f"depth/{depths[i].name}" for i in sorted(set(depths) - set(colors))
        ]
        take.timestamps = _read_timestamps(root / "timestamps.csv")
        take.import_incomplete = (root / CAPTURE_PARTIAL_FILE).is_file() and not (
            root / CAPTURE_FILE
        ).is_file()
        return take

    @classmethod
    def from_files(cls, color: str | Path, depth: str | Path, intrinsics: str | Path) -> Take:
        """Make a one-frame take from a colour file, a depth file and an intrinsics.json."""
        color, depth = Path(color), Path(depth)
        for path, what in ((color, "colour"), (depth, "depth")):
            if not path.is_file():
                raise C2FError(f"{what} file not found: {path}")
        match = _FRAME_NAME.match(depth.stem)
        index = int(match.group(1)) if match else 0
        return cls(depth.stem, read_intrinsics(intrinsics), {index: FramePaths(color, depth, None)})

    def __len__(self) -> int:
        return len(self.frame_ids)

    def paths(self, frame_id: int) -> FramePaths:
        """The files of frame `frame_id`."""
        if frame_id not in self._frames:
            raise C2FError(f"take {self.name} has no frame {frame_id}")
        return self._frames[frame_id]

    def read_depth_file(self, number: int) -> np.ndarray:
        """Depth file `number` in metres (0 = missing), whichever colour frame it is paired with."""
        if number not in self.depth_files:
            raise C2FError(f"take {self.name} has no depth file {number:06d}")
        return depth_units_to_metres(read_depth_raw(self.depth_files[number]), self.intrinsics.depth_scale)

    def with_depth_lag(self, lag: int) -> Take:
        """The take with colour frame t paired with depth file t + lag, for a capture whose depth lags
        its colour (`io.depth_lag`); a frame without that file gets the nearest one there is, and is
        listed in `depth_borrowed`. Ground truth stays with the colour frame."""
        if lag == self.depth_lag:
            return self
        numbers = np.array(sorted(self.depth_files))
        frames, borrowed = {}, {}
        for frame_id, paths in self._frames.items():
            want = frame_id + lag
            got = want if want in self.depth_files else int(numbers[np.abs(numbers - want).argmin()])
            if got != want:
                borrowed[frame_id] = got
            frames[frame_id] = FramePaths(paths.color, self.depth_files[got], paths.gt)
        # The same frames, so the same ids and gaps: only the depth paths differ.
        take = copy.copy(self)
        take._frames = frames
        take.depth_lag, take.depth_borrowed = lag, borrowed
        return take

    def frame_name(self, frame_id: int) -> str:
        """A human-readable id for messages."""
        return f"{self.name}/{frame_id:06d}"

    def read_frame(self, frame_id: int, with_gt: bool = True, check: bool = True) -> RGBDFrame:
        """Decode one frame, checking sizes, depth type and depth units."""
        paths = self.paths(frame_id)
        intr = self.intrinsics
        color = read_color(paths.color)
        depth_raw = read_depth_raw(paths.depth)
        expected = (intr.height, intr.width)
        if depth_raw.shape != color.shape[:2]:
            raise C2FError(
                f"frame {self.frame_name(frame_id)}: colour is {color.shape[1]}x{color.shape[0]} but depth is "
                f"{depth_raw.shape[1]}x{depth_raw.shape[0]} (they must be the same size, depth aligned to colour)"
            )
        if depth_raw.shape != expected:
            raise C2FError(
                f"frame {self.frame_name(frame_id)}: images are {depth_raw.shape[1]}x{depth_raw.shape[0]} but "
                f"intrinsics.json says {intr.width}x{intr.height}"
            )
        depth_m = depth_units_to_metres(depth_raw, intr.depth_scale)
        if check:
            check_depth(depth_m, f"{paths.depth}")
        gt = read_gt(paths.gt) if (with_gt and paths.gt is not None) else None
        return RGBDFrame(
            index=frame_id,
            color=color,
            depth_m=depth_m,
            K=intr.K,
            gt=gt,
            name=self.frame_name(frame_id),
            timestamp=self.timestamps.get(frame_id),
        )

    def __iter__(self) -> Iterator[RGBDFrame]:
        for frame_id in self.frame_ids:
            yield self.read_frame(frame_id)


def read_gt(path: str | Path) -> dict[str, np.ndarray]:
    """Load a ground-truth npz into a dict of arrays."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise C2FError(f"cannot read ground truth {path}: {exc}") from None


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed npz atomically and byte-for-byte reproducibly (fixed zip timestamps)."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as handle:
                np.lib.format.write_array(handle, np.asarray(value), allow_pickle=False)


def _read_timestamps(path: Path) -> dict[int, float]:
    if not path.is_file():
        return {}
    stamps = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(("#", "frame")):
            continue
        try:
            frame, seconds = line.split(",")
            stamps[int(frame)] = float(seconds)
        except ValueError:
            raise C2FError(f"{path}:{line_no}: expected 'frame,seconds', found {line!r}") from None
    return stamps


class TakeWriter:
    """Writes frames into a take folder; every file is written atomically."""

    def __init__(self, root: str | Path, intrinsics: Intrinsics, color_format: str = "png"):
        self.root = ensure_writable_dir(root)
        self.intrinsics = intrinsics
        if color_format not in ("png", "jpg"):
            raise ValueError(f"color_format must be png or jpg, got {color_format}")
        self.color_format = color_format
        self.timestamps: dict[int, float] = {}
        write_intrinsics(self.root / "intrinsics.json", intrinsics)

    def depth_to_raw(self, depth_m: np.ndarray) -> np.ndarray:
        """Quantise metric depth to uint16 units of `depth_scale`; out-of-range values become 0 (missing)."""
        return metres_to_depth_units(depth_m, self.intrinsics.depth_scale)

    def write(
        self,
        frame_id: int,
        color: np.ndarray,
        depth_m: np.ndarray,
        gt: dict[str, np.ndarray] | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Write one frame: colour (H, W, 3) uint8, depth (H, W) metres, optional GT and timestamp."""
        h, w = self.intrinsics.height, self.intrinsics.width
        if color.shape[:2] != (h, w) or depth_m.shape != (h, w):
            raise ValueError(
                f"frame {frame_id}: expected {w}x{h}, got colour {color.shape} depth {depth_m.shape}"
            )
        write_color(self.root / "color" / f"{frame_id:06d}.{self.color_format}", color)
        write_depth_raw(self.root / "depth" / f"{frame_id:06d}.png", self.depth_to_raw(depth_m))
        if gt is not None:
            write_npz(self.root / "gt" / f"{frame_id:06d}.npz", gt)
        if timestamp is not None:
            self.timestamps[frame_id] = float(timestamp)

    def close(self) -> None:
        """Write the timestamps file, if any frame had a timestamp."""
        if self.timestamps:
            lines = ["frame,seconds"] + [f"{k},{v:.9f}" for k, v in sorted(self.timestamps.items())]
            write_text_atomic(self.root / "timestamps.csv", "\n".join(lines) + "\n")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
