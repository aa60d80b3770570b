"""Network inputs of one frame and a crop box, built without ground truth: shared by training and inference.

A frame cropped to a square box becomes (3D values in net units around the reference point, see
``c2f_core.geometry.frames``): ``rgb`` (3, S, S) ImageNet-normalised, ``depth_norm`` (1, S, S),
``K_crop`` (3, 3), ``ref_m`` (3,) metres, ``pcl_nu`` (N_pcl, 3), ``box`` (4,) the crop box in source
pixels. Training (``data.take_dataset``) adds its targets to these; reconstruction calls
``make_input`` with the box (and, for real captures, the hand's depth) that detection found.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from c2f_core.data.augment import augment_crop
from c2f_core.data.config import AugmentConfig, DataConfig, FramesConfig
from c2f_core.data.crop import Box, crop_frame
from c2f_core.data.samples import sample_depth_points
from c2f_core.errors import C2FError
from c2f_core.geometry.camera import backproject_pixels
from c2f_core.geometry.frames import normalize_depth, reference_point
from c2f_core.io.frames import RGBDFrame

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
"""Per-channel mean of RGB in [0, 1] subtracted before the encoder."""
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
"""Per-channel standard deviation RGB is divided by."""


class InputConfig(Protocol):
    """The parts of the run config that building inputs needs (``train.config.C2FConfig`` has them)."""

    frames: FramesConfig
    data: DataConfig


def _normalise_rgb(color: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 -> (3, S, S) float32, ImageNet-normalised."""
    rgb = (color.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def prepare_inputs(
    frame: RGBDFrame,
    box: Box,
    config: InputConfig,
    rng: np.random.Generator,
    augment: AugmentConfig | None = None,
    ref_z_m: float | None = None,
) -> dict[str, np.ndarray]:
    """The network inputs of one frame cropped to ``box`` (no ground truth used).

    Args:
        frame: the RGB-D frame (metres, OpenCV camera).
        box: square crop box (x0, y0, x1, y1) in the frame's pixels.
        config: frames and data settings.
        rng: draws the depth points (and the augmentation).
        augment: colour/depth augmentation and reference-point jitter, or None (inference).
        ref_z_m: the reference point's depth, metres, when the caller knows where the hand is (the
            landmarks' depth of a real capture); None takes it from the crop's nearest surface, as
            in training. Either way the point lies on the crop's centre ray.

    Returns:
        ``rgb``, ``depth_norm``, ``K_crop``, ``ref_m``, ``pcl_nu``, ``box`` as float32 numpy arrays
        (shapes in the module docstring).
    """
    frames, data = config.frames, config.data
    color, depth_m, K_crop = crop_frame(frame.color, frame.depth_m, frame.K, box, data.crop_size)
    if augment is not None:
        color, depth_m = augment_crop(color, depth_m, rng, augment)
    if not (depth_m > 0).any():
        raise C2FError(f"frame {frame.name or frame.index}: the crop box {box} holds no valid depth")
    if ref_z_m is None:
        ref_m = reference_point(depth_m, K_crop, frames.ref_percentile, frames.ref_band_m)
    else:
        size = depth_m.shape[0]
        centre = np.float64((size - 1) / 2.0)
        ref_m = backproject_pixels(centre, centre, np.float64(ref_z_m), np.asarray(K_crop, np.float64))
    if augment is not None and augment.ref_jitter_m > 0:
        ref_m = ref_m + rng.normal(0.0, augment.ref_jitter_m, size=3)
    depth_norm = normalize_depth(depth_m.astype(np.float64), ref_m[2], frames.depth_half_m)
    pcl = sample_depth_points(
        depth_norm, K_crop, ref_m, frames.cube_half_m, frames.depth_half_m, data.n_pcl, rng
    )
    return {
        "rgb": _normalise_rgb(color),
        "depth_norm": depth_norm[None].astype(np.float32),
        "K_crop": K_crop.astype(np.float32),
        "ref_m": ref_m.astype(np.float32),
        "pcl_nu": pcl,
        "box": np.asarray(box, np.float32),
    }


def make_input(
    frame: RGBDFrame,
    box: Box,
    config: InputConfig,
    device: str | torch.device = "cpu",
    seed: int = 0,
    ref_z_m: float | None = None,
) -> dict[str, torch.Tensor]:
    """The network input batch (batch size 1) for one frame and a crop box, without ground truth.

    Reconstruction finds the box, calls this, then ``C2FNetwork.encode`` and ``query``. The depth
    points are drawn with ``seed``, so the same call gives the same input; ``ref_z_m`` as in
    ``prepare_inputs``.

    Returns:
        dict of tensors on ``device``, each with a leading batch axis of 1 (keys: see module docstring).
    """
    arrays = prepare_inputs(frame, box, config, np.random.default_rng(seed), ref_z_m=ref_z_m)
    return {k: torch.from_numpy(v)[None].to(device) for k, v in arrays.items()}
