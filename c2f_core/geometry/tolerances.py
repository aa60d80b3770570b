"""Named numeric tolerances shared across stages, so no epsilon literal is scattered in the code.

Every value says its unit. Change one here and every user sees it.
"""

F_SCORE_EPS: float = 1e-7
"""Added to P + R in F = 2PR / (P + R + eps) (method E.1), so F = 0 instead of 0/0."""

ICP_STOP_IMPROVEMENT_M: float = 1e-5
"""Hand ICP (scale + translation) stops when the RMS error improves by less than this (metres)."""

ICP_STOP_ERROR_M: float = 1e-3
"""Hand ICP stops when the RMS error falls below this (metres)."""

MIN_MESH_AREA_M2: float = 1e-12
"""A mesh whose total surface area is below this (m^2) counts as empty for surface sampling."""

GRID_CELL_EPS: float = 1e-4
"""Slack in voxels when mapping a point to a grid cell: a float32 point on a sample plane (rounding
error ~1e-5 voxel at 2 mm voxels) still maps to that plane's cell, and one on the far face counts
as inside."""

MIN_FACE_AREA_M2: float = 1e-12
"""A triangle whose area is below this (m^2, a triangle of ~1 micrometre sides) counts as zero-area
when meshes are cleaned before writing. Far below a marching-cubes triangle (~1e-6 m^2 at 2 mm
voxels), above float32 rounding of such areas."""
