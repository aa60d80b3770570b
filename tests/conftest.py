"""Shared fixtures: tiny takes written in code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from c2f_core.io.intrinsics import Intrinsics
from c2f_core.io.take import TakeWriter

TINY_INTRINSICS = Intrinsics(fx=60.0, fy=62.0, cx=31.5, cy=23.5, width=64, height=48, depth_scale=0.001)


def tiny_frame(seed: int, intr: Intrinsics = TINY_INTRINSICS) -> tuple[np.ndarray, np.ndarray]:
    """A colour image and a depth map (metres) of a tilted plane with a bump, deterministic per seed."""
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 256, size=(intr.height, intr.width, 3), dtype=np.uint8)
    v, u = np.mgrid[0 : intr.height, 0 : intr.width]
    depth_m = 0.6 + 0.002 * u + 0.001 * v + 0.05 * np.exp(-((u - 32) ** 2 + (v - 24) ** 2) / 50.0)
    depth_m[0:3, 0:3] = 0.0  # a hole
    return color, depth_m.astype(np.float32)


@pytest.fixture
def make_take(tmp_path: Path):
    """Factory: write a take with the given frame numbers into tmp_path/name and return its folder."""

    def factory(name: str = "take", frame_ids: tuple[int, ...] = (0, 1, 2), fps: float | None = None) -> Path:
        intr = TINY_INTRINSICS if fps is None else Intrinsics(**{**TINY_INTRINSICS.to_dict(), "fps": fps})
        root = tmp_path / name
        with TakeWriter(root, intr) as writer:
            for i in frame_ids:
                color, depth_m = tiny_frame(i)
                writer.write(i, color, depth_m, timestamp=i / 30.0)
        return root

    return factory


def write_json(path: Path, data: object) -> Path:
    """Write JSON to `path` and return it."""
    path.write_text(json.dumps(data))
    return path


def load_script(path: Path):
    """Import a script of the repository (benchmarks/*.py are not a package) as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
