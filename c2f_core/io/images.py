"""Reading and writing the colour and depth images of a take, with checks that name the problem."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from c2f_core.errors import C2FError
from c2f_core.io.atomic import write_bytes_atomic

# The most pixels we decode from one image. The largest real captures (12 MP phone photos, 4K
# video frames at 8.3 MP) are far below it; a file that claims more is damaged or a decompression
# bomb (a few kB of PNG that would inflate to gigabytes), so it fails as that frame's error
# before any memory is allocated. Pillow's own bomb check (a warning from about 89 MP, an error
# from 179 MP) is silenced or reworded, so that the message names the file and this limit.
MAX_IMAGE_PIXELS = 100_000_000


def _too_large(path: Path, what: str, size: str) -> C2FError:
    return C2FError(
        f"{what} image {path} is {size}, over the limit of {MAX_IMAGE_PIXELS // 1_000_000} megapixels "
        "(damaged file or decompression bomb?)"
    )


def _open_image(path: Path, what: str) -> Image.Image:
    if not path.is_file():
        raise C2FError(f"{what} file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)  # reads the header only
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            image.close()
            raise _too_large(path, what, f"{width}x{height}")
        image.load()  # decode now, so a truncated or corrupt file fails here with its name
    except Image.DecompressionBombError:
        raise _too_large(path, what, "too large") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise C2FError(f"cannot read {what} image {path}: corrupt or not an image ({exc})") from None
    return image


def read_color(path: str | Path) -> np.ndarray:
    """Read an 8-bit colour image (PNG or JPEG) as an (H, W, 3) uint8 RGB array."""
    path = Path(path)
    image = _open_image(path, "colour")
    if image.mode in ("I;16", "I;16B", "I", "F"):
        raise C2FError(f"colour image {path} has mode {image.mode}; expected 8-bit RGB")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_label(path: str | Path, what: str = "segmentation") -> np.ndarray:
    """Read a one-channel 8-bit label image (H, W) uint8 (segmentation)."""
    path = Path(path)
    image = _open_image(path, what)
    if image.mode not in ("L", "P"):
        raise C2FError(f"{what} image {path} must be a one-channel 8-bit PNG, found mode {image.mode}")
    return np.asarray(image, dtype=np.uint8)


def read_depth_raw(path: str | Path) -> np.ndarray:
    """Read a 16-bit depth PNG as an (H, W) uint16 array of depth units (0 = missing)."""
    path = Path(path)
    image = _open_image(path, "depth")
    array = np.asarray(image)
    if array.ndim != 2:
        raise C2FError(f"depth image {path} has {array.shape[2]} channels; expected a single 16-bit channel")
    if array.dtype == np.uint16:
        return array
    # Some writers store 16-bit grey PNGs that Pillow opens as 32-bit mode "I".
    if (
        array.dtype in (np.int32, np.uint32, np.int64)
        and image.mode == "I"
        and image.format == "PNG"
        and 0 <= array.min(initial=0)
        and array.max(initial=0) < 65536
    ):
        return array.astype(np.uint16)
    if array.dtype in (np.uint8, np.bool_):
        found = "8-bit"
    elif np.issubdtype(array.dtype, np.floating):
        found = f"floating point ({array.dtype})"
    else:
        found = f"{array.dtype} (mode {image.mode})"
    raise C2FError(
        f"depth image {path} is {found}; expected 16-bit integer depth (0 = missing) with "
        "depth_scale in intrinsics.json giving metres per unit"
    )


def encode_png(array: np.ndarray) -> bytes:
    """Encode a uint8 (H, W[, 3]) or uint16 (H, W) array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def write_color(path: str | Path, color: np.ndarray, quality: int = 95) -> None:
    """Write an (H, W, 3) uint8 RGB image atomically, as PNG or JPEG by the file's suffix."""
    if color.dtype != np.uint8 or color.ndim != 3 or color.shape[2] != 3:
        raise ValueError(f"colour must be (H, W, 3) uint8, got {color.shape} {color.dtype}")
    path = Path(path)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        buffer = io.BytesIO()
        Image.fromarray(color).save(buffer, format="JPEG", quality=quality)
        data = buffer.getvalue()
    else:
        data = encode_png(color)
    write_bytes_atomic(path, data)


def write_depth_raw(path: str | Path, depth_raw: np.ndarray) -> None:
    """Write an (H, W) uint16 depth image atomically as a 16-bit PNG."""
    if depth_raw.dtype != np.uint16 or depth_raw.ndim != 2:
        raise ValueError(f"depth must be (H, W) uint16, got {depth_raw.shape} {depth_raw.dtype}")
    write_bytes_atomic(path, encode_png(depth_raw))
