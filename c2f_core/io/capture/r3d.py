"""Record3D exports (`.r3d`): the iPhone/iPad app's 3D videos.

An `.r3d` file is a ZIP archive (format as described by Record3D's author in the app's GitHub issues):

```
metadata        JSON: w, h (colour size), dw, dh (depth size), fps, K (the colour camera's 3x3 matrix as
                9 numbers in column-major order: fx, 0, 0, 0, fy, 0, cx, cy, 1), poses, frameTimestamps, ...
rgbd/N.jpg      colour of frame N (N from 0)
rgbd/N.depth    LZFSE-compressed float32 depth in metres, row-major (dh, dw), usually lower resolution
rgbd/N.conf     optional LZFSE-compressed uint8 confidence (dh, dw): 0 low, 1 medium, 2 high
```
Depth is resampled to the colour resolution by nearest neighbour (no value is invented between
surfaces) and the take keeps the colour camera's intrinsics, scaled if the JPEGs are not w x h.
Requires the `lzfse` package.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import crop_resize_intrinsics
from c2f_core.io.capture.base import FLOAT_DEPTH_SCALE_M, CaptureFrame, CaptureReader, resize_nearest
from c2f_core.io.intrinsics import Intrinsics, finite_number

_MEMBER = re.compile(r"^rgbd/(\d+)\.(jpg|jpeg|png|depth|conf)$", re.IGNORECASE)


def _import_lzfse() -> Any:
    try:
        import lzfse
    except ImportError:
        raise C2FError(
            "reading Record3D .r3d files needs the 'lzfse' package: pip install lzfse "
            "(or pip install 'c2f-handobject[capture]')"
        ) from None
    return lzfse


def _positive_number(metadata: dict, key: str, source: Path) -> float:
    value = finite_number(metadata.get(key), f"{source}: metadata '{key}'")
    if value <= 0:
        raise C2FError(f"{source}: metadata '{key}' must be a positive number, found {value!r}")
    return float(value)


class Record3DFile(CaptureReader):
    """A Record3D `.r3d` export read frame by frame from the ZIP archive."""

    format_name = "Record3D"

    def __init__(self, path: Path, min_confidence: int = 0):
        super().__init__(path)
        self._lzfse = _import_lzfse()
        if min_confidence not in (0, 1, 2):
            raise C2FError(
                f"min_confidence must be 0, 1 or 2 (ARKit's low, medium, high), got {min_confidence}"
            )
        self._min_confidence = min_confidence
        if not path.is_file():
            raise C2FError(f"capture not found: {path}")
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise C2FError(
                f"{path}: not a complete .r3d (ZIP) archive, truncated or damaged? ({exc})"
            ) from None
        try:
            self._setup()
        except BaseException:
            self._zip.close()
            raise

    def close(self) -> None:
        """Close the archive."""
        self._zip.close()

    def _read_member(self, name: str) -> bytes:
        try:
            return self._zip.read(name)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise C2FError(f"{self.path}: cannot read {name}: truncated or damaged archive ({exc})") from None

    def _setup(self) -> None:
        names = self._zip.namelist()
        if "metadata" not in names:
            raise C2FError(f"{self.path}: no 'metadata' file in the archive; is this a Record3D .r3d export?")
        try:
            metadata = json.loads(self._read_member("metadata"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise C2FError(f"{self.path}: metadata is not valid JSON ({exc})") from None
        if not isinstance(metadata, dict):
            raise C2FError(f"{self.path}: metadata is not a JSON object")
        width = int(_positive_number(metadata, "w", self.path))
        height = int(_positive_number(metadata, "h", self.path))
        K_values = metadata.get("K")
        try:
            K = np.asarray(K_values, dtype=np.float64).reshape(3, 3).T  # stored column-major
        except (TypeError, ValueError, OverflowError):
            raise C2FError(
                f"{self.path}: metadata 'K' must be 9 numbers (a column-major 3x3), found {K_values!r}"
            ) from None
        if not (K[0, 0] > 0 and K[1, 1] > 0 and np.isfinite(K).all()):
            raise C2FError(f"{self.path}: metadata 'K' holds no usable focal lengths: {K_values!r}")
        self._fps = None if metadata.get("fps") is None else _positive_number(metadata, "fps", self.path)
        self._depth_size = (
            (int(metadata["dh"]), int(metadata["dw"])) if "dh" in metadata and "dw" in metadata else None
        )

        members: dict[str, dict[int, str]] = {"color": {}, "depth": {}, "conf": {}}
        for name in names:
            match = _MEMBER.match(name)
            if match:
                kind = match.group(2).lower()
                members["color" if kind in ("jpg", "jpeg", "png") else kind][int(match.group(1))] = name
        self._colors, self._depths, self._confs = members["color"], members["depth"], members["conf"]
        self._numbers = sorted(set(self._colors) & set(self._depths))
        if not self._numbers:
            raise C2FError(
                f"{self.path}: no frames with both rgbd/N.jpg and rgbd/N.depth "
                f"({len(self._colors)} colour, {len(self._depths)} depth files)"
            )
        only_color = sorted(set(self._colors) - set(self._depths))
        only_depth = sorted(set(self._depths) - set(self._colors))
        if only_color or only_depth:
            self.warnings.append(
                f"{self.path.name} has {len(self._colors)} colour and {len(self._depths)} depth frames; "
                f"importing the {len(self._numbers)} numbers that have both, "
                f"skipping {len(only_color)} colour-only "
                f"and {len(only_depth)} depth-only frames"
            )

        first = self._numbers[0]
        try:
            with Image.open(io.BytesIO(self._read_member(self._colors[first]))) as image:
                color_width, color_height = image.size
        except (UnidentifiedImageError, OSError) as exc:
            raise C2FError(f"{self.path}: cannot read {self._colors[first]} ({exc})") from None
        if (color_width, color_height) != (width, height):
            # K belongs to the w x h image named in the metadata; move it to the JPEGs' actual size.
            K = crop_resize_intrinsics(K, (0, 0, width, height), (color_width, color_height))
            self.warnings.append(
                f"colour images are {color_width}x{color_height} but metadata says {width}x{height}; "
                "intrinsics scaled to the images"
            )
        self.intrinsics = Intrinsics(
            fx=float(K[0, 0]),
            fy=float(K[1, 1]),
            cx=float(K[0, 2]),
            cy=float(K[1, 2]),
            width=color_width,
            height=color_height,
            depth_scale=FLOAT_DEPTH_SCALE_M,
            fps=self._fps,
        )
        stamps = metadata.get("frameTimestamps")
        if (
            isinstance(stamps, list)
            and len(stamps) > self._numbers[-1]
            and all(isinstance(s, (int, float)) for s in stamps)
        ):
            self._stamps: list[float] | None = [
                float(finite_number(s, f"{self.path}: metadata 'frameTimestamps'")) for s in stamps
            ]
        else:
            self._stamps = None
            self.timestamps_derived = self._fps is not None
        self.frame_count = len(self._numbers)

    def frames(self) -> Iterator[CaptureFrame]:
        """Yield the frames that have both colour and depth, in frame-number order."""
        for index, number in enumerate(self._numbers):
            if self._stamps is not None:
                stamp: float | None = self._stamps[number]
            else:
                stamp = number / self._fps if self._fps else None
            yield CaptureFrame(index, stamp, f"{self.path.name}:rgbd/{number}", partial(self._load, number))

    def _decompress(self, name: str, dtype: str) -> np.ndarray:
        compressed = self._read_member(name)
        try:
            raw = self._lzfse.decompress(compressed)
        except (self._lzfse.error, ValueError) as exc:
            reason = f" ({exc})" if str(exc) else ""
            raise C2FError(f"{name} is not valid LZFSE data, truncated or damaged{reason}") from None
        itemsize = np.dtype(dtype).itemsize
        if len(raw) % itemsize:
            raise C2FError(f"{name} holds {len(raw)} bytes, not a whole number of {dtype} values")
        return np.frombuffer(raw, dtype=dtype)

    def _depth_shape(self, count: int, name: str) -> tuple[int, int]:
        if self._depth_size is not None:
            if self._depth_size[0] * self._depth_size[1] != count:
                raise C2FError(
                    f"{name} holds {count} depth values but metadata says "
                    f"{self._depth_size[1]}x{self._depth_size[0]}"
                )
            return self._depth_size
        # Older exports lack dw/dh: depth has the colour image's aspect ratio.
        intr = self.intrinsics
        dw = round(math.sqrt(count * intr.width / intr.height))
        if dw <= 0 or count % dw:
            raise C2FError(f"{name}: cannot infer the depth size of {count} values (metadata has no dw/dh)")
        return count // dw, dw

    def _load(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        intr = self.intrinsics
        name = self._colors[number]
        try:
            with Image.open(io.BytesIO(self._read_member(name))) as image:
                color = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise C2FError(f"cannot read colour {name}: corrupt or not an image ({exc})") from None
        if color.shape[:2] != (intr.height, intr.width):
            raise C2FError(
                f"{name} is {color.shape[1]}x{color.shape[0]}, the first frame was {intr.width}x{intr.height}"
            )
        values = self._decompress(self._depths[number], "<f4")
        depth = values.reshape(self._depth_shape(values.size, self._depths[number])).astype(np.float32)
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(0.0))
        if self._min_confidence > 0 and number in self._confs:
            confidence = self._decompress(self._confs[number], "u1")
            if confidence.size != depth.size:
                raise C2FError(
                    f"{self._confs[number]} holds {confidence.size} values, depth has {depth.size}"
                )
            depth = np.where(confidence.reshape(depth.shape) >= self._min_confidence, depth, np.float32(0.0))
        return color, resize_nearest(depth, intr.height, intr.width)
