"""Record3D .r3d import: ZIP archives with LZFSE depth written in code."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from c2f_core.errors import C2FError
from c2f_core.io.capture import import_capture
from c2f_core.io.take import Take

lzfse = pytest.importorskip("lzfse")

COLOR_W, COLOR_H = 15, 12
DEPTH_W, DEPTH_H = 6, 4  # 2.5x and 3x smaller, like a LiDAR depth map under a larger colour image
FX, FY, CX, CY = 13.0, 13.5, 7.25, 5.75


def _jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def make_frames(count: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(11)
    colors = [rng.integers(0, 256, (COLOR_H, COLOR_W, 3), dtype=np.uint8) for _ in range(count)]
    depths = [
        (0.4 + 0.05 * i + 0.01 * rng.random((DEPTH_H, DEPTH_W))).astype(np.float32) for i in range(count)
    ]
    for depth in depths:
        depth[0, 0] = np.nan  # ARKit gives NaN where it has no depth
    confs = [np.full((DEPTH_H, DEPTH_W), 2, dtype=np.uint8) for _ in range(count)]
    for conf in confs:
        conf[1, :] = 0
    return colors, depths, confs


def write_r3d(
    path: Path,
    colors: list[np.ndarray],
    depths: list[np.ndarray],
    confs: list[np.ndarray] | None = None,
    metadata: dict | None = None,
    skip_depth: tuple[int, ...] = (),
    corrupt_depth: tuple[int, ...] = (),
) -> Path:
    """Write an .r3d as the app does: metadata JSON, rgbd/N.jpg, LZFSE rgbd/N.depth and rgbd/N.conf."""
    meta = {
        "w": COLOR_W,
        "h": COLOR_H,
        "dw": DEPTH_W,
        "dh": DEPTH_H,
        "fps": 60,
        "cameraType": 1,
        "K": [FX, 0.0, 0.0, 0.0, FY, 0.0, CX, CY, 1.0],  # column-major
        "initPose": [0, 0, 0, 1, 0, 0, 0],
        "poses": [[0, 0, 0, 1, 0, 0, 0]] * len(colors),
        "frameTimestamps": [5000.0 + i / 60 for i in range(len(colors))],
    }
    meta.update(metadata or {})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata", json.dumps(meta))
        archive.writestr("icon", _jpeg(colors[0]))
        for i, (color, depth) in enumerate(zip(colors, depths)):
            archive.writestr(f"rgbd/{i}.jpg", _jpeg(color))
            if i in skip_depth:
                continue
            data = (
                b"not lzfse at all" if i in corrupt_depth else lzfse.compress(depth.astype("<f4").tobytes())
            )
            archive.writestr(f"rgbd/{i}.depth", data)
            if confs is not None:
                archive.writestr(f"rgbd/{i}.conf", lzfse.compress(confs[i].tobytes()))
    return path


def decoded_jpeg(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(_jpeg(image))).convert("RGB"))


def expected_depth(depth: np.ndarray) -> np.ndarray:
    """Nearest neighbour with centred pixels: colour pixel j takes depth pixel floor((j + .5) dw / w)."""
    rows = ((np.arange(COLOR_H) + 0.5) * DEPTH_H / COLOR_H).astype(int)
    cols = ((np.arange(COLOR_W) + 0.5) * DEPTH_W / COLOR_W).astype(int)
    resampled = depth[rows[:, None], cols[None, :]]
    return np.where(np.isfinite(resampled), resampled, 0.0)


def test_r3d_pixels_depth_intrinsics_and_timestamps(tmp_path):
    colors, depths, confs = make_frames(3)
    r3d = write_r3d(tmp_path / "grasp.r3d", colors, depths, confs)
    result = import_capture(r3d, tmp_path / "take", quiet=True)
    assert result.frames_written == 3 and not result.failures and not result.warnings
    take = Take.open(tmp_path / "take")
    intr = take.intrinsics
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height) == (FX, FY, CX, CY, COLOR_W, COLOR_H)
    assert intr.fps == 60
    for i in range(3):
        frame = take.read_frame(i)
        np.testing.assert_array_equal(frame.color, decoded_jpeg(colors[i]))
        np.testing.assert_allclose(
            frame.depth_m, expected_depth(depths[i]), atol=0.5 * intr.depth_scale + 1e-7
        )
        assert frame.timestamp == pytest.approx(i / 60, abs=2e-6)
    assert frame.depth_m[0, 0] == 0  # the NaN became "missing"


def test_min_confidence_drops_low_confidence_depth(tmp_path):
    colors, depths, confs = make_frames(2)
    r3d = write_r3d(tmp_path / "grasp.r3d", colors, depths, confs)
    import_capture(r3d, tmp_path / "take", options=_options(min_confidence=1), quiet=True)
    depth = Take.open(tmp_path / "take").read_frame(0).depth_m
    kept = np.where(confs[0] >= 1, depths[0], np.nan)
    np.testing.assert_allclose(depth, expected_depth(kept), atol=0.6e-4)
    assert (depth[3:6] == 0).all() and (depth[6:] > 0).all()  # colour rows 3..5 sample depth row 1


def _options(**kwargs):
    from c2f_core.io.capture import CaptureOptions

    return CaptureOptions(**kwargs)


def test_intrinsics_follow_jpegs_smaller_than_the_metadata_size(tmp_path):
    """K belongs to metadata's w x h; JPEGs at half that size get K scaled about pixel centres."""
    colors, depths, _ = make_frames(2)
    meta = {"w": 2 * COLOR_W, "h": 2 * COLOR_H, "K": [2 * FX, 0, 0, 0, 2 * FY, 0, 20.0, 14.0, 1]}
    r3d = write_r3d(tmp_path / "half.r3d", colors, depths, metadata=meta)
    result = import_capture(r3d, tmp_path / "take", quiet=True)
    intr = Take.open(tmp_path / "take").intrinsics
    assert (intr.fx, intr.fy) == pytest.approx((FX, FY))
    assert (intr.cx, intr.cy) == pytest.approx((0.5 * (20.0 + 0.5) - 0.5, 0.5 * (14.0 + 0.5) - 0.5))
    assert any("intrinsics scaled" in w for w in result.warnings)


