"""Tests for c2f_core.geometry.knn: brute-force agreement, xy mode, k > P, gradients, batches."""

import pytest
import torch

from c2f_core.geometry.knn import knn


def brute_force(queries, points, k, metric="3d"):
    dims = 2 if metric == "xy" else 3
    choose = ((queries[:, :, None, :dims] - points[:, None, :, :dims]) ** 2).sum(-1)
    idx = choose.argsort(dim=-1)[..., :k]
    full = ((queries[:, :, None] - points[:, None]) ** 2).sum(-1)
    return full.gather(-1, idx), idx


@pytest.fixture
def clouds():
    gen = torch.Generator().manual_seed(0)
    queries = torch.rand(3, 200, 3, generator=gen, dtype=torch.float64)
    points = torch.rand(3, 150, 3, generator=gen, dtype=torch.float64)
    return queries, points


@pytest.mark.parametrize("backend", ["auto", "kdtree", "torch"])
@pytest.mark.parametrize("metric", ["3d", "xy"])
def test_matches_brute_force(clouds, backend, metric):
    queries, points = clouds
    dist_sq, idx = knn(queries, points, 8, metric=metric, backend=backend)
    ref_dist, ref_idx = brute_force(queries, points, 8, metric)
    assert dist_sq.shape == (3, 200, 8) and idx.shape == (3, 200, 8)
    assert idx.dtype == torch.int64 and dist_sq.dtype == torch.float64
    torch.testing.assert_close(idx, ref_idx)
    torch.testing.assert_close(dist_sq, ref_dist)


def test_3d_sorted_ascending(clouds):
    dist_sq, _ = knn(*clouds, 16)
    assert (dist_sq[..., 1:] >= dist_sq[..., :-1]).all()


def test_xy_picks_cylinder_not_ball():
    points = torch.tensor([[0.0, 0.0, 5.0], [0.5, 0.0, 0.0]])
    query = torch.zeros(1, 3)
    dist_sq, idx = knn(query, points, 1, metric="xy")
    assert idx.item() == 0 and dist_sq.item() == pytest.approx(25.0)
    dist_sq, idx = knn(query, points, 1, metric="3d")
    assert idx.item() == 1 and dist_sq.item() == pytest.approx(0.25)


@pytest.mark.parametrize("backend", ["kdtree", "torch"])
def test_k_larger_than_points_repeats_farthest(backend):
    points = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]]])
    queries = torch.tensor([[[0.1, 0, 0]]])
    dist_sq, idx = knn(queries, points, 5, backend=backend)
    assert idx.tolist() == [[[0, 1, 2, 2, 2]]]
    torch.testing.assert_close(dist_sq[0, 0, 3:], dist_sq[0, 0, 2:3].expand(2))


def test_unbatched_input(clouds):
    queries, points = clouds
    dist_sq, idx = knn(queries[1], points[1], 4)
    _, ref_idx = knn(queries[1:2], points[1:2], 4)
    assert dist_sq.shape == (200, 4)
    torch.testing.assert_close(idx, ref_idx[0])


def test_batch_items_are_independent(clouds):
    queries, points = clouds
    _, idx = knn(queries, points, 4)
    for b in range(3):
        _, idx_b = knn(queries[b : b + 1], points[b : b + 1], 4)
        torch.testing.assert_close(idx[b], idx_b[0])


@pytest.mark.parametrize("backend", ["kdtree", "torch"])
def test_gradients_flow_to_queries_and_points(backend):
    gen = torch.Generator().manual_seed(1)
    queries = torch.rand(2, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    points = torch.rand(2, 10, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda q, p: knn(q, p, 3, backend=backend)[0], (queries, points))
    dist_sq, _ = knn(queries, points, 3, backend=backend)
    dist_sq.sum().backward()
    assert queries.grad.abs().sum() > 0 and points.grad.abs().sum() > 0


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match="points"):
        knn(torch.zeros(2, 5, 3), torch.zeros(3, 5, 3), 1)
    with pytest.raises(ValueError, match="empty"):
        knn(torch.zeros(1, 5, 3), torch.zeros(1, 0, 3), 1)
    with pytest.raises(ValueError, match="metric"):
        knn(torch.zeros(1, 5, 3), torch.zeros(1, 5, 3), 1, metric="z")


def test_empty_queries():
    dist_sq, idx = knn(torch.zeros(1, 0, 3), torch.rand(1, 5, 3), 2)
    assert dist_sq.shape == (1, 0, 2) and idx.shape == (1, 0, 2)
