"""RealSense .bag import: bags written with rosbags' ROS1 writer in librealsense's topic layout."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from c2f_core.errors import C2FError
from c2f_core.io.capture import import_capture, open_capture
from c2f_core.io.capture.bag import parse_image
from c2f_core.io.take import Take

rosbags = pytest.importorskip("rosbags")
from rosbags.rosbag1 import Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

STREAM_INFO_MSG = "uint32 fps\nstring encoding\nbool is_recommended\n"
BASE_TIME_S = 1_650_000_000.0


@dataclass
class StreamSpec:
    """One image stream to write: frames, header stamps (s), camera matrix and where it lives."""

    kind: str  # "Color" or "Depth" (or "Infrared")
    sensor: int
    frames: list[np.ndarray]
    stamps: list[float]
    K: np.ndarray
    encoding: str
    extrinsic: tuple[np.ndarray, np.ndarray] | None = None  # reference stream -> this stream
    fps: int = 30
    step_padding: int = 0
    bag_delay_s: float = 0.0  # how much later than its stamp the recorder received each frame
    distortion: list[float] = field(default_factory=lambda: [0.0] * 5)

    @property
    def prefix(self) -> str:
        return f"/device_0/sensor_{self.sensor}/{self.kind}_0"


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


def write_realsense_bag(
    path: Path,
    streams: list[StreamSpec],
    depth_units: float | None = 0.001,
    depth_units_tail: float | None = None,
    extra_topics: bool = True,
    compression: str | None = None,
) -> Path:
    """Write a ROS1 bag the way librealsense's recorder lays it out (static info first, then frames)."""
    store = get_typestore(Stores.ROS1_NOETIC)
    store.register(get_types_from_msg(STREAM_INFO_MSG, "realsense_msgs/msg/StreamInfo"))
    T = store.types
    static_ns = 1  # librealsense writes static info at ros::TIME_MIN
    messages: list[tuple[str, str, int, bytes]] = []

    def add(topic: str, msgtype: str, t_ns: int, msg: object) -> None:
        messages.append((topic, msgtype, t_ns, bytes(store.serialize_ros1(msg, msgtype))))

    def time(seconds: float) -> object:
        sec = int(seconds)
        return T["builtin_interfaces/msg/Time"](sec=sec, nanosec=round((seconds - sec) * 1e9))

    if extra_topics:
        add("/file_version", "std_msgs/msg/UInt32", static_ns, T["std_msgs/msg/UInt32"](data=3))
    for spec in streams:
        height, width = spec.frames[0].shape[:2]
        header = T["std_msgs/msg/Header"](seq=0, stamp=time(0.0), frame_id="")
        roi = T["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        )
        info = T["sensor_msgs/msg/CameraInfo"](
            header=header,
            height=height,
            width=width,
            distortion_model="Brown Conrady",
            D=np.array(spec.distortion, dtype=np.float64),
            K=spec.K.reshape(-1).astype(np.float64),
            R=np.eye(3).reshape(-1),
            P=np.zeros(12),
            binning_x=0,
            binning_y=0,
            roi=roi,
        )
        add(spec.prefix + "/info/camera_info", "sensor_msgs/msg/CameraInfo", static_ns, info)
        stream_info = T["realsense_msgs/msg/StreamInfo"](
            fps=spec.fps, encoding=spec.encoding, is_recommended=True
        )
        add(spec.prefix + "/info", "realsense_msgs/msg/StreamInfo", static_ns, stream_info)
        if spec.extrinsic is not None:
            R, t = spec.extrinsic
            qx, qy, qz, qw = Rotation.from_matrix(R).as_quat()  # scipy is scalar-last, like geometry_msgs
            tf = T["geometry_msgs/msg/Transform"](
                translation=T["geometry_msgs/msg/Vector3"](x=t[0], y=t[1], z=t[2]),
                rotation=T["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw),
            )
            add(spec.prefix + "/tf/0", "geometry_msgs/msg/Transform", static_ns, tf)
        for seq, (frame, stamp) in enumerate(zip(spec.frames, spec.stamps)):
            if frame.dtype == np.uint16:
                row = frame.astype("<u2").view(np.uint8).reshape(height, width * 2)
            else:
                row = frame.reshape(height, -1)
            if spec.step_padding:
                row = np.concatenate([row, np.full((height, spec.step_padding), 7, np.uint8)], axis=1)
            image = T["sensor_msgs/msg/Image"](
                header=T["std_msgs/msg/Header"](seq=seq, stamp=time(stamp), frame_id=""),
                height=height,
                width=width,
                encoding=spec.encoding,
                is_bigendian=0,
                step=row.shape[1],
                data=np.ascontiguousarray(row).reshape(-1),
            )
            raw = bytes(store.serialize_ros1(image, "sensor_msgs/msg/Image"))
            if depth_units_tail is not None:  # librealsense's extra float32 after the pixel data
                raw += struct.pack("<f", depth_units_tail if spec.kind == "Depth" else 0.0)
            messages.append(
                (
                    spec.prefix + "/image/data",
                    "sensor_msgs/msg/Image",
                    _ns(stamp - BASE_TIME_S + 1.0 + spec.bag_delay_s),
                    raw,
                )
            )
    if depth_units is not None:
        depth_sensor = (
            next(s.sensor for s in streams if s.kind == "Depth")
            if any(s.kind == "Depth" for s in streams)
            else 0
        )
        add(
            f"/device_0/sensor_{depth_sensor}/option/Depth Units/value",
            "std_msgs/msg/Float32",
            static_ns,
            T["std_msgs/msg/Float32"](data=depth_units),
        )
    writer = Writer(path)
    if compression:
        writer.set_compression(Writer.CompressionFormat[compression])
    with writer:
        connections = {}
        for topic, msgtype, _t, _raw in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
        for topic, _msgtype, t_ns, raw in sorted(messages, key=lambda m: m[2]):
            writer.write(connections[topic], t_ns, raw)
    return path


def camera_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def aligned_streams(
    n_color: int = 3,
    n_depth: int = 3,
    color_encoding: str = "rgb8",
    padding: int = 0,
    depth_delay_s: float = 0.0,
) -> tuple[StreamSpec, StreamSpec]:
    """A colour and a depth stream of one camera (depth already aligned): 16x12 px, 30 fps."""
    rng = np.random.default_rng(3)
    K = camera_matrix(20.0, 21.0, 7.5, 5.5)
    colors = [rng.integers(0, 256, (12, 16, 3), dtype=np.uint8) for _ in range(n_color)]
    colors = [np.ascontiguousarray(c[..., ::-1]) if color_encoding == "bgr8" else c for c in colors]
    # Depth encodes its frame number so pairing can be checked: 500 + 10 i mm, with a hole.
    depths = []
    for i in range(n_depth):
        depth = (500 + 10 * i + rng.integers(0, 5, (12, 16))).astype(np.uint16)
        depth[0, 0] = 0
        depths.append(depth)
    color = StreamSpec(
        "Color",
        1,
        colors,
        [BASE_TIME_S + i / 30 for i in range(n_color)],
        K,
        color_encoding,
        extrinsic=(np.eye(3), np.zeros(3)),
        step_padding=padding,
    )
    depth = StreamSpec(
        "Depth",
        0,
        depths,
        [BASE_TIME_S + i / 30 + 0.002 for i in range(n_depth)],
        K,
        "mono16",
        extrinsic=(np.eye(3), np.zeros(3)),
        step_padding=padding,
        bag_delay_s=depth_delay_s,
    )
    return color, depth


@pytest.mark.parametrize("encoding,padding", [("rgb8", 0), ("bgr8", 4)])
def test_aligned_bag_pixels_depth_intrinsics_and_timestamps(tmp_path, encoding, padding):
    color, depth = aligned_streams(color_encoding=encoding, padding=padding)
    bag = write_realsense_bag(tmp_path / "grasp.bag", [depth, color])
    result = import_capture(bag, tmp_path / "take", quiet=True)
    assert result.frames_written == 3 and not result.failures and result.stream_error is None
    take = Take.open(tmp_path / "take")
    intr = take.intrinsics
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height) == (20.0, 21.0, 7.5, 5.5, 16, 12)
    assert intr.depth_scale == 0.001  # not float32's 0.0010000000474974513
    assert intr.fps == 30
    for i in range(3):
        frame = take.read_frame(i, check=False)
        expected_rgb = color.frames[i][..., ::-1] if encoding == "bgr8" else color.frames[i]
        np.testing.assert_array_equal(frame.color, expected_rgb)
        np.testing.assert_allclose(frame.depth_m, depth.frames[i] * 0.001, atol=1e-7)
        assert frame.timestamp == pytest.approx(i / 30, abs=2e-6)


@pytest.mark.parametrize("compression", ["LZ4", "BZ2"])
def test_compressed_bag(tmp_path, compression):
    """The Viewer can compress while recording (LZ4 chunks)."""
    color, depth = aligned_streams()
    bag = write_realsense_bag(tmp_path / "packed.bag", [depth, color], compression=compression)
    assert import_capture(bag, tmp_path / "take", quiet=True).frames_written == 3
    frame = Take.open(tmp_path / "take").read_frame(2, check=False)
    np.testing.assert_array_equal(frame.color, color.frames[2])
    np.testing.assert_allclose(frame.depth_m, depth.frames[2] * 0.001, atol=1e-7)


def test_depth_units_from_librealsense_image_tail(tmp_path):
    """Without the option topic the units come from the float32 librealsense appends to each Image."""
    color, depth = aligned_streams()
    bag = write_realsense_bag(
        tmp_path / "l515.bag", [depth, color], depth_units=None, depth_units_tail=0.00025
    )
    assert parse_image(_first_depth_raw(bag)).depth_units == pytest.approx(0.00025)
    import_capture(bag, tmp_path / "take", quiet=True)
    take = Take.open(tmp_path / "take")
    assert take.intrinsics.depth_scale == 0.00025
    np.testing.assert_allclose(take.read_frame(1, check=False).depth_m, depth.frames[1] * 0.00025, atol=1e-7)


def _first_depth_raw(bag: Path) -> bytes:
    from rosbags.rosbag1 import Reader

    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic.endswith("Depth_0/image/data")]
        for _conn, _t, raw in reader.messages(connections=conns):
            return raw
    raise AssertionError("no depth message")


