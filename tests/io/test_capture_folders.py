"""Image-folder captures: DexYCB camera folders, TUM RGB-D sequences and plain color/ + depth/ folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from c2f_core.errors import C2FError
from c2f_core.io.capture import CaptureOptions, import_capture, is_capture_source
from c2f_core.io.capture.base import read_camera_file
from c2f_core.io.take import Take

W, H = 16, 12


def _frames(count: int, seed: int = 5) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    colors = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(count)]
    depths = [(600 + 20 * i + rng.integers(0, 50, (H, W))).astype(np.uint16) for i in range(count)]
    for depth in depths:
        depth[5, 5] = 0
    return colors, depths


def _save(path: Path, image: np.ndarray) -> np.ndarray:
    """Save an image and return the pixels a reader gets back (JPEG is lossy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=95)
    return np.asarray(Image.open(path).convert("RGB")) if image.ndim == 3 else image


def make_dexycb(root: Path, count: int = 3, serial: str = "836212060125", calibration: bool = True):
    folder = root / "20200709-subject-01" / "20200709_141754" / serial
    colors, depths = _frames(count)
    stored = [_save(folder / f"color_{i:06d}.jpg", c) for i, c in enumerate(colors)]
    for i, depth in enumerate(depths):
        _save(folder / f"aligned_depth_to_color_{i:06d}.png", depth)
    (folder / f"labels_{0:06d}.npz").write_bytes(b"")  # DexYCB keeps labels beside the images
    if calibration:
        calib = root / "calibration" / "intrinsics" / f"{serial}_640x480.yml"
        calib.parent.mkdir(parents=True)
        calib.write_text(
            yaml.safe_dump(
                {
                    "color": {"fx": 15.5, "fy": 15.25, "ppx": 7.75, "ppy": 5.5},
                    "depth": {"fx": 99.0, "fy": 99.0, "ppx": 1.0, "ppy": 1.0},
                }
            )
        )
    return folder, stored, depths


def test_dexycb_folder(tmp_path):
    folder, colors, depths = make_dexycb(tmp_path / "DexYCB")
    assert is_capture_source(folder)
    result = import_capture(folder, tmp_path / "take", quiet=True)
    assert result.format_name == "DexYCB folder" and result.frames_written == 3
    take = Take.open(tmp_path / "take")
    intr = take.intrinsics
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height) == (15.5, 15.25, 7.75, 5.5, W, H)
    assert intr.depth_scale == 0.001 and intr.fps == 30
    for i in range(3):
        frame = take.read_frame(i)
        np.testing.assert_array_equal(frame.color, colors[i])
        np.testing.assert_allclose(frame.depth_m, depths[i] * 0.001, atol=1e-7)
    assert take.timestamps == pytest.approx({0: 0.0, 1: 1 / 30, 2: 2 / 30}, abs=2e-6)
    provenance = json.loads((tmp_path / "take" / "capture.json").read_text())
    assert provenance["format"] == "DexYCB folder" and provenance["timestamps"].startswith(
        "frame number / fps"
    )


def test_dexycb_without_calibration_needs_intrinsics(tmp_path):
    folder, _, _ = make_dexycb(tmp_path / "DexYCB", calibration=False)
    with pytest.raises(C2FError, match=r"no calibration/intrinsics/836212060125_16x12.yml .*--intrinsics"):
        import_capture(folder, tmp_path / "take", quiet=True)
    camera = tmp_path / "cam.yml"
    camera.write_text("color:\n  fx: 10.0\n  fy: 11.0\n  ppx: 7.0\n  ppy: 5.0\n")
    import_capture(folder, tmp_path / "take", options=CaptureOptions(intrinsics=camera), quiet=True)
    assert Take.open(tmp_path / "take").intrinsics.fy == 11.0


def make_tum(
    folder: Path, depth_offsets: tuple[float, ...] = (0.01, -0.015, 0.004)
) -> tuple[list, list, list]:
    """rgb.txt/depth.txt with depth up to 15 ms off its colour frame, plus one colour frame with no depth."""
    colors, depths = _frames(len(depth_offsets) + 1, seed=9)
    color_times = [1311868164.363181 + i / 30 for i in range(len(depth_offsets))] + [1311868170.0]
    rgb_lines, depth_lines = (
        ["# color images", "# file: 'rgbd_dataset_freiburg2_xyz.bag'", "# timestamp filename"],
        ["# depth maps"],
    )
    for i, stamp in enumerate(color_times):
        _save(folder / "rgb" / f"{stamp:.6f}.png", colors[i])
        rgb_lines.append(f"{stamp:.6f} rgb/{stamp:.6f}.png")
    for i, offset in enumerate(depth_offsets):
        stamp = color_times[i] + offset
        _save(folder / "depth" / f"{stamp:.6f}.png", depths[i])
        depth_lines.append(f"{stamp:.6f} depth/{stamp:.6f}.png")
    (folder / "rgb.txt").write_text("\n".join(rgb_lines) + "\n")
    (folder / "depth.txt").write_text("\n".join(depth_lines) + "\n")
    return colors, depths, color_times


