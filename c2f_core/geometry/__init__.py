"""Pure geometry: camera models, frame transforms, grids, kNN, marching-cubes helpers."""