def test_pairs_by_frame_timestamp_and_reports_unpaired_frames(tmp_path):
    """4 colour, 3 depth frames, depth reaching the recorder 50 ms late: pairs follow the frame stamps."""
    color, depth = aligned_streams(n_color=4, n_depth=3, depth_delay_s=0.05)
    bag = write_realsense_bag(tmp_path / "uneven.bag", [depth, color])
    result = import_capture(bag, tmp_path / "take", quiet=True)
    assert result.frames_written == 3
    assert any("4 colour and 3 depth" in w and "skipped 1 colour" in w for w in result.warnings)
    take = Take.open(tmp_path / "take")
    for i in range(3):
        frame = take.read_frame(i, check=False)
        np.testing.assert_array_equal(frame.color, color.frames[i])
        assert np.median(frame.depth_m[frame.depth_m > 0]) == pytest.approx(0.5 + 0.01 * i, abs=0.003)


def _depth_camera_scene() -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Depth seen by a 32x24 depth camera: a wall at 0.8 m and a box face at 0.6 m over a block of pixels."""
    K_depth = camera_matrix(30.0, 30.0, 15.5, 11.5)
    depth_mm = np.full((24, 32), 800, dtype=np.uint16)
    box = (12, 9, 20, 15)  # columns 12..19, rows 9..14 of the depth image
    depth_mm[box[1] : box[3], box[0] : box[2]] = 600
    return K_depth, depth_mm, box


def _depth_to_color_extrinsic() -> tuple[np.ndarray, np.ndarray]:
    R = Rotation.from_euler("xyz", [2.0, -5.0, 1.0], degrees=True).as_matrix()
    return R, np.array([0.05, -0.004, 0.002])


@pytest.mark.parametrize("pin", ["depth", "color"])
def test_unaligned_depth_is_reprojected_into_the_colour_camera(tmp_path, pin):
    """Depth at another resolution, with a rotation and a 5 cm baseline, lands where the geometry says.

    `pin` is the extrinsic group's reference stream: librealsense stores reference -> stream for each.
    """
    K_depth, depth_mm, box = _depth_camera_scene()
    R, t = _depth_to_color_extrinsic()
    K_color = camera_matrix(60.0, 60.0, 23.5, 17.5)
    color_image = np.full((36, 48, 3), 128, dtype=np.uint8)
    if pin == "depth":
        depth_ext, color_ext = (np.eye(3), np.zeros(3)), (R, t)
    else:
        depth_ext, color_ext = (R.T, -R.T @ t), (np.eye(3), np.zeros(3))
    stamps = [BASE_TIME_S, BASE_TIME_S + 1 / 30]
    depth = StreamSpec("Depth", 0, [depth_mm] * 2, stamps, K_depth, "mono16", extrinsic=depth_ext)
    color = StreamSpec("Color", 1, [color_image] * 2, stamps, K_color, "rgb8", extrinsic=color_ext)
    bag = write_realsense_bag(tmp_path / "unaligned.bag", [depth, color])
    import_capture(bag, tmp_path / "take", quiet=True)
    take = Take.open(tmp_path / "take")
    assert (take.intrinsics.width, take.intrinsics.height) == (48, 36)
    aligned = take.read_frame(0).depth_m
    assert aligned.shape == (36, 48)

    # Every colour pixel with depth, carried back into the depth camera, must meet the depth it came from.
    rows, cols = np.nonzero(aligned > 0)
    z = aligned[rows, cols].astype(np.float64)
    p_color = np.stack([(cols - 23.5) * z / 60.0, (rows - 17.5) * z / 60.0, z], -1)
    p_depth = (p_color - t) @ R  # R^T (p - t)
    u = np.round(30.0 * p_depth[:, 0] / p_depth[:, 2] + 15.5).astype(int)
    v = np.round(30.0 * p_depth[:, 1] / p_depth[:, 2] + 11.5).astype(int)
    inside = (u >= 0) & (u < 32) & (v >= 0) & (v < 24)
    assert inside.mean() > 0.98
    error = np.abs(p_depth[inside, 2] - depth_mm[v[inside], u[inside]] * 0.001)
    assert np.mean(error < 0.003) > 0.9  # only pixels on the box's edge may disagree

    # The box face appears where the extrinsics put it (a wrong convention would move it by ~10 px).
    box_center_depth = np.array(
        [
            ((box[0] + box[2] - 1) / 2 - 15.5) * 0.6 / 30.0,
            ((box[1] + box[3] - 1) / 2 - 11.5) * 0.6 / 30.0,
            0.6,
        ]
    )
    center_color = R @ box_center_depth + t
    expected_uv = 60.0 * center_color[:2] / center_color[2] + np.array([23.5, 17.5])
    near_rows, near_cols = np.nonzero((aligned > 0) & (aligned < 0.7))
    assert abs(near_cols.mean() - expected_uv[0]) < 1.0 and abs(near_rows.mean() - expected_uv[1]) < 1.0
    row, col = (int(np.round(x)) for x in expected_uv[::-1])
    assert aligned[row, col] == pytest.approx(center_color[2], abs=0.002)
    # The box fills its footprint: no holes although the colour camera has twice the focal length.
    assert len(near_rows) >= 0.9 * (8 * 6) * (60.0 / 30.0) ** 2 * (0.6 / center_color[2]) ** 2


def test_unaligned_depth_without_extrinsics_is_an_error(tmp_path):
    K_depth, depth_mm, _ = _depth_camera_scene()
    depth = StreamSpec("Depth", 0, [depth_mm], [BASE_TIME_S], K_depth, "mono16")
    color = StreamSpec(
        "Color",
        1,
        [np.zeros((36, 48, 3), np.uint8)],
        [BASE_TIME_S],
        camera_matrix(60.0, 60.0, 23.5, 17.5),
        "rgb8",
    )
    bag = write_realsense_bag(tmp_path / "no_tf.bag", [depth, color])
    with pytest.raises(C2FError, match="not aligned to colour.*no depth/colour extrinsics"):
        open_capture(bag)


def test_bag_without_depth_lists_its_streams(tmp_path):
    color, _ = aligned_streams()
    infrared = StreamSpec(
        "Infrared", 0, [np.zeros((12, 16), np.uint8)] * 2, color.stamps[:2], color.K, "mono8"
    )
    bag = write_realsense_bag(tmp_path / "color_only.bag", [color, infrared], depth_units=None)
    with pytest.raises(C2FError) as info:
        open_capture(bag)
    message = str(info.value)
    assert (
        "no depth frames" in message
        and "Color_0 (3 frames)" in message
        and "Infrared_0 (2 frames)" in message
    )
    assert "\n" not in message


def test_bag_without_image_streams_lists_its_topics(tmp_path):
    bag = write_realsense_bag(tmp_path / "empty.bag", [], depth_units=None)
    with pytest.raises(C2FError, match=r"no colour or depth frames.*its topics: /file_version"):
        open_capture(bag)


def test_truncated_bag_is_a_clear_error(tmp_path):
    color, depth = aligned_streams()
    bag = write_realsense_bag(tmp_path / "full.bag", [depth, color])
    cut = tmp_path / "cut.bag"
    cut.write_bytes(bag.read_bytes()[: bag.stat().st_size // 2])
    with pytest.raises(C2FError, match="cut.bag: truncated or damaged RealSense bag"):
        import_capture(cut, tmp_path / "take", quiet=True)
    assert not (tmp_path / "take").exists()


def test_start_end_step_select_source_frames(tmp_path):
    color, depth = aligned_streams(n_color=4, n_depth=4)
    bag = write_realsense_bag(tmp_path / "four.bag", [depth, color])
    result = import_capture(bag, tmp_path / "take", start=1, step=2, quiet=True)
    assert result.frames_written == 2
    take = Take.open(tmp_path / "take")
    assert take.frame_ids == [0, 1]
    assert take.intrinsics.fps == 15
    np.testing.assert_array_equal(take.read_frame(1, check=False).color, color.frames[3])
    assert take.timestamps == pytest.approx({0: 0.0, 1: 2 / 30}, abs=2e-6)