def test_depth_size_inferred_without_dw_dh(tmp_path):
    colors = [np.zeros((12, 16, 3), np.uint8)] * 2
    depths = [np.full((3, 4), 0.5, np.float32)] * 2
    meta = {"w": 16, "h": 12, "K": [10, 0, 0, 0, 10, 0, 7.5, 5.5, 1]}
    path = tmp_path / "old.r3d"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata", json.dumps({**meta, "fps": 30}))
        for i in range(2):
            archive.writestr(f"rgbd/{i}.jpg", _jpeg(colors[i]))
            archive.writestr(f"rgbd/{i}.depth", lzfse.compress(depths[i].tobytes()))
    import_capture(path, tmp_path / "take", quiet=True)
    take = Take.open(tmp_path / "take")
    np.testing.assert_allclose(take.read_frame(1).depth_m, 0.5, atol=1e-4)
    assert take.timestamps == pytest.approx({0: 0.0, 1: 1 / 30})


def test_missing_depth_is_reported_and_the_rest_imported(tmp_path):
    colors, depths, _ = make_frames(4)
    r3d = write_r3d(tmp_path / "gap.r3d", colors, depths, skip_depth=(2,))
    result = import_capture(r3d, tmp_path / "take", quiet=True)
    assert result.frames_written == 3
    assert any("4 colour and 3 depth" in w for w in result.warnings)
    take = Take.open(tmp_path / "take")
    # Source frame 3 is the third paired frame (index 2); its real time is kept.
    np.testing.assert_array_equal(take.read_frame(2).color, decoded_jpeg(colors[3]))
    assert take.timestamps[2] == pytest.approx(3 / 60, abs=2e-6)


def test_corrupt_depth_fails_that_frame_only(tmp_path):
    colors, depths, _ = make_frames(3)
    r3d = write_r3d(tmp_path / "bad.r3d", colors, depths, corrupt_depth=(1,))
    result = import_capture(r3d, tmp_path / "take", quiet=True)
    assert result.frames_written == 2
    assert [i for i, _ in result.failures] == [1]
    assert "rgbd/1.depth" in result.failures[0][1]
    take = Take.open(tmp_path / "take")
    assert take.frame_ids == [0, 2] and take.gaps == [(1, 1)]


def test_truncated_r3d_is_a_clear_error(tmp_path):
    colors, depths, _ = make_frames(3)
    r3d = write_r3d(tmp_path / "full.r3d", colors, depths)
    cut = tmp_path / "cut.r3d"
    cut.write_bytes(r3d.read_bytes()[: r3d.stat().st_size - 200])
    with pytest.raises(C2FError, match=r"cut.r3d: not a complete .r3d \(ZIP\) archive, truncated or damaged"):
        import_capture(cut, tmp_path / "take", quiet=True)


def test_r3d_without_metadata_or_frames(tmp_path):
    path = tmp_path / "nometa.r3d"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("rgbd/0.jpg", _jpeg(np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(C2FError, match="no 'metadata' file"):
        import_capture(path, tmp_path / "take", quiet=True)
    path = tmp_path / "noframes.r3d"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata", json.dumps({"w": 4, "h": 4, "K": [1, 0, 0, 0, 1, 0, 2, 2, 1]}))
    with pytest.raises(C2FError, match="no frames with both rgbd/N.jpg and rgbd/N.depth"):
        import_capture(path, tmp_path / "take", quiet=True)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("fps", 10**400, "metadata 'fps' must be a finite number, found a number too large for a float"),
        ("fps", 0, "metadata 'fps' must be a positive number, found 0"),
        ("w", 10**400, "metadata 'w' must be a finite number, found a number too large for a float"),
        ("K", [10**400, 0, 0, 0, FY, 0, CX, CY, 1], "metadata 'K' must be 9 numbers"),
        ("frameTimestamps", [10**400] * 3, "metadata 'frameTimestamps' must be a finite number"),
    ],
)
def test_metadata_numbers_too_big_for_a_float_name_key_and_file(tmp_path, key, value, message):
    colors, depths, _ = make_frames(3)
    r3d = write_r3d(tmp_path / "huge.r3d", colors, depths, metadata={key: value})
    with pytest.raises(C2FError, match=rf"huge\.r3d: {re.escape(message)}"):
        import_capture(r3d, tmp_path / "take", quiet=True)
