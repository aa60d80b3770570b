"""Procedural solid textures: albedo as a pure function of a surface point in the surface's own frame.

Per-vertex colours cannot carry a cloth's checks, a can's print or a wall's tiles on coarse meshes,
so these patterns are evaluated per pixel: each rendered pixel's 3D point, mapped into the local
frame of its surface (metres), gives its albedo (sRGB in [0, 1], like the per-vertex colours).

Each constructor draws all its random choices from `rng` when called and returns a pure, vectorised
`Pattern`; `kind` forces one of `PATTERN_KINDS[...]`. Arithmetic is float32 (numpy vectorises its
sine), channels-first and in cache-sized chunks: 300K points take 4-14 ms of CPU time per pattern,
6-7 ms typically (every kind, one thread of an AMD EPYC core, `OMP_NUM_THREADS=1`; freckled skin,
label bands and print cloths are the slowest).

Convention: cloth and wall patterns lie in the local x-y plane, z their normal; walls take +y as up
(shelves stand on their boards). Labels use the object's frame, origin at its centre, wrapped about
its axis. Skin uses the canonical hand frame. Edges blend over about one pixel at the distance each
surface is usually seen from, and repeated detail finer than ~3 mm (weave, wood grain) has at most
a few percent contrast, so sampling once per pixel shows no moire; single small marks (speckles,
letters, 1 mm lines) may flicker a little from far away, as in a camera.
"""

from c2f_core.synth.patterns.base import (
    CHUNK_POINTS,
    CLOTH_EDGE_M,
    KIND_WEIGHTS,
    LABEL_EDGE_M,
    PATTERN_KINDS,
    SKIN_EDGE_M,
    WALL_EDGE_M,
    Pattern,
)
from c2f_core.synth.patterns.cloth import DARK_CLOTH_SHARE, cloth_pattern
from c2f_core.synth.patterns.labels import printed_label_pattern
from c2f_core.synth.patterns.noise import wave_field
from c2f_core.synth.patterns.preview import preview_sheet
from c2f_core.synth.patterns.skin import skin_detail
from c2f_core.synth.patterns.walls import wall_pattern

__all__ = [
    "CHUNK_POINTS",
    "CLOTH_EDGE_M",
    "DARK_CLOTH_SHARE",
    "KIND_WEIGHTS",
    "LABEL_EDGE_M",
    "PATTERN_KINDS",
    "SKIN_EDGE_M",
    "WALL_EDGE_M",
    "Pattern",
    "cloth_pattern",
    "preview_sheet",
    "printed_label_pattern",
    "skin_detail",
    "wall_pattern",
    "wave_field",
]
