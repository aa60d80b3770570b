"""Tests for the mesh extractors on analytic SDFs: dense, SER (selected blocks) and SER + octree.

A counting wrapper stands in for the network, so the reported query counts can be checked exactly.
"""

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from c2f_core.errors import C2FError
from c2f_core.geometry.grid import GridCube
from c2f_core.recon.dense import DenseExtractor, DenseExtractorConfig
from c2f_core.recon.extract import Mesh, cells_with_all_corners, keep_largest_component, marching_cubes_masked
from c2f_core.recon.ser import SurfaceAwareExtractor, SurfaceAwareExtractorConfig
from c2f_core.recon.ser_blocks import coarse_scores, select_coarse_blocks, zoom_to_scores

CENTER = np.array([0.02, -0.03, 0.55])  # off the origin, so metres and placement are checked
RADIUS = 0.08
CLAMP = 0.016
TORUS_MAJOR, TORUS_MINOR = 0.07, 0.025


class CountingField:
    """A stub network: an analytic SDF that counts the points it is asked about."""

    def __init__(self, fn):
        self.fn = fn
        self.count = 0
        self.calls = 0

    def __call__(self, points):
        assert points.dtype == torch.float32 and points.ndim == 2 and points.shape[1] == 3
        assert not torch.is_grad_enabled()
        self.count += len(points)
        self.calls += 1
        return self.fn(points)


def sphere_sdf(points):
    return (points - torch.tensor(CENTER, dtype=points.dtype)).norm(dim=-1) - RADIUS


def torus_sdf(points):
    local = points - torch.tensor(CENTER, dtype=points.dtype)
    ring = torch.stack([local[:, :2].norm(dim=-1) - TORUS_MAJOR, local[:, 2]], -1)
    return ring.norm(dim=-1) - TORUS_MINOR


def truncated(fn):
    return lambda points: fn(points).clamp(-CLAMP, CLAMP)


def surface_markers(kind, count=3000, seed=0):
    """Points on the analytic surface, standing in for the network's marker points."""
    rng = np.random.default_rng(seed)
    u, v = rng.uniform(0, 2 * np.pi, count), rng.uniform(0, 2 * np.pi, count)
    if kind == "sphere":
        d = rng.normal(size=(count, 3))
        return CENTER + RADIUS * d / np.linalg.norm(d, axis=1, keepdims=True)
    ring = TORUS_MAJOR + TORUS_MINOR * np.cos(v)
    return CENTER + np.stack([ring * np.cos(u), ring * np.sin(u), TORUS_MINOR * np.sin(v)], -1)


def cube_of(resolution):
    return GridCube.from_center(CENTER, side=0.3, resolution=resolution)


def hausdorff(a, b):
    return max(cKDTree(b).query(a)[0].max(), cKDTree(a).query(b)[0].max())


def signed_volume(mesh):
    corners = mesh.vertices.astype(np.float64)[mesh.faces]
    return np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6


SDFS = {
    "sphere": sphere_sdf,
    "torus": torus_sdf,
    "sphere_truncated": truncated(sphere_sdf),
    "torus_truncated": truncated(torus_sdf),
}


@pytest.fixture(scope="module")
def dense_meshes():
    """Dense reference meshes at 64^3 for every analytic SDF."""
    return {name: DenseExtractor().extract(fn, cube_of(64)) for name, fn in SDFS.items()}


def test_dense_queries_every_sample_and_places_sphere_in_metres():
    cube = cube_of(64)
    field = CountingField(sphere_sdf)
    result = DenseExtractor(DenseExtractorConfig(chunk_size=50_000)).extract(field, cube)
    assert result.queries == field.count == 64**3
    assert field.calls == int(np.ceil(64**3 / 50_000))
    assert result.vertices.dtype == np.float32 and result.faces.dtype == np.int64
    radius = np.linalg.norm(result.vertices - CENTER, axis=1)
    assert np.abs(radius - RADIUS).max() < 0.5 * cube.voxel_size
    assert signed_volume(Mesh(result.vertices, result.faces)) > 0  # normals point outwards
    assert signed_volume(Mesh(result.vertices, result.faces)) == pytest.approx(
        4 / 3 * np.pi * RADIUS**3, rel=0.01
    )
    assert set(result.timings) >= {"query", "marching_cubes", "total"}


