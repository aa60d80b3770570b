"""Intel RealSense recordings: the ROS1 `.bag` files that the RealSense Viewer (and `rs2::recorder`) write.

Topic layout of librealsense's file format (version 3, `src/media/ros/ros_file_format.h`):

```
/device_0/sensor_S/<Stream>_<i>/image/data        sensor_msgs/Image (Depth: mono16 = Z16; Color: rgb8...)
/device_0/sensor_S/<Stream>_<i>/info/camera_info  sensor_msgs/CameraInfo (width, height, K, D)
/device_0/sensor_S/<Stream>_<i>/info              realsense_msgs/StreamInfo (fps, encoding)
/device_0/sensor_S/<Stream>_<i>/tf/<group>        geometry_msgs/Transform, the extrinsic FROM the group's
                                                  reference stream TO this stream (p_to = R p_from + t)
/device_0/sensor_S/option/Depth Units/value       std_msgs/Float32, metres per depth unit
```
Typically Depth_0 is on sensor_0 (the stereo module) and Color_0 on sensor_1 (the RGB camera); the
reader finds them by name instead of assuming the sensor numbers. An Image's header stamp is the
frame's own timestamp (seconds); its bag time is when the recorder received it. The Viewer records
the depth stream as the depth camera sees it, so depth is normally re-projected into the colour
camera here (`reproject_depth`) with the extrinsics from the bag.

Requires the `rosbags` package (pure Python, no ROS and no RealSense SDK).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from c2f_core.errors import C2FError
from c2f_core.io.capture.base import (
    CaptureFrame,
    CaptureReader,
    TimeMatcher,
    frame_period_gap,
    quaternion_to_matrix,
    reproject_depth,
)
from c2f_core.io.intrinsics import Intrinsics

_IMAGE_TOPIC = re.compile(r"^/device_(\d+)/sensor_(\d+)/([A-Za-z]+)_(\d+)/image/data$")
_TF_TOPIC = re.compile(r"/tf/(\d+)$")
_COLOR_CHANNELS = {
    "rgb8": 3,
    "bgr8": 3,
    "rgba8": 4,
    "bgra8": 4,
    "mono8": 1,
    "8uc1": 1,
    "yuyv": 2,
    "uyvy": 2,
    "yuv422": 2,
}
_DEPTH_ENCODINGS = ("mono16", "16uc1", "z16")
DEFAULT_DEPTH_UNITS_M = 0.001
"""Depth unit assumed when a bag records none (the D400 series default)."""
_CLOCK_MISMATCH_S = 1.0
"""Header stamps of colour and depth that start further apart than this are on different clocks."""

_READ_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    struct.error,
    ValueError,
    KeyError,
    IndexError,
)


def float32_to_decimal(value: float) -> float:
    """The shortest decimal a float32 stands for (0.0010000000474974513 -> 0.001): depth units are
    recorded as float32, and the take should say 0.001, not its float32 approximation."""
    return float(f"{float(value):.7g}")


def _import_rosbags() -> tuple[Any, Any]:
    try:
        from rosbags import rosbag1, typesys
    except ImportError:
        raise C2FError(
            "reading RealSense .bag files needs the 'rosbags' package: pip install rosbags "
            "(or pip install 'c2f-handobject[capture]')"
        ) from None
    return rosbag1, typesys


@dataclass(frozen=True)
class _Stream:
    """One image stream of the bag, e.g. Color_0 on sensor 1."""

    kind: str
    prefix: str
    device: int
    sensor: int
    connections: tuple[Any, ...]

    @property
    def label(self) -> str:
        return self.prefix.rsplit("/", 1)[-1]

    @property
    def count(self) -> int:
        return sum(c.msgcount for c in self.connections)


@dataclass(frozen=True)
class RosImage:
    """A sensor_msgs/Image as serialised by ROS1, without copying its pixel bytes."""

    stamp_s: float
    height: int
    width: int
    encoding: str
    is_bigendian: bool
    step: int
    data: memoryview
    depth_units: float | None
    """librealsense's extra trailing float32 (metres per depth unit), when present."""


