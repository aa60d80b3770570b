"""Crop boxes a user gives: parsing `--bbox` and checking a box against the image.

Boxes found without the user (hand detection, the depth-and-skin fallback) live in
`c2f_core.detect`; the runner chooses among the user's box, the detection and tracking.

Convention: boxes are (x0, y0, x1, y1) in pixels of the full image, x1/y1 exclusive, as in
`data.crop` (whose `tight_box` and `square_box` turn points and boxes into the square crop);
OpenCV camera frame, metres.
"""

from __future__ import annotations

from c2f_core.data.crop import Box
from c2f_core.errors import C2FError


def parse_bbox(text: str) -> Box:
    """Parse "x0,y0,x1,y1" (pixels) into a box."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise C2FError(f"--bbox must be four numbers x0,y0,x1,y1, found {text!r}") from None
    if len(values) != 4:
        raise C2FError(f"--bbox must be four numbers x0,y0,x1,y1, found {text!r}")
    x0, y0, x1, y1 = values
    if x1 <= x0 or y1 <= y0:
        raise C2FError(f"--bbox {text}: x1 must exceed x0 and y1 must exceed y0")
    return (x0, y0, x1, y1)


def check_box_in_image(box: Box, width: int, height: int) -> Box:
    """Fail clearly when a box lies outside the image; clip one that overlaps it."""
    x0, y0, x1, y1 = box
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise C2FError(f"box {list(box)} lies outside the {width}x{height} image")
    return (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