@pytest.mark.parametrize("name", list(SDFS))
@pytest.mark.parametrize("octree", [False, True])
def test_ser_matches_dense_with_fewer_queries(name, octree, dense_meshes):
    cube = cube_of(64)
    selection = select_coarse_blocks(cube, markers=surface_markers(name.split("_")[0]), coarse_resolution=16)
    field = CountingField(SDFS[name])
    config = SurfaceAwareExtractorConfig(octree=octree, top_stride=8)
    result = SurfaceAwareExtractor(config).extract(field, cube, selection)
    assert result.queries == field.count
    dense = dense_meshes[name]
    assert len(result.faces) == len(dense.faces)
    assert hausdorff(result.vertices, dense.vertices) < 1e-3 * cube.voxel_size
    ratio = result.queries / cube.num_samples
    assert ratio < (0.12 if octree else 0.5)


def test_octree_query_ratio_at_128():
    cube = cube_of(128)
    selection = select_coarse_blocks(cube, markers=surface_markers("sphere"))
    field = CountingField(truncated(sphere_sdf))
    result = SurfaceAwareExtractor().extract(field, cube, selection)
    assert result.queries == field.count
    assert result.queries / cube.num_samples < 0.05
    radius = np.linalg.norm(result.vertices - CENTER, axis=1)
    assert np.abs(radius - RADIUS).max() < 0.5 * cube.voxel_size
    assert signed_volume(Mesh(result.vertices, result.faces)) == pytest.approx(
        4 / 3 * np.pi * RADIUS**3, rel=0.01
    )


def test_octree_without_selection_covers_whole_grid(dense_meshes):
    cube = cube_of(64)
    field = CountingField(torus_sdf)
    result = SurfaceAwareExtractor(SurfaceAwareExtractorConfig(top_stride=16)).extract(field, cube)
    assert hausdorff(result.vertices, dense_meshes["torus"].vertices) < 1e-3 * cube.voxel_size
    assert result.queries == field.count < 0.15 * cube.num_samples


@pytest.mark.parametrize("octree", [False, True])
def test_half_selection_gives_open_surface_without_phantom_wall(octree):
    cube = cube_of(64)
    selection = select_coarse_blocks(cube, markers=surface_markers("sphere"), coarse_resolution=16)
    selection[8:] = False  # keep blocks with x index < 8: samples up to x = origin + 31 voxels
    result = SurfaceAwareExtractor(SurfaceAwareExtractorConfig(octree=octree)).extract(
        CountingField(sphere_sdf), cube, selection
    )
    vertices = result.vertices.astype(np.float64)
    # Every vertex lies on the sphere: a wall at the selection boundary would put vertices inside.
    radius = np.linalg.norm(vertices - CENTER, axis=1)
    assert np.abs(radius - RADIUS).max() < 0.5 * cube.voxel_size
    assert vertices[:, 0].max() <= cube.origin[0] + 31 * cube.voxel_size + 1e-6
    # The cut leaves a boundary: edges used by a single face.
    edges = np.sort(
        np.concatenate([result.faces[:, [0, 1]], result.faces[:, [1, 2]], result.faces[:, [2, 0]]]), axis=1
    )
    _, uses = np.unique(edges, axis=0, return_counts=True)
    assert (uses == 1).sum() > 20