def test_tum_folder(tmp_path):
    folder = tmp_path / "rgbd_dataset_freiburg2_xyz"
    colors, depths, times = make_tum(folder)
    assert is_capture_source(folder)
    result = import_capture(folder, tmp_path / "take", quiet=True)
    assert result.frames_written == 3
    assert any("4 colour and 3 depth" in w for w in result.warnings)
    take = Take.open(tmp_path / "take")
    intr = take.intrinsics
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (520.9, 521.0, 325.1, 249.7)
    assert intr.depth_scale == pytest.approx(1 / 5000) and intr.fps == 30
    for i in range(3):
        frame = take.read_frame(i)
        np.testing.assert_array_equal(frame.color, colors[i])
        np.testing.assert_allclose(frame.depth_m, depths[i] / 5000.0, atol=1e-7)
        assert frame.timestamp == pytest.approx(times[i] - times[0], abs=2e-6)


def test_tum_association_respects_the_20ms_limit(tmp_path):
    folder = tmp_path / "rgbd_dataset_freiburg1_desk"
    make_tum(folder, depth_offsets=(0.01, 0.03, 0.0))
    result = import_capture(folder, tmp_path / "take", quiet=True)
    assert result.frames_written == 2
    assert Take.open(tmp_path / "take").intrinsics.fx == 517.3


def test_tum_camera_unknown_from_name(tmp_path):
    folder = tmp_path / "my_kinect_sequence"
    make_tum(folder)
    with pytest.raises(C2FError, match="cannot tell the TUM camera.*--intrinsics"):
        import_capture(folder, tmp_path / "take", quiet=True)
    camera = tmp_path / "kinect.json"
    camera.write_text(json.dumps({"fx": 525.0, "fy": 525.0, "cx": 319.5, "cy": 239.5}))
    import_capture(folder, tmp_path / "take", options=CaptureOptions(intrinsics=camera), quiet=True)
    assert Take.open(tmp_path / "take").intrinsics.cx == 319.5


def make_plain(folder: Path, count: int = 3, names: str = "frame-{:06d}.{}.png") -> tuple[list, list]:
    colors, depths = _frames(count, seed=2)
    for i in range(count):
        _save(folder / "color" / names.format(i, "color"), colors[i])
        _save(folder / "depth" / names.format(i, "depth"), depths[i])
    return colors, depths


def test_plain_folder_with_yaml_camera_and_depth_scale(tmp_path):
    folder = tmp_path / "capture"
    colors, depths = make_plain(folder)
    camera = tmp_path / "camera.yaml"
    camera.write_text("fx: 14.0\nfy: 14.5\ncx: 7.5\ncy: 5.5\ndepth_scale: 0.0005\nfps: 15\n")
    assert is_capture_source(folder)
    import_capture(folder, tmp_path / "take", options=CaptureOptions(intrinsics=camera), quiet=True)
    take = Take.open(tmp_path / "take")
    assert (take.intrinsics.fx, take.intrinsics.depth_scale, take.intrinsics.fps) == (14.0, 0.0005, 15)
    for i in range(3):
        frame = take.read_frame(i)
        np.testing.assert_array_equal(frame.color, colors[i])
        np.testing.assert_allclose(frame.depth_m, depths[i] * 0.0005, atol=1e-7)
    assert take.timestamps == pytest.approx({0: 0.0, 1: 1 / 15, 2: 2 / 15}, abs=2e-6)


def test_plain_folder_with_our_intrinsics_json_inside_and_npy_depth(tmp_path):
    folder = tmp_path / "capture"
    colors, _ = _frames(2)
    for i in range(2):
        _save(folder / "color" / f"{i:04d}.png", colors[i])
        (folder / "depth").mkdir(exist_ok=True)
        np.save(folder / "depth" / f"{i:04d}.npy", np.full((H, W), 0.75 + 0.01 * i, np.float32))
    (folder / "intrinsics.json").write_text(
        json.dumps(
            {"fx": 12.0, "fy": 12.0, "cx": 7.5, "cy": 5.5, "width": W, "height": H, "depth_scale": 0.0001}
        )
    )
    assert is_capture_source(folder)  # numbered like a take, but its depth is .npy: Take.open cannot read it
    result = import_capture(folder, tmp_path / "take", quiet=True)
    assert not result.warnings
    take = Take.open(tmp_path / "take")
    np.testing.assert_allclose(take.read_frame(1).depth_m, 0.76, atol=1e-4)
    assert take.timestamps == {}  # no frame rate known: no invented timing