def parse_image(raw: bytes) -> RosImage:
    """Parse a ROS1-serialised sensor_msgs/Image.

    Parsed by hand rather than with a typestore because librealsense appends a float32 `depth_units`
    after the pixel data while declaring the standard definition, which strict deserialisers reject.
    """
    try:
        _seq, sec, nsec = struct.unpack_from("<III", raw, 0)
        offset = 12
        (n,) = struct.unpack_from("<I", raw, offset)
        offset += 4 + n
        height, width = struct.unpack_from("<II", raw, offset)
        offset += 8
        (n,) = struct.unpack_from("<I", raw, offset)
        encoding = bytes(raw[offset + 4 : offset + 4 + n]).decode("ascii", errors="replace")
        offset += 4 + n
        is_bigendian = raw[offset] != 0
        (step,) = struct.unpack_from("<I", raw, offset + 1)
        (n,) = struct.unpack_from("<I", raw, offset + 5)
        offset += 9
    except (struct.error, IndexError):
        raise C2FError("image message is truncated") from None
    if offset + n > len(raw):
        raise C2FError(f"image message is truncated ({len(raw) - offset} of {n} pixel bytes)")
    data = memoryview(raw)[offset : offset + n]
    offset += n
    depth_units = struct.unpack_from("<f", raw, offset)[0] if len(raw) - offset == 4 else None
    return RosImage(sec + nsec * 1e-9, height, width, encoding, is_bigendian, step, data, depth_units)


def _image_rows(image: RosImage, bytes_per_pixel: int) -> np.ndarray:
    """The (H, W * bytes_per_pixel) uint8 pixel rows of an image, dropping row padding."""
    buffer = np.frombuffer(image.data, dtype=np.uint8)
    row_bytes = image.width * bytes_per_pixel
    if image.step < row_bytes or buffer.size < image.step * image.height:
        raise C2FError(
            f"{image.width}x{image.height} {image.encoding} image has {buffer.size} bytes with a row step of "
            f"{image.step}; expected at least {row_bytes * image.height} (truncated frame?)"
        )
    return buffer[: image.step * image.height].reshape(image.height, image.step)[:, :row_bytes]


def decode_color(image: RosImage) -> np.ndarray:
    """Decode a colour Image message to (H, W, 3) uint8 RGB."""
    encoding = image.encoding.lower()
    if encoding not in _COLOR_CHANNELS:
        raise C2FError(
            f"colour encoding '{image.encoding}' is not supported "
            f"(supported: {', '.join(sorted(_COLOR_CHANNELS))})"
        )
    channels = _COLOR_CHANNELS[encoding]
    pixels = np.ascontiguousarray(_image_rows(image, channels)).reshape(image.height, image.width, channels)
    if encoding == "rgb8":
        rgb = pixels
    elif encoding == "bgr8":
        rgb = pixels[..., ::-1]
    elif encoding == "rgba8":
        rgb = pixels[..., :3]
    elif encoding == "bgra8":
        rgb = pixels[..., 2::-1]
    elif channels == 1:
        rgb = np.repeat(pixels, 3, axis=2)
    elif encoding == "yuyv":
        rgb = cv2.cvtColor(pixels, cv2.COLOR_YUV2RGB_YUYV)
    else:  # librealsense writes its UYVY format as sensor_msgs' "yuv422"
        rgb = cv2.cvtColor(pixels, cv2.COLOR_YUV2RGB_UYVY)
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def decode_depth_units(image: RosImage) -> np.ndarray:
    """Decode a Z16 depth Image message to (H, W) uint16 depth units (0 = missing)."""
    if image.encoding.lower() not in _DEPTH_ENCODINGS:
        raise C2FError(f"depth encoding '{image.encoding}' is not supported (expected 16-bit mono16 / Z16)")
    rows = np.ascontiguousarray(_image_rows(image, 2))
    return (
        rows.view(">u2" if image.is_bigendian else "<u2").reshape(image.height, image.width).astype(np.uint16)
    )


@dataclass(frozen=True)
class _Alignment:
    K_depth: np.ndarray
    K_color: np.ndarray
    R: np.ndarray
    t: np.ndarray