def test_two_channels_share_queries(dense_meshes):
    cube = cube_of(64)
    markers = np.concatenate([surface_markers("sphere"), surface_markers("torus")])
    selection = select_coarse_blocks(cube, markers=markers, coarse_resolution=16)
    both = CountingField(lambda p: torch.stack([sphere_sdf(p), torus_sdf(p)], -1))
    result = SurfaceAwareExtractor().extract(both, cube, selection, names=("hand", "object"))
    assert set(result.meshes) == {"hand", "object"}
    assert result.queries == both.count
    assert hausdorff(result.meshes["hand"].vertices, dense_meshes["sphere"].vertices) < 1e-3 * cube.voxel_size
    assert (
        hausdorff(result.meshes["object"].vertices, dense_meshes["torus"].vertices) < 1e-3 * cube.voxel_size
    )
    singles = [SurfaceAwareExtractor().extract(fn, cube, selection).queries for fn in (sphere_sdf, torus_sdf)]
    assert max(singles) <= result.queries < sum(singles)
    with pytest.raises(ValueError, match="several|meshes"):
        _ = result.vertices


def test_field_output_shape_is_checked():
    cube = cube_of(8)
    with pytest.raises(ValueError, match="expected"):
        DenseExtractor().extract(lambda p: torch.zeros(len(p), 3), cube, names=("hand", "object"))
    with pytest.raises(ValueError, match="NaN"):
        DenseExtractor().extract(lambda p: torch.full((len(p),), float("nan")), cube)


def test_no_surface_gives_empty_mesh():
    result = DenseExtractor().extract(lambda p: torch.ones(len(p)), cube_of(16))
    assert result.meshes["sdf"].is_empty and result.vertices.shape == (0, 3)
    empty = SurfaceAwareExtractor().extract(CountingField(sphere_sdf), cube_of(16), np.zeros((4, 4, 4), bool))
    assert empty.queries == 0 and empty.meshes["sdf"].is_empty