def test_plain_folder_errors(tmp_path):
    folder = tmp_path / "capture"
    make_plain(folder)
    with pytest.raises(C2FError, match="needs the camera's intrinsics; pass --intrinsics"):
        import_capture(folder, tmp_path / "take", quiet=True)
    camera = tmp_path / "camera.json"
    camera.write_text(json.dumps({"fx": 14.0, "fy": 14.0, "cx": 7.5, "cy": 5.5, "width": 640, "height": 480}))
    with pytest.raises(
        C2FError, match="camera file is for 640x480 images but the capture's images are 16x12"
    ):
        import_capture(folder, tmp_path / "take", options=CaptureOptions(intrinsics=camera), quiet=True)


def test_plain_folder_count_mismatch_and_corrupt_frame(tmp_path):
    folder = tmp_path / "capture"
    make_plain(folder, count=4)
    (folder / "depth" / "frame-000003.depth.png").unlink()
    (folder / "color" / "frame-000001.color.png").write_bytes(b"\x89PNG broken")
    camera = tmp_path / "camera.json"
    camera.write_text(json.dumps({"fx": 14.0, "fy": 14.0, "cx": 7.5, "cy": 5.5}))
    result = import_capture(folder, tmp_path / "take", options=CaptureOptions(intrinsics=camera), quiet=True)
    assert result.frames_written == 2
    assert [i for i, _ in result.failures] == [1] and "frame-000001.color.png" in result.failures[0][1]
    assert any("4 colour and 3 depth" in w for w in result.warnings)
    assert any("assuming depth PNGs are in millimetres" in w for w in result.warnings)


def test_unknown_layouts_name_the_understood_ones(tmp_path):
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "notes.txt").write_text("hello")
    with pytest.raises(
        C2FError, match=r"random: unknown capture folder; understood: a RealSense .bag, .*TUM"
    ):
        import_capture(tmp_path / "random", tmp_path / "take", quiet=True)
    video = tmp_path / "grasp.mp4"
    video.write_bytes(b"\x00" * 10)
    with pytest.raises(C2FError, match="grasp.mp4: unknown capture file"):
        import_capture(video, tmp_path / "take", quiet=True)
    with pytest.raises(C2FError, match="capture not found"):
        import_capture(tmp_path / "missing.bag", tmp_path / "take", quiet=True)


def test_is_capture_source(tmp_path, make_take):
    assert is_capture_source(tmp_path / "later.bag") and is_capture_source(tmp_path / "x.R3D")
    assert not is_capture_source(make_take())
    assert not is_capture_source(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    assert not is_capture_source(tmp_path / "empty")


@pytest.mark.parametrize(
    "text,suffix,expected",
    [
        (
            '{"fx": 1, "fy": 2, "cx": 3, "cy": 4, "width": 8, "height": 6, "depth_scale": 0.001}',
            ".json",
            (1, 2, 3, 4, 8, 6, 0.001),
        ),
        ("color: {fx: 1, fy: 2, ppx: 3, ppy: 4}\n", ".yml", (1, 2, 3, 4, None, None, None)),
        ("K: [[1, 0, 3], [0, 2, 4], [0, 0, 1]]\nw: 8\nh: 6\n", ".yaml", (1, 2, 3, 4, 8, 6, None)),
        ('{"camera_matrix": [1, 0, 3, 0, 2, 4, 0, 0, 1]}', ".json", (1, 2, 3, 4, None, None, None)),
    ],
)
def test_camera_file_forms(tmp_path, text, suffix, expected):
    path = tmp_path / f"cam{suffix}"
    path.write_text(text)
    camera = read_camera_file(path)
    assert (
        camera.fx,
        camera.fy,
        camera.cx,
        camera.cy,
        camera.width,
        camera.height,
        camera.depth_scale,
    ) == expected


def test_camera_file_errors(tmp_path):
    path = tmp_path / "cam.json"
    path.write_text('{"fx": 1, "fy": 2, "cx": 3}')
    with pytest.raises(C2FError, match="cam.json: no 'cy'"):
        read_camera_file(path)
    path.write_text('{"fx": 1, "fy": 2, "cx": 3, "cy": "four"}')
    with pytest.raises(C2FError, match="'cy' must be a finite number"):
        read_camera_file(path)
    path.write_text("{not json")
    with pytest.raises(C2FError, match="cam.json: not valid JSON"):
        read_camera_file(path)
