import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from c2f_core.errors import C2FError
from c2f_core.io.images import MAX_IMAGE_PIXELS, read_color, read_depth_raw, write_color, write_depth_raw


def test_depth_round_trip(tmp_path):
    depth = (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4)
    write_depth_raw(tmp_path / "d.png", depth)
    np.testing.assert_array_equal(read_depth_raw(tmp_path / "d.png"), depth)


def test_color_round_trip_png_and_jpeg(tmp_path):
    color = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    write_color(tmp_path / "c.png", color)
    np.testing.assert_array_equal(read_color(tmp_path / "c.png"), color)
    write_color(tmp_path / "c.jpg", np.full((8, 8, 3), 128, np.uint8))
    assert np.abs(read_color(tmp_path / "c.jpg").astype(int) - 128).max() <= 2


def test_eight_bit_depth_says_what_was_found(tmp_path):
    Image.fromarray(np.full((4, 4), 7, np.uint8)).save(tmp_path / "d.png")
    with pytest.raises(C2FError, match="is 8-bit; expected 16-bit integer depth"):
        read_depth_raw(tmp_path / "d.png")


def test_float_depth_says_what_was_found(tmp_path):
    Image.fromarray(np.full((4, 4), 0.7, np.float32)).save(tmp_path / "d.tif")
    with pytest.raises(C2FError, match=r"is floating point \(float32\)"):
        read_depth_raw(tmp_path / "d.tif")


def test_corrupt_and_truncated_png(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    with pytest.raises(C2FError, match="corrupt or not an image"):
        read_color(tmp_path / "junk.png")
    write_depth_raw(
        tmp_path / "d.png", np.random.default_rng(1).integers(1, 60000, (64, 64)).astype(np.uint16)
    )
    data = (tmp_path / "d.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(C2FError, match="t.png: corrupt or not an image"):
        read_depth_raw(tmp_path / "t.png")


def png_header_only(path, width: int, height: int) -> None:
    """A few hundred bytes of 8-bit grey PNG claiming `width` x `height`: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.parametrize(
    "width, height",
    [(20_000, 20_000), (12_000, 9_000)],  # past Pillow's own bomb error; past ours, under Pillow's
)
def test_images_over_the_pixel_limit_fail_before_decoding(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    png_header_only(path, width, height)
    assert MAX_IMAGE_PIXELS == 100_000_000
    with pytest.raises(C2FError, match=r"colour image .*bomb.png is .*over the limit of 100 megapixels"):
        read_color(path)
    with pytest.raises(C2FError, match=r"depth image .*bomb.png is .*over the limit of 100 megapixels"):
        read_depth_raw(path)