def test_masked_marching_cubes_rejects_unqueried_corners():
    cube = cube_of(8)
    volume = np.ones((8, 8, 8), np.float32)
    volume[3, 3, 3] = -1
    volume[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        marching_cubes_masked(volume, cube)
    with pytest.raises(ValueError, match="unqueried"):
        marching_cubes_masked(volume, cube, np.ones((7, 7, 7), bool))
    mask = cells_with_all_corners(np.isfinite(volume))
    assert not mask[0, 0, 0] and mask[1, 1, 1]
    mesh = marching_cubes_masked(volume, cube, mask)
    assert len(mesh.faces) == 8  # the one negative sample is a corner of 8 cells


def test_keep_largest_component_by_area():
    big = DenseExtractor().extract(sphere_sdf, cube_of(32)).meshes["sdf"]
    small = Mesh(big.vertices * 0.3 + np.float32(1.0), big.faces)
    merged = Mesh(
        np.concatenate([small.vertices, big.vertices]),
        np.concatenate([small.faces, big.faces + len(small.vertices)]),
    )
    kept = keep_largest_component(merged)
    assert len(kept.faces) == len(big.faces)
    np.testing.assert_allclose(np.sort(kept.vertices, axis=0), np.sort(big.vertices, axis=0))


def test_zoomed_extraction_of_a_small_sphere():
    cube = GridCube.from_center(np.zeros(3), side=0.3, resolution=128)
    center, radius = np.array([0.031, -0.02, 0.012]), 0.03
    d = np.random.default_rng(1).normal(size=(3000, 3))
    markers = center + radius * d / np.linalg.norm(d, axis=1, keepdims=True)
    zoomed, selection = zoom_to_scores(cube, coarse_scores(cube, markers=markers))
    field = CountingField(lambda p: (p - torch.tensor(center, dtype=p.dtype)).norm(dim=-1) - radius)
    result = SurfaceAwareExtractor().extract(field, zoomed, selection)
    error = np.abs(np.linalg.norm(result.vertices - center, axis=1) - radius)
    assert error.max() < 0.5 * zoomed.voxel_size < 0.25 * cube.voxel_size
    assert signed_volume(Mesh(result.vertices, result.faces)) == pytest.approx(
        4 / 3 * np.pi * radius**3, rel=0.005
    )
    assert result.queries == field.count < 0.1 * zoomed.num_samples  # the sphere fills the zoomed cube


@pytest.mark.parametrize(
    "name, field_fn, lipschitz",
    [
        ("tiny clamp", lambda p: torus_sdf(p).clamp(-0.002, 0.002), 1.0),  # clamp < a voxel (4.8 mm)
        ("gradient 3", lambda p: 3.0 * torus_sdf(p), 3.0),
        ("gradient 0.3", lambda p: 0.3 * torus_sdf(p), 1.0),
    ],
)
def test_octree_is_safe_for_truncated_and_scaled_fields(name, field_fn, lipschitz):
    cube = cube_of(64)
    config = SurfaceAwareExtractorConfig(top_stride=16, lipschitz=lipschitz)
    result = SurfaceAwareExtractor(config).extract(field_fn, cube)
    dense = DenseExtractor().extract(field_fn, cube)
    assert len(result.faces) == len(dense.faces), name
    assert hausdorff(result.vertices, dense.vertices) < 1e-3 * cube.voxel_size


def test_bad_settings_raise_user_errors():
    with pytest.raises(C2FError, match="top_stride"):
        SurfaceAwareExtractor(SurfaceAwareExtractorConfig(top_stride=6))
    with pytest.raises(C2FError, match="lipschitz"):
        SurfaceAwareExtractor(SurfaceAwareExtractorConfig(lipschitz=0.0))
    with pytest.raises(C2FError, match="chunk_size"):
        DenseExtractor(DenseExtractorConfig(chunk_size=0))


def test_separate_fields_splits_overlap_and_keeps_the_rest():
    from c2f_core.recon.extract import separate_fields

    sdf = torch.tensor(
        [
            [-0.005, -0.002],  # inside both, deeper in the hand: hand keeps it
            [-0.002, -0.005],  # inside both, deeper in the object: object keeps it
            [0.003, 0.004],  # outside both: unchanged
            [0.0, 0.01],  # on the hand surface away from the object: unchanged
            [-0.003, 0.004],  # inside the hand only: stays inside the hand only
        ]
    )
    out = separate_fields(sdf)
    assert out[0, 0] < 0 < out[0, 1]
    assert out[1, 1] < 0 < out[1, 0]
    assert torch.equal(out[2], sdf[2])
    assert torch.equal(out[3], sdf[3])
    assert out[4, 0] < 0 < out[4, 1]


def test_object_priority_gives_contested_points_to_the_object_and_nothing_else():
    from c2f_core.recon.extract import separate_fields

    sdf = torch.tensor(
        [
            [-0.005, -0.002],  # inside both, the hand deeper by 3 mm
            [-0.012, -0.002],  # inside both, the hand deeper by 10 mm
            [-0.002, 0.003],  # inside the hand only, 3 mm from the object
            [0.003, -0.002],  # inside the object only
            [0.003, 0.004],  # outside both
        ]
    )
    plain = separate_fields(sdf)
    for priority in (0.005, torch.full((5,), 0.005)):
        out = separate_fields(sdf, priority)
        assert out[0, 1] < 0 < out[0, 0]  # within the priority: the object's now
        assert out[1, 0] < 0 < out[1, 1]  # deeper than it: still the hand's
        assert out[2, 0] < 0 < out[2, 1]  # the object does not take what it does not claim
        assert out[3, 1] < 0 < out[3, 0]
        assert (out[4] > 0).all()
        assert plain[0, 0] < 0 < plain[0, 1]  # without priority the deeper hand kept the first
    # Per point: no priority where the hand is trusted (inside its 2D skeleton), some elsewhere.
    out = separate_fields(sdf[:1].repeat(2, 1), torch.tensor([0.0, 0.005]))
    assert out[0, 0] < 0 < out[0, 1] and out[1, 1] < 0 < out[1, 0]


def test_separated_spheres_touch_without_overlap():
    """Two overlapping spheres meshed from exclusive fields meet on the mid-plane and share no volume."""
    from c2f_core.recon.extract import separate_fields

    shift = torch.tensor([0.05, 0.0, 0.0])

    def pair(points):
        a = (points - torch.tensor(CENTER, dtype=points.dtype) + shift).norm(dim=-1) - RADIUS
        b = (points - torch.tensor(CENTER, dtype=points.dtype) - shift).norm(dim=-1) - RADIUS
        return torch.stack([a, b], -1)

    cube = cube_of(64)
    plain = DenseExtractor().extract(pair, cube, ("a", "b")).meshes
    split = DenseExtractor().extract(lambda p: separate_fields(pair(p)), cube, ("a", "b")).meshes
    mid = CENTER[0]
    step = cube.voxel_size
    assert plain["a"].vertices[:, 0].max() > mid + 0.02  # the spheres overlap by 6 cm
    assert split["a"].vertices[:, 0].max() < mid + step
    assert split["b"].vertices[:, 0].min() > mid - step
    # Away from the overlap each surface is the sphere's.
    far = split["a"].vertices[split["a"].vertices[:, 0] < mid - 0.05]
    radii = np.linalg.norm(far - (CENTER - shift.numpy()), axis=1)
    assert np.abs(radii - RADIUS).max() < step


def _largest(mesh):
    return keep_largest_component(mesh)


def hand_like_sdf(points):
    """A palm-sized ellipsoid with a thin finger (radius 1.5 voxels at 128^3) and a small separate blob."""
    local = points - torch.tensor(CENTER, dtype=points.dtype)
    palm = (local / torch.tensor([0.05, 0.035, 0.02], dtype=points.dtype)).norm(dim=-1) * 0.02 - 0.02
    # a finger along x from the palm's side, thinner than the coarse lattices can see
    along = (local[:, 0] - 0.07).clamp(-0.03, 0.03)
    finger = (local - torch.stack([along + 0.07, torch.zeros_like(along), torch.zeros_like(along)], -1)).norm(
        dim=-1
    ) - 0.0035
    blob = (local - torch.tensor([-0.09, 0.08, 0.0], dtype=points.dtype)).norm(dim=-1) - 0.006
    return torch.minimum(torch.minimum(palm, finger), blob)


def crossed_corners(fn, cube, channels):
    """Samples that are corners of cells the largest surface piece of each channel crosses: the
    fewest queries exact marching cubes of those pieces needs."""
    import scipy.ndimage

    from c2f_core.geometry.grid import index_to_point

    n = cube.resolution
    grid = torch.stack(torch.meshgrid(*[torch.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3)
    values = fn(index_to_point(grid, cube).float()).reshape(n, n, n, channels).numpy()
    needed = np.zeros((n, n, n), bool)
    for c in range(channels):
        volume = values[..., c]
        low, high = np.full((n - 1,) * 3, np.inf), np.full((n - 1,) * 3, -np.inf)
        for di, dj, dk in np.ndindex(2, 2, 2):
            corner = volume[di : di + n - 1, dj : dj + n - 1, dk : dk + n - 1]
            low, high = np.minimum(low, corner), np.maximum(high, corner)
        labels, _ = scipy.ndimage.label((low <= 0) & (high >= 0), np.ones((3, 3, 3)))
        largest = labels == np.argmax(np.bincount(labels.reshape(-1))[1:]) + 1
        for di, dj, dk in np.ndindex(2, 2, 2):
            needed[di : di + n - 1, dj : dj + n - 1, dk : dk + n - 1] |= largest
    return int(needed.sum())


def test_surface_following_meshes_the_largest_piece_exactly_as_dense():
    cube = cube_of(128)
    fn = lambda p: torch.stack([hand_like_sdf(p), torus_sdf(p + 0.01)], -1)
    field = CountingField(fn)
    dense = DenseExtractor(DenseExtractorConfig(keep_largest_component=True)).extract(
        field, cube, ("hand", "object")
    )
    config = SurfaceAwareExtractorConfig(keep_largest_component=True, piece_fraction=0.25)
    field.count = 0
    result = SurfaceAwareExtractor(config).extract(field, cube, None, ("hand", "object"))
    assert result.queries == field.count
    for name in ("hand", "object"):
        got, want = result.meshes[name], dense.meshes[name]
        assert len(got.faces) == len(want.faces)
        assert hausdorff(got.vertices, want.vertices) < 1e-3 * cube.voxel_size
    # the finger is thinner than a coarse cell, yet it is there: the walk reached it from the palm
    assert result.meshes["hand"].vertices[:, 0].max() > CENTER[0] + 0.095
    # little more than the corners of the crossed cells is queried (the band: 1.66 times as many)
    assert result.queries < 1.3 * crossed_corners(fn, cube, 2)


def test_piece_fraction_leaves_small_pieces_unrefined():
    cube = cube_of(128)
    counts = {}
    for fraction in (0.0, 0.25):
        field = CountingField(hand_like_sdf)
        config = SurfaceAwareExtractorConfig(keep_largest_component=True, piece_fraction=fraction)
        result = SurfaceAwareExtractor(config).extract(field, cube)
        counts[fraction] = result.queries
        mesh = result.meshes["sdf"]
        assert mesh.vertices[:, 1].max() < CENTER[1] + 0.05  # the blob (at y + 8 cm) is dropped
    assert counts[0.25] < counts[0.0]


def test_surface_following_skips_pieces_no_coarse_lattice_sees_and_the_band_does_not():
    cube = cube_of(128)  # coarse lattice: stride 8 (1.9 cm), probed at stride 4
    # a 3 mm sphere at the centre of a stride-4 cell: 8 mm from every sample the coarse levels query
    centre = cube.origin + np.array([62, 62, 62]) * cube.voxel_size
    tiny = lambda p: (p - torch.tensor(centre, dtype=p.dtype)).norm(dim=-1) - 0.003
    following = SurfaceAwareExtractor().extract(tiny, cube)
    band = SurfaceAwareExtractor(SurfaceAwareExtractorConfig(follow_surface=False)).extract(tiny, cube)
    dense = DenseExtractor().extract(tiny, cube)
    assert following.meshes["sdf"].is_empty
    assert len(band.faces) == len(dense.faces) > 0


def test_surface_following_keeps_to_the_selected_blocks():
    cube = cube_of(64)
    selection = select_coarse_blocks(cube, markers=surface_markers("sphere"), coarse_resolution=16)
    selection[8:] = False
    result = SurfaceAwareExtractor().extract(CountingField(sphere_sdf), cube, selection)
    assert result.vertices[:, 0].max() <= cube.origin[0] + 31 * cube.voxel_size + 1e-6
    radius = np.linalg.norm(result.vertices - CENTER, axis=1)
    assert np.abs(radius - RADIUS).max() < 0.5 * cube.voxel_size


def test_walk_strides_are_checked():
    for strides in ((4, 2), (3, 1), (1, 4), ()):
        with pytest.raises(C2FError, match="walk_strides"):
            SurfaceAwareExtractor(SurfaceAwareExtractorConfig(walk_strides=strides))
    with pytest.raises(C2FError, match="piece_fraction"):
        SurfaceAwareExtractor(SurfaceAwareExtractorConfig(piece_fraction=1.5))


def test_a_piece_between_the_coarse_samples_is_found_by_probing():
    cube = cube_of(128)  # coarse lattice: stride 8 (1.9 cm)
    # a 6 mm sphere at the centre of a stride-8 cell, 1.6 cm from its corners: no coarse sample sees it
    centre = cube.origin + np.array([60, 60, 60]) * cube.voxel_size
    small = lambda p: (p - torch.tensor(centre, dtype=p.dtype)).norm(dim=-1) - 0.006
    result = SurfaceAwareExtractor().extract(CountingField(small), cube)
    dense = DenseExtractor().extract(small, cube)
    assert len(result.faces) == len(dense.faces) > 0
    assert hausdorff(result.vertices, dense.vertices) < 1e-3 * cube.voxel_size
