"""Image-folder captures in common layouts: DexYCB camera folders, TUM RGB-D sequences, plain color/ + depth/.

```
DexYCB   <subject>/<sequence>/<serial>/color_000000.jpg, aligned_depth_to_color_000000.png (16-bit mm);
         intrinsics from <root>/calibration/intrinsics/<serial>_640x480.yml (color: fx fy ppx ppy),
         found by walking up from the folder; recorded at 30 fps
TUM      rgb.txt, depth.txt ("timestamp path" lines, '#' comments), rgb/*.png, depth/*.png (16-bit,
         5000 units per metre, registered to colour); frames associated by timestamp (at most 0.02 s
         apart); intrinsics of the freiburg1/2/3 colour cameras from the folder name; 30 fps
plain    color/ and depth/ with images numbered in their names (frame 12: color/000012.jpg,
         depth/000012.png, or frame-000012.color.png ...); depth 16-bit PNG (units: depth_scale)
         or .npy (float metres, or integer units); intrinsics from a camera file
```
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from c2f_core.errors import C2FError
from c2f_core.io.capture.base import (
    CameraFile,
    CaptureFrame,
    CaptureReader,
    TimeMatcher,
    numeric_key,
    read_camera_file,
)
from c2f_core.io.images import read_color, read_depth_raw

COLOR_SUFFIXES = (".png", ".jpg", ".jpeg")
DEXYCB_FPS = 30.0
DEXYCB_DEPTH_SCALE_M = 0.001
TUM_FPS = 30.0
TUM_DEPTH_SCALE_M = 1.0 / 5000.0
TUM_MAX_GAP_S = 0.02
"""The TUM benchmark's association tolerance between an RGB and a depth timestamp."""
TUM_CAMERAS = {
    1: (517.3, 516.5, 318.6, 255.3),
    2: (520.9, 521.0, 325.1, 249.7),
    3: (535.4, 539.2, 320.1, 247.6),
}
"""fx, fy, cx, cy of the freiburg1/2/3 colour cameras (TUM RGB-D file-format page; 640x480)."""
DEFAULT_DEPTH_SCALE_M = 0.001
"""Depth unit assumed for a plain folder whose camera file gives none (millimetres)."""
CAMERA_FILE_NAMES = (
    "intrinsics.json",
    "intrinsics.yaml",
    "intrinsics.yml",
    "camera.json",
    "camera.yaml",
    "camera.yml",
)
"""Camera files a plain folder may hold itself."""