class RealSenseBag(CaptureReader):
    """A RealSense `.bag` recording: colour frames, depth aligned to colour, the colour intrinsics."""

    format_name = "RealSense bag"

    def __init__(self, path: Path):
        super().__init__(path)
        rosbag1, typesys = _import_rosbags()
        from rosbags.serde import SerdeError

        self._reader_error = rosbag1.ReaderError
        self._message_errors = (rosbag1.ReaderError, SerdeError, typesys.TypesysError, *_READ_ERRORS)
        self._typesys = typesys
        self._typestore = typesys.get_typestore(typesys.Stores.ROS1_NOETIC)
        if not path.is_file():
            raise C2FError(f"capture not found: {path}")
        self._reader = rosbag1.Reader(path)
        try:
            self._reader.open()
        except (rosbag1.ReaderError, *_READ_ERRORS) as exc:
            raise C2FError(
                f"{path}: truncated or damaged RealSense bag, cannot read its index ({exc})"
            ) from None
        try:
            self._setup()
        except BaseException:
            self._reader.close()
            raise

    def close(self) -> None:
        """Close the bag file."""
        if self._reader.bio is not None:
            self._reader.close()

    def _streams(self) -> dict[str, list[_Stream]]:
        grouped: dict[str, list[Any]] = {}
        for conn in self._reader.connections:
            if _IMAGE_TOPIC.match(conn.topic):
                grouped.setdefault(conn.topic, []).append(conn)
        streams: dict[str, list[_Stream]] = {}
        for topic, conns in sorted(grouped.items()):
            device, sensor, kind, _index = _IMAGE_TOPIC.match(topic).groups()
            prefix = topic[: -len("/image/data")]
            streams.setdefault(kind, []).append(_Stream(kind, prefix, int(device), int(sensor), tuple(conns)))
        return streams

    def _describe_contents(self, streams: dict[str, list[_Stream]]) -> str:
        if streams:
            found = [f"{s.label} ({s.count} frames)" for group in streams.values() for s in group]
            return "its streams: " + ", ".join(found)
        topics = sorted({c.topic for c in self._reader.connections})
        if not topics:
            return "it has no topics at all"
        shown = ", ".join(topics[:10]) + (f" and {len(topics) - 10} more" if len(topics) > 10 else "")
        return f"its topics: {shown}"

    def _first(self, topic: str) -> Any | None:
        """Deserialise the first message on `topic`, or None when the bag has no such topic."""
        conns = [c for c in self._reader.connections if c.topic == topic]
        if not conns:
            return None
        try:
            for conn, _time, raw in self._reader.messages(connections=conns):
                if conn.msgtype not in self._typestore.types:
                    self._typestore.register(self._typesys.get_types_from_msg(conn.msgdef.data, conn.msgtype))
                return self._typestore.deserialize_ros1(raw, conn.msgtype)
        except self._message_errors as exc:
            raise C2FError(f"{self.path}: cannot read {topic} ({exc})") from None
        return None

    def _setup(self) -> None:
        streams = self._streams()
        missing = [name for name, kind in (("colour", "Color"), ("depth", "Depth")) if not streams.get(kind)]
        if not missing:
            missing = [
                name
                for name, kind in (("colour", "Color"), ("depth", "Depth"))
                if streams[kind][0].count == 0
            ]
        if missing:
            raise C2FError(
                f"{self.path}: this bag has no {' or '.join(missing)} frames (c2f needs a Color and a Depth "
                f"stream); {self._describe_contents(streams)}"
            )
        self._color, self._depth = streams["Color"][0], streams["Depth"][0]
        for kind in ("Color", "Depth"):
            if len(streams[kind]) > 1:
                others = ", ".join(s.label for s in streams[kind][1:])
                self.warnings.append(
                    f"bag has several {kind} streams; using {streams[kind][0].label}, ignoring {others}"
                )

        color_info = self._first(self._color.prefix + "/info/camera_info")
        if color_info is None:
            raise C2FError(
                f"{self.path}: the colour stream has no camera_info (intrinsics); cannot import it"
            )
        depth_info = self._first(self._depth.prefix + "/info/camera_info")
        self._depth_units = self._read_depth_units()
        fps_color = self._stream_fps(self._color)
        fps_depth = self._stream_fps(self._depth)
        self._max_gap = frame_period_gap(fps_color, fps_depth)
        self._use_header_stamps = self._header_clock_usable()

        K_color = np.array(color_info.K, dtype=np.float64).reshape(3, 3)
        self.intrinsics = Intrinsics(
            fx=float(K_color[0, 0]),
            fy=float(K_color[1, 1]),
            cx=float(K_color[0, 2]),
            cy=float(K_color[1, 2]),
            width=int(color_info.width),
            height=int(color_info.height),
            depth_scale=self._depth_units,
            fps=fps_color,
        )
        if K_color[0, 0] <= 0 or K_color[1, 1] <= 0 or color_info.width <= 0 or color_info.height <= 0:
            raise C2FError(
                f"{self.path}: the colour camera_info holds no usable intrinsics (K={list(color_info.K)})"
            )
        self._alignment = self._plan_alignment(color_info, depth_info)
        distorted = [
            name
            for name, info in (("colour", color_info), ("depth", depth_info))
            if info is not None and np.any(np.abs(np.asarray(info.D, dtype=np.float64)) > 1e-6)
        ]
        if distorted:
            self.warnings.append(
                f"the {' and '.join(distorted)} camera has lens distortion coefficients; they are ignored "
                "(a take stores a pinhole camera)"
            )
        self.frame_count = min(self._color.count, self._depth.count)

    def _read_depth_units(self) -> float:
        option = self._first(
            f"/device_{self._depth.device}/sensor_{self._depth.sensor}/option/Depth Units/value"
        )
        if option is not None and float(option.data) > 0:
            return float32_to_decimal(option.data)
        for _conn, _time, raw in self._reader.messages(connections=self._depth.connections):
            units = parse_image(raw).depth_units
            if units is not None and units > 0:
                return float32_to_decimal(units)
            break
        self.warnings.append(f"bag records no depth units; assuming {DEFAULT_DEPTH_UNITS_M} m (millimetres)")
        return DEFAULT_DEPTH_UNITS_M

    def _stream_fps(self, stream: _Stream) -> float | None:
        info = self._first(stream.prefix + "/info")
        if info is not None and getattr(info, "fps", 0) > 0:
            return float(info.fps)
        times = sorted(entry.time for c in stream.connections for entry in self._reader.indexes.get(c.id, []))
        if len(times) > 1 and times[-1] > times[0]:
            return (len(times) - 1) / ((times[-1] - times[0]) * 1e-9)
        return None

    def _header_clock_usable(self) -> bool:
        """Pair by the frames' own timestamps unless they are missing or on unrelated clocks."""
        first = []
        for stream in (self._color, self._depth):
            for _conn, bag_ns, raw in self._reader.messages(connections=stream.connections):
                first.append((parse_image(raw).stamp_s, bag_ns * 1e-9))
                break
        (color_stamp, color_bag), (depth_stamp, depth_bag) = first
        if color_stamp == 0 or depth_stamp == 0:
            self.warnings.append("frames carry no timestamps; pairing colour and depth by recording time")
            return False
        if (
            abs(color_stamp - depth_stamp) > _CLOCK_MISMATCH_S
            and abs(color_bag - depth_bag) < _CLOCK_MISMATCH_S
        ):
            self.warnings.append(
                "colour and depth timestamps are on different clocks; pairing by recording time"
            )
            return False
        return True

    def _extrinsic_from_reference(self, stream: _Stream) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        found = {}
        for conn in self._reader.connections:
            match = _TF_TOPIC.search(conn.topic)
            if match and conn.topic.startswith(stream.prefix + "/tf/"):
                tf = self._first(conn.topic)
                rotation = quaternion_to_matrix(tf.rotation.x, tf.rotation.y, tf.rotation.z, tf.rotation.w)
                translation = np.array(
                    [tf.translation.x, tf.translation.y, tf.translation.z], dtype=np.float64
                )
                found[int(match.group(1))] = (rotation, translation)
        return found

    def _depth_to_color(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Rotation and translation taking depth-camera points to the colour camera, from the tf topics."""
        to_depth = self._extrinsic_from_reference(self._depth)
        to_color = self._extrinsic_from_reference(self._color)
        shared = sorted(set(to_depth) & set(to_color))
        if not shared:
            return None
        R_d, t_d = to_depth[shared[0]]
        R_c, t_c = to_color[shared[0]]
        # Both are reference -> stream: p_s = R_s p_ref + t_s, so p_c = R_c R_d^T (p_d - t_d) + t_c.
        R = R_c @ R_d.T
        return R, t_c - R @ t_d

    def _plan_alignment(self, color_info: Any, depth_info: Any) -> _Alignment | None:
        K_color = np.array(color_info.K, dtype=np.float64).reshape(3, 3)
        color_size = (int(color_info.width), int(color_info.height))
        if depth_info is None:
            self.warnings.append(
                "the depth stream has no camera_info; assuming depth is already aligned to colour"
            )
            return None
        K_depth = np.array(depth_info.K, dtype=np.float64).reshape(3, 3)
        depth_size = (int(depth_info.width), int(depth_info.height))
        extrinsic = self._depth_to_color()
        same_camera = depth_size == color_size and np.allclose(K_depth, K_color, atol=1e-3)
        if extrinsic is None:
            if same_camera:
                return None
            raise C2FError(
                f"{self.path}: depth ({depth_size[0]}x{depth_size[1]}) is not aligned to colour "
                f"({color_size[0]}x{color_size[1]}) and the bag holds no depth/colour extrinsics (tf topics) "
                "to align it"
            )
        R, t = extrinsic
        if same_camera and np.allclose(R, np.eye(3), atol=1e-9) and np.linalg.norm(t) < 1e-9:
            return None
        if K_depth[0, 0] <= 0 or K_depth[1, 1] <= 0:
            raise C2FError(
                f"{self.path}: the depth camera_info holds no usable intrinsics (K={list(depth_info.K)})"
            )
        return _Alignment(K_depth, K_color, R, t)

    def _stamp(self, raw: bytes, bag_ns: int) -> float:
        if self._use_header_stamps:
            sec, nsec = struct.unpack_from("<II", raw, 4)
            return sec + nsec * 1e-9
        return bag_ns * 1e-9

    def frames(self) -> Iterator[CaptureFrame]:
        """Yield colour/depth pairs (nearest in time, within half a frame period), reading the bag once."""
        color_ids = {c.id for c in self._color.connections}
        matcher = TimeMatcher(self._max_gap)
        index = 0
        try:
            for conn, bag_ns, raw in self._reader.messages(
                connections=self._color.connections + self._depth.connections
            ):
                side = 0 if conn.id in color_ids else 1
                stamp = self._stamp(raw, bag_ns)
                for color_item, depth_item in matcher.push(side, stamp, (stamp, raw)):
                    yield self._frame(index, color_item, depth_item)
                    index += 1
        except (self._reader_error, *_READ_ERRORS) as exc:
            raise C2FError(
                f"{self.path}: the bag is truncated or damaged after {index} frame pairs ({exc})"
            ) from None
        for color_item, depth_item in matcher.close():
            yield self._frame(index, color_item, depth_item)
            index += 1
        unpaired_color, unpaired_depth = matcher.unmatched
        if unpaired_color or unpaired_depth:
            self.warnings.append(
                f"bag has {matcher.pushed[0]} colour and {matcher.pushed[1]} depth frames; paired {index} by "
                f"timestamp (within {1000 * self._max_gap:.1f} ms), skipped {unpaired_color} colour and "
                f"{unpaired_depth} depth frames without a partner"
            )

    def _frame(
        self, index: int, color_item: tuple[float, bytes], depth_item: tuple[float, bytes]
    ) -> CaptureFrame:
        stamp, color_raw = color_item
        return CaptureFrame(
            index=index,
            timestamp=stamp,
            name=f"{self.path.name} pair {index} (colour at {stamp:.3f} s)",
            _loader=partial(self._load, color_raw, depth_item[1]),
        )

    def _load(self, color_raw: bytes, depth_raw: bytes) -> tuple[np.ndarray, np.ndarray]:
        intr = self.intrinsics
        color = decode_color(parse_image(color_raw))
        if color.shape[:2] != (intr.height, intr.width):
            raise C2FError(
                f"colour frame is {color.shape[1]}x{color.shape[0]} but the stream's camera_info says "
                f"{intr.width}x{intr.height}"
            )
        depth_image = parse_image(depth_raw)
        tail = depth_image.depth_units
        units = float32_to_decimal(tail) if tail and math.isfinite(tail) and tail > 0 else self._depth_units
        depth_m = decode_depth_units(depth_image).astype(np.float32) * np.float32(units)
        if self._alignment is not None:
            a = self._alignment
            depth_m = reproject_depth(depth_m, a.K_depth, a.K_color, a.R, a.t, (intr.width, intr.height))
        elif depth_m.shape != color.shape[:2]:
            raise C2FError(
                f"depth frame is {depth_m.shape[1]}x{depth_m.shape[0]} but colour is "
                f"{intr.width}x{intr.height}, "
                "and the bag gives no way to align them"
            )
        return color, depth_m
