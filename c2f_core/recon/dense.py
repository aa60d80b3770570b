"""Dense mesh extraction: query every sample of the grid, then marching cubes (method D.1, one pass)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.grid import GridCube
from c2f_core.recon.extract import (
    ExtractionResult,
    FieldFn,
    FieldSampler,
    keep_largest_component,
    marching_cubes_masked,
)


@dataclass
class DenseExtractorConfig:
    """Settings of the dense extractor."""

    chunk_size: int = 1 << 18
    """Most points passed to the field function in one call (the reference uses 2^18)."""
    device: str = "cpu"
    """Torch device the query points are created on (the network's device)."""
    keep_largest_component: bool = False
    """Keep only the largest connected component (by surface area) of each mesh."""

    def setup(self) -> DenseExtractor:
        """Build the extractor these settings describe."""
        return DenseExtractor(self)


class DenseExtractor:
    """Evaluates the field at all N^3 samples of a grid (N = ``cube.resolution``, 128 by default
    in the pipeline) and runs marching cubes at level 0 on each channel."""

    def __init__(self, config: DenseExtractorConfig | None = None) -> None:
        """Store and check the settings (defaults if None); C2FError names a bad setting."""
        self.config = config or DenseExtractorConfig()
        if self.config.chunk_size < 1:
            raise C2FError(f"extractor chunk_size must be >= 1, got {self.config.chunk_size}")

    def extract(self, field_fn: FieldFn, cube: GridCube, names: Sequence[str] = ("sdf",)) -> ExtractionResult:
        """Meshes of the zero level sets of ``field_fn`` over ``cube``.

        Args:
            field_fn: (M, 3) float32 metres -> (M,) or (M, len(names)) signed distances.
            cube: the sampling grid, metres.
            names: one name per channel of the field (e.g. ("hand", "object")).

        Returns:
            One mesh per channel, ``queries == cube.num_samples``, and timings.
        """
        start = time.perf_counter()
        sampler = FieldSampler(field_fn, cube, names, self.config.chunk_size, self.config.device)
        n = cube.resolution
        values = sampler(np.arange(cube.num_samples, dtype=np.int64)).reshape(len(names), n, n, n)

        begin = time.perf_counter()
        meshes = {name: marching_cubes_masked(values[c], cube) for c, name in enumerate(names)}
        seconds_mc = time.perf_counter() - begin

        begin = time.perf_counter()
        if self.config.keep_largest_component:
            meshes = {name: keep_largest_component(mesh) for name, mesh in meshes.items()}
        seconds_post = time.perf_counter() - begin

        timings = {
            "query": sampler.seconds,
            "marching_cubes": seconds_mc,
            "postprocess": seconds_post,
            "total": time.perf_counter() - start,
        }
        return ExtractionResult(meshes=meshes, queries=sampler.queries, timings=timings)