_DEXYCB_COLOR = re.compile(r"^color_(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE | re.ASCII)
_DEXYCB_DEPTH = re.compile(r"^aligned_depth_to_color_(\d+)\.png$", re.IGNORECASE | re.ASCII)
_TAKE_FRAME = re.compile(r"^\d+$", re.ASCII)


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, reading only its header."""
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise C2FError(f"cannot read image {path}: corrupt or not an image ({exc})") from None


def _load_pair(
    color_path: Path, depth_path: Path, depth_scale: float, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Decode colour and depth (16-bit PNG in units of depth_scale, or .npy) to RGB + metres."""
    color = read_color(color_path)
    if depth_path.suffix.lower() == ".npy":
        try:
            array = np.load(depth_path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise C2FError(f"cannot read depth {depth_path}: {exc}") from None
        if array.ndim != 2:
            raise C2FError(f"depth {depth_path} has shape {array.shape}; expected (H, W)")
        if np.issubdtype(array.dtype, np.floating):
            depth_m = np.where(np.isfinite(array) & (array > 0), array, 0).astype(np.float32)
        else:
            depth_m = array.astype(np.float32) * np.float32(depth_scale)
    else:
        depth_m = read_depth_raw(depth_path).astype(np.float32) * np.float32(depth_scale)
    width, height = size
    for path, shape in ((color_path, color.shape[:2]), (depth_path, depth_m.shape)):
        if shape != (height, width):
            raise C2FError(f"{path} is {shape[1]}x{shape[0]}; the capture's frames are {width}x{height}")
    return color, depth_m


class _PairedFolder(CaptureReader):
    """Frames given as a list of (colour path, depth path, timestamp) pairs, found when opened."""

    def __init__(
        self,
        path: Path,
        camera_file: Path | None = None,
        depth_scale: float | None = None,
        fps: float | None = None,
    ):
        """Open the folder: pair its images and read its intrinsics.

        Args:
            path: the capture folder.
            camera_file: a camera file that overrides the layout's own intrinsics.
            depth_scale: metres per depth unit, overriding the camera file's and the layout's.
            fps: frame rate, overriding the camera file's and the layout's.
        """
        super().__init__(path)
        self._pairs = self._find_pairs(camera_file, depth_scale, fps)
        self.frame_count = len(self._pairs)

    @abstractmethod
    def _find_pairs(
        self, camera_file: Path | None, depth_scale: float | None, fps: float | None
    ) -> list[tuple[Path, Path, float | None]]:
        """The (colour path, depth path, timestamp) pairs in order; sets `intrinsics` (and may set
        `timestamps_derived` and add `warnings`)."""

    def _warn_unpaired(self, colors: int, depths: int, paired: int) -> None:
        """Note the images left without a partner, if any."""
        if paired != colors or paired != depths:
            self.warnings.append(
                f"{self.path.name} has {colors} colour and {depths} depth images; importing the {paired} "
                f"pairs, skipping {colors - paired} colour and {depths - paired} depth images without a partner"
            )

    def frames(self) -> Iterator[CaptureFrame]:
        """Yield the paired frames in order."""
        size = (self.intrinsics.width, self.intrinsics.height)
        for index, (color_path, depth_path, stamp) in enumerate(self._pairs):
            loader = partial(_load_pair, color_path, depth_path, self.intrinsics.depth_scale, size)
            yield CaptureFrame(index, stamp, color_path.name, loader)


def find_dexycb_intrinsics(folder: Path, width: int, height: int) -> Path | None:
    """Walk up from a DexYCB camera folder to `calibration/intrinsics/<serial>_<W>x<H>.yml`."""
    serial = folder.resolve().name
    for parent in folder.resolve().parents:
        calib = parent / "calibration" / "intrinsics"
        exact = calib / f"{serial}_{width}x{height}.yml"
        if exact.is_file():
            return exact
        others = sorted(calib.glob(f"{serial}_*.yml")) if calib.is_dir() else []
        if others:
            return others[0]
    return None


class DexYCBFolder(_PairedFolder):
    """One DexYCB camera folder (`<serial>/color_NNNNNN.jpg` + `aligned_depth_to_color_NNNNNN.png`)."""

    format_name = "DexYCB folder"

    def _find_pairs(
        self, camera_file: Path | None, depth_scale: float | None, fps: float | None
    ) -> list[tuple[Path, Path, float | None]]:
        path = self.path
        colors, depths = {}, {}
        for entry in path.iterdir():
            if match := _DEXYCB_COLOR.match(entry.name):
                colors[int(match.group(1))] = entry
            elif match := _DEXYCB_DEPTH.match(entry.name):
                depths[int(match.group(1))] = entry
        numbers = sorted(set(colors) & set(depths))
        if not numbers:
            raise C2FError(
                f"{path}: no frame has both color_NNNNNN.jpg and aligned_depth_to_color_NNNNNN.png"
            )
        self._warn_unpaired(len(colors), len(depths), len(numbers))
        width, height = _image_size(colors[numbers[0]])
        if camera_file is None:
            camera_file = find_dexycb_intrinsics(path, width, height)
            if camera_file is None:
                raise C2FError(
                    f"{path}: no calibration/intrinsics/{path.resolve().name}_{width}x{height}.yml found "
                    "in any "
                    "folder above it; pass the camera file with --intrinsics"
                )
        camera = read_camera_file(camera_file)
        scale = depth_scale or camera.depth_scale or DEXYCB_DEPTH_SCALE_M
        rate = fps or camera.fps or DEXYCB_FPS
        self.intrinsics = camera.intrinsics(width, height, scale, rate)
        self.timestamps_derived = True
        return [(colors[n], depths[n], n / rate) for n in numbers]


def _read_tum_list(path: Path) -> list[tuple[float, Path]]:
    entries = []
    for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            stamp = float(parts[0])
            entries.append((stamp, path.parent / parts[1]))
        except (ValueError, IndexError):
            raise C2FError(f"{path}:{line_no}: expected 'timestamp filename', found {line!r}") from None
    return sorted(entries, key=lambda entry: entry[0])


def tum_camera_number(folder: Path) -> int | None:
    """1, 2 or 3 when the folder (or one above it) is named after a freiburgN sequence, else None."""
    for part in (folder.resolve(), *folder.resolve().parents):
        match = re.search(r"freiburg([123])", part.name)
        if match:
            return int(match.group(1))
    return None


class TUMFolder(_PairedFolder):
    """A TUM RGB-D benchmark sequence folder (rgb.txt, depth.txt, rgb/, depth/)."""

    format_name = "TUM RGB-D folder"

    def _find_pairs(
        self, camera_file: Path | None, depth_scale: float | None, fps: float | None
    ) -> list[tuple[Path, Path, float | None]]:
        path = self.path
        colors = _read_tum_list(path / "rgb.txt")
        depths = _read_tum_list(path / "depth.txt")
        if not colors or not depths:
            raise C2FError(
                f"{path}: rgb.txt lists {len(colors)} and depth.txt {len(depths)} images; need both"
            )
        # Both lists are complete in memory, so pushing one list then the other is fine for the matcher.
        matcher = TimeMatcher(TUM_MAX_GAP_S)
        pairs = []
        for side, entries in ((0, colors), (1, depths)):
            for stamp, file in entries:
                pairs += matcher.push(side, stamp, (stamp, file))
        pairs += matcher.close()
        if not pairs:
            raise C2FError(
                f"{path}: no rgb.txt and depth.txt timestamps are within {TUM_MAX_GAP_S} s of each other"
            )
        self._warn_unpaired(len(colors), len(depths), len(pairs))
        first_color = pairs[0][0][1]
        width, height = _image_size(first_color)
        if camera_file is not None:
            camera = read_camera_file(camera_file)
        else:
            number = tum_camera_number(path)
            if number is None:
                raise C2FError(
                    f"{path}: cannot tell the TUM camera from the folder name (no 'freiburg1/2/3' in it); "
                    "pass a camera file with --intrinsics"
                )
            camera = CameraFile(*TUM_CAMERAS[number])
        scale = depth_scale or camera.depth_scale or TUM_DEPTH_SCALE_M
        self.intrinsics = camera.intrinsics(width, height, scale, fps or camera.fps or TUM_FPS)
        return [(color[1], depth[1], color[0]) for color, depth in pairs]


def _numbered_files(folder: Path, suffixes: tuple[str, ...]) -> dict[tuple[int, ...], Path]:
    found: dict[tuple[int, ...], Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.suffix.lower() in suffixes and (key := numeric_key(entry.stem)) is not None:
            found[key] = entry
    return found


def find_folder_camera_file(folder: Path) -> Path | None:
    """A camera file that a plain folder holds itself (intrinsics.json, camera.yaml, ...), if any."""
    for name in CAMERA_FILE_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


class PlainFolder(_PairedFolder):
    """A folder with color/ and depth/ subfolders whose files are paired by the numbers in their names."""

    format_name = "plain color/ + depth/ folder"

    def _find_pairs(
        self, camera_file: Path | None, depth_scale: float | None, fps: float | None
    ) -> list[tuple[Path, Path, float | None]]:
        path = self.path
        colors = _numbered_files(path / "color", COLOR_SUFFIXES)
        depths = _numbered_files(path / "depth", (".png", ".npy"))
        keys = sorted(set(colors) & set(depths))
        if not keys:
            raise C2FError(
                f"{path}: no colour and depth images share a frame number (color/ has {len(colors)}, "
                "depth/ has "
                f"{len(depths)} numbered images)"
            )
        self._warn_unpaired(len(colors), len(depths), len(keys))
        camera_file = camera_file or find_folder_camera_file(path)
        if camera_file is None:
            raise C2FError(
                f"{path}: a plain color/ + depth/ folder needs the camera's intrinsics; "
                "pass --intrinsics FILE "
                "(JSON or YAML with fx, fy, cx, cy) or put intrinsics.json in the folder"
            )
        camera = read_camera_file(camera_file)
        width, height = _image_size(colors[keys[0]])
        if depth_scale is None and camera.depth_scale is None:
            self.warnings.append(
                f"no depth_scale given; assuming depth PNGs are in millimetres ({DEFAULT_DEPTH_SCALE_M} m)"
            )
        scale = depth_scale or camera.depth_scale or DEFAULT_DEPTH_SCALE_M
        rate = fps or camera.fps
        self.intrinsics = camera.intrinsics(width, height, scale, rate)
        # With a known rate a frame's time is its number / fps, so numbering gaps keep their real timing.
        single_numbers = all(len(key) == 1 for key in keys)
        self.timestamps_derived = bool(rate and single_numbers)
        return [
            (colors[key], depths[key], key[0] / rate if rate and single_numbers else None) for key in keys
        ]


def is_take_folder(path: Path) -> bool:
    """True for a folder `Take.open` reads: intrinsics.json and at least one color/N + depth/N.png pair."""
    if (
        not (path / "intrinsics.json").is_file()
        or not (path / "color").is_dir()
        or not (path / "depth").is_dir()
    ):
        return False

    def stems(folder: Path, suffixes: tuple[str, ...]) -> set[str]:
        return {
            e.stem for e in folder.iterdir() if e.suffix.lower() in suffixes and _TAKE_FRAME.match(e.stem)
        }

    return bool(stems(path / "color", COLOR_SUFFIXES) & stems(path / "depth", (".png",)))


def detect_folder_layout(path: Path) -> str | None:
    """Name the capture layout of a folder ('dexycb', 'tum', 'plain'), or None (also None for a take)."""
    if not path.is_dir():
        return None
    if (path / "rgb.txt").is_file() and (path / "depth.txt").is_file():
        return "tum"
    if (path / "color").is_dir() and (path / "depth").is_dir():
        return None if is_take_folder(path) else "plain"
    has_color = has_depth = False
    for entry in path.iterdir():
        has_color = has_color or bool(_DEXYCB_COLOR.match(entry.name))
        has_depth = has_depth or bool(_DEXYCB_DEPTH.match(entry.name))
        if has_color and has_depth:
            return "dexycb"
    return None


def open_folder(
    path: Path,
    layout: str,
    camera_file: Path | None = None,
    depth_scale: float | None = None,
    fps: float | None = None,
) -> CaptureReader:
    """Open a folder of a layout named by `detect_folder_layout`."""
    readers = {"dexycb": DexYCBFolder, "tum": TUMFolder, "plain": PlainFolder}
    if layout not in readers:
        raise ValueError(f"unknown folder layout {layout!r}")
    return readers[layout](path, camera_file, depth_scale, fps)
