"""Pictures of a take's data for people to look at (contact sheets, figures).

Used by `synth.sheet` and `eval.figures`, so it sits below both.
"""

from __future__ import annotations

import cv2
import numpy as np


def depth_to_rgb(depth_m: np.ndarray, near_m: float | None = None, far_m: float | None = None) -> np.ndarray:
    """Colour-map a depth image (H, W) metres to (H, W, 3) uint8 RGB with the turbo map.

    Near depth is dark blue, far depth dark red; missing depth (0) is black.

    Args:
        depth_m: (H, W) depth in metres, 0 where missing.
        near_m: depth drawn at the blue end (default: the 1st percentile of the valid depth).
        far_m: depth drawn at the red end (default: the 99th percentile of the valid depth).
    """
    valid = depth_m > 0
    if not valid.any():
        return np.zeros((*depth_m.shape, 3), np.uint8)
    near = float(np.percentile(depth_m[valid], 1)) if near_m is None else near_m
    far = float(np.percentile(depth_m[valid], 99)) if far_m is None else far_m
    scaled = np.clip((depth_m - near) / max(far - near, 1e-6), 0, 1)
    rgb = cv2.applyColorMap((255 * scaled).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    return np.where(valid[..., None], rgb, 0).astype(np.uint8)
