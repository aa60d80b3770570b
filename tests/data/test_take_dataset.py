"""Tests for the training data pipeline: crop boxes, augmentation, samples, heatmaps, the dataset, make_input."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from c2f_core.data.augment import corrupt_depth, jitter_box, jitter_color
from c2f_core.data.crop import box_center_side, box_from_center, crop_frame, gt_box, square_box, tight_box
from c2f_core.data.inputs import make_input
from c2f_core.data.samples import sample_depth_points, sample_sdf_queries, sample_surface, splat_heatmap
from c2f_core.data.take_dataset import FrameDataset, find_takes, open_sources, palm_depth, split_indices
from c2f_core.data.toy_scene import box_sdf, sphere_sdf, toy_frame, write_toy_take
from c2f_core.errors import C2FError
from c2f_core.geometry.camera import project
from c2f_core.geometry.frames import nu_to_cam, sdf_nu_to_m
from c2f_core.geometry.mesh_sdf import signed_distance
from c2f_core.hands.base import PALM
from c2f_core.train.config import load_c2f_config

CONFIG = load_c2f_config("configs/tiny.yaml")


def test_box_centre_side_round_trip_and_square():
    box = box_from_center(np.array([40.2, 30.7]), 21.0)
    center, side = box_center_side(box)
    np.testing.assert_allclose(center, [40.2, 30.7])
    assert side == pytest.approx(21.0)
    sq = square_box((10, 20, 30, 60), scale=1.5, margin_px=5)
    center, side = box_center_side(sq)
    np.testing.assert_allclose(center, [19.5, 39.5])
    assert side == pytest.approx(75.0)
    assert sq[2] - sq[0] == pytest.approx(sq[3] - sq[1])


def test_gt_box_holds_every_projected_vertex():
    frame = toy_frame(3)
    box = gt_box(frame.gt, frame.K, margin_px=0, scale=1.0)
    uv, _ = project(
        np.concatenate([frame.gt["hand_verts"], frame.gt["object_verts"]]).astype(np.float64), frame.K
    )
    assert np.all(uv[:, 0] >= box[0] - 0.5 - 1e-6) and np.all(uv[:, 0] <= box[2] - 0.5 + 1e-6)
    assert np.all(uv[:, 1] >= box[1] - 0.5 - 1e-6) and np.all(uv[:, 1] <= box[3] - 0.5 + 1e-6)
    with pytest.raises(C2FError, match="in front of the camera"):
        tight_box(np.array([[0.0, 0.0, -1.0]]), frame.K)


def test_crop_keeps_pixels_on_their_3d_points():
    frame = toy_frame(4)
    box = gt_box(frame.gt, frame.K, 10, 1.25)
    color, depth, K_crop = crop_frame(frame.color, frame.depth_m, frame.K, box, 64)
    assert color.shape == (64, 64, 3) and depth.shape == (64, 64) and color.dtype == np.uint8
    # The hand centre projects to the same scene point in the crop and in the full image.
    point = frame.gt["hand_verts"].mean(0).astype(np.float64)
    uv_full, _ = project(point, frame.K)
    uv_crop, _ = project(point, K_crop)
    center, side = box_center_side(box)
    np.testing.assert_allclose((uv_full - center) * 64 / side + 31.5, uv_crop, atol=1e-9)
    # Nearest-neighbour depth: every crop depth is a depth of the source image.
    assert np.isin(depth[depth > 0], frame.depth_m).all()


def test_jitter_box_stays_square_and_bounded():
    rng = np.random.default_rng(0)
    box = box_from_center(np.array([50.0, 50.0]), 40.0)
    for _ in range(20):
        jittered = jitter_box(box, rng, 0.1, 0.2)
        center, side = box_center_side(jittered)
        assert 32.0 - 1e-9 <= side <= 48.0 + 1e-9
        assert np.all(np.abs(center - 50.0) <= 4.0 + 1e-9)
        assert jittered[2] - jittered[0] == pytest.approx(jittered[3] - jittered[1])


def test_colour_and_depth_augmentation():
    rng = np.random.default_rng(0)
    color = np.full((8, 8, 3), 100, np.uint8)
    out = jitter_color(color, rng, 0.2)
    assert out.dtype == np.uint8 and np.all((out >= 80) & (out <= 120))
    assert len(np.unique(out.reshape(-1, 3), axis=0)) == 1  # one factor per channel
    depth = np.full((40, 40), 0.5, np.float32)
    depth[0, 0] = 0.0
    noisy = corrupt_depth(depth, rng, noise_m=0.002, dropout=0.1, holes=0)
    valid = noisy > 0
    assert noisy[0, 0] == 0.0
    assert 0.8 < valid.mean() < 0.97
    assert abs(float(np.std(noisy[valid]) - 0.002)) < 0.0005
    holed = corrupt_depth(depth, np.random.default_rng(3), 0.0, 0.0, holes=3)
    assert (holed == 0).sum() >= 1


def test_sdf_queries_balance_and_units():
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.1, 0.1, size=(500, 3)) + [0, 0, 0.5]
    sdf = sphere_sdf(points, np.array([0, 0, 0.5]), 0.05)
    ref = np.array([0.0, 0.0, 0.48])
    q, s = sample_sdf_queries(points, sdf, 100, rng, ref, 0.2)
    assert q.shape == (100, 3) and s.shape == (100,) and q.dtype == np.float32
    assert (s[:50] > 0).all() and (s[50:] <= 0).all()
    recomputed = sphere_sdf(nu_to_cam(q.astype(np.float64), ref, 0.2), np.array([0, 0, 0.5]), 0.05)
    np.testing.assert_allclose(sdf_nu_to_m(s, 0.2), recomputed, atol=1e-6)
    # All samples outside: every draw is outside.
    _, s2 = sample_sdf_queries(points[sdf > 0], sdf[sdf > 0], 10, rng, ref, 0.2)
    assert (s2 > 0).all() and len(s2) == 10


def test_depth_points_lie_on_observed_pixels():
    rng = np.random.default_rng(0)
    depth_norm = np.ones((16, 16))
    depth_norm[4:8, 4:8] = 0.1
    Kc = np.array([[40.0, 0, 7.5], [0, 40.0, 7.5], [0, 0, 1]])
    ref = np.array([0.0, 0.0, 0.5])
    pts = sample_depth_points(depth_norm, Kc, ref, 0.2, 0.25, 10, rng)
    assert pts.shape == (10, 3)
    cam = nu_to_cam(pts.astype(np.float64), ref, 0.2)
    np.testing.assert_allclose(cam[:, 2], 0.5 + 0.1 * 0.25, atol=1e-6)
    uv, _ = project(cam, Kc)
    assert np.all((uv >= 4 - 1e-4) & (uv <= 7 + 1e-4))
    assert len(np.unique(np.round(uv), axis=0)) == 10  # drawn without replacement (16 valid pixels)
    tiled = sample_depth_points(depth_norm, Kc, ref, 0.2, 0.25, 40, rng)
    assert tiled.shape == (40, 3)
    empty = sample_depth_points(np.ones((4, 4)), Kc, ref, 0.2, 0.25, 5, rng)
    np.testing.assert_array_equal(empty, 0.0)


def test_surface_samples_lie_on_the_mesh():
    frame = toy_frame(0)
    pts = sample_surface(frame.gt["hand_verts"], frame.gt["hand_faces"], 500, np.random.default_rng(0))
    center = frame.gt["hand_verts"].mean(0)
    radius = np.linalg.norm(frame.gt["hand_verts"] - center, axis=1).max()
    dist = np.linalg.norm(pts - center, axis=1)
    assert np.all(dist <= radius + 1e-6) and np.all(dist > 0.9 * radius)


def test_heatmap_splat_layout_peak_and_symmetry():
    res = 16
    voxel = np.array([3, 7, 11])
    point = -1 + (voxel + 0.5) * 2 / res
    grid = splat_heatmap(point[None], res, sigma_vox=0.6, clip=10.0)
    assert grid.shape == (res, res, res) and grid.dtype == np.float32
    assert tuple(np.unravel_index(grid.argmax(), grid.shape)) == (3, 7, 11)  # layout [x, y, z]
    assert grid.max() == pytest.approx(1.0)
    assert grid[2, 7, 11] == pytest.approx(grid[4, 7, 11])
    assert grid[2, 7, 11] == pytest.approx(np.exp(-1 / (2 * 0.36)), rel=1e-5)
    halfway = splat_heatmap(point[None] + [1.0 / res, 0, 0], res, 0.6, 10.0)  # half a voxel along +x
    assert halfway[3, 7, 11] == pytest.approx(halfway[4, 7, 11], rel=1e-5)
    assert splat_heatmap(np.array([[3.0, 0, 0]]), res, 0.6, 10.0).max() == 0.0


@pytest.fixture(scope="module")
def toy_take(tmp_path_factory):
    return write_toy_take(tmp_path_factory.mktemp("takes") / "take_a", frames=3, seed=1)


def test_find_takes_and_sources(toy_take, tmp_path):
    assert find_takes(toy_take) == [toy_take]
    assert find_takes(toy_take.parent) == [toy_take]
    sources = open_sources([toy_take.parent])
    assert len(sources) == 1 and len(sources[0]) == 3
    assert sources[0][1].gt is not None
    with pytest.raises(C2FError, match="neither a take"):
        find_takes(tmp_path)
    with pytest.raises(C2FError, match="not found"):
        find_takes(tmp_path / "missing")


def test_dataset_sample_shapes_targets_and_determinism(toy_take):
    sources = open_sources([toy_take])
    ds = FrameDataset(sources, CONFIG, train=True, seed=5)
    sample = ds[1]
    s, n, q, r = CONFIG.data.crop_size, CONFIG.data.n_pcl, CONFIG.data.n_queries, CONFIG.frames.heatmap_res
    shapes = {
        "rgb": (3, s, s),
        "depth_norm": (1, s, s),
        "K_crop": (3, 3),
        "ref_m": (3,),
        "pcl_nu": (n, 3),
        "query_nu": (q, 3),
        "query_sdf_nu": (q,),
        "query_is_hand": (q,),
        "joints_nu": (21, 3),
        "object_center_nu": (3,),
        "hand_points_nu": (CONFIG.data.n_hand_points, 3),
        "heatmap": (2, r, r, r),
    }
    for key, shape in shapes.items():
        assert sample[key].shape == shape, key
    assert sample["query_is_hand"][: q // 2].all() and not sample["query_is_hand"][q // 2 :].any()
    # Targets agree with the analytic scene once mapped back to metres with the sample's reference point.
    frame = sources[0][1]
    ref = sample["ref_m"].astype(np.float64)
    half = CONFIG.frames.cube_half_m
    hand_center = frame.gt["hand_verts"].astype(np.float64).mean(0)
    radius = np.linalg.norm(frame.gt["hand_verts"] - hand_center, axis=1).max()
    hand_q = nu_to_cam(sample["query_nu"][: q // 2].astype(np.float64), ref, half)
    np.testing.assert_allclose(
        sdf_nu_to_m(sample["query_sdf_nu"][: q // 2], half),
        sphere_sdf(hand_q, hand_center, radius),
        atol=2e-3,
    )  # icosphere vs sphere
    obj_q = nu_to_cam(sample["query_nu"][q // 2 :].astype(np.float64), ref, half)
    verts = frame.gt["object_verts"].astype(np.float64)
    lo, hi = verts.min(0), verts.max(0)
    np.testing.assert_allclose(
        sdf_nu_to_m(sample["query_sdf_nu"][q // 2 :], half),
        box_sdf(obj_q, (lo + hi) / 2, (hi - lo) / 2),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        nu_to_cam(sample["joints_nu"].astype(np.float64), ref, half), frame.gt["hand_joints"], atol=1e-5
    )
    assert np.abs(sample["heatmap"]).max() == pytest.approx(1.0)
    # Same key, same sample; the next epoch's key for the same frame differs (new jitter).
    again = ds[1]
    for key in shapes:
        np.testing.assert_array_equal(sample[key], again[key])
    assert not np.array_equal(ds[1 + len(ds)]["box"], sample["box"])
    # Validation samples use the plain GT box.
    val = FrameDataset(sources, CONFIG, train=False, seed=5)
    np.testing.assert_allclose(
        val[1]["box"], gt_box(frame.gt, frame.K, CONFIG.data.box_margin_px, CONFIG.data.box_scale), rtol=1e-6
    )


def test_depth_points_and_reference_point_come_from_the_input(toy_take):
    ds = FrameDataset(open_sources([toy_take]), CONFIG, train=False)
    sample = ds[0]
    frame = ds.frame(0)
    cam = nu_to_cam(sample["pcl_nu"].astype(np.float64), sample["ref_m"].astype(np.float64), 0.2)
    uv, z = project(cam, sample["K_crop"].astype(np.float64))
    assert np.all((uv > -0.5) & (uv < CONFIG.data.crop_size - 0.5))
    # Every depth point is a pixel of the foreground (the wall is beyond the depth cube).
    assert np.all(z < 0.9)
    assert abs(sample["ref_m"][2] - np.median(frame.depth_m[frame.gt["mask"] > 0])) < 0.05


def test_make_input_needs_no_ground_truth(toy_take):
    frame = open_sources([toy_take])[0][2]
    box = gt_box(frame.gt, frame.K, 10, 1.25)
    no_gt = dataclasses.replace(frame, gt=None)
    batch = make_input(no_gt, box, CONFIG)
    assert set(batch) == {"rgb", "depth_norm", "K_crop", "ref_m", "pcl_nu", "box"}
    assert all(isinstance(v, torch.Tensor) and v.shape[0] == 1 for v in batch.values())
    again = make_input(no_gt, box, CONFIG)
    for key in batch:
        torch.testing.assert_close(batch[key], again[key])
    val = FrameDataset(open_sources([toy_take]), CONFIG, train=False)
    np.testing.assert_allclose(batch["ref_m"][0].numpy(), val[2]["ref_m"])
    with pytest.raises(C2FError, match="no valid depth"):
        make_input(no_gt, (-500.0, -500.0, -400.0, -400.0), CONFIG)


def test_missing_ground_truth_is_a_clear_error(toy_take):
    frame = open_sources([toy_take])[0][0]
    gt = dict(frame.gt)
    del gt["sdf_object"]
    ds = FrameDataset([[dataclasses.replace(frame, gt=gt)]], CONFIG, train=True)
    with pytest.raises(C2FError, match="sdf_object"):
        ds[0]
    ds = FrameDataset([[dataclasses.replace(frame, gt=None)]], CONFIG, train=True)
    with pytest.raises(C2FError, match="no ground truth"):
        ds[0]


def test_split_indices():
    train, val = split_indices(10, 0.3, seed=0)
    assert len(val) == 3 and sorted(train + val) == list(range(10))
    assert split_indices(10, 0.3, seed=0) == (train, val)
    assert split_indices(5, 0.0, 0) == ([0, 1, 2, 3, 4], [])


def test_frame_cache_reads_each_frame_once(toy_take):
    class CountingSource:
        def __init__(self, source):
            self.source, self.reads = source, 0

        def __len__(self):
            return len(self.source)

        def __getitem__(self, index):
            self.reads += 1
            return self.source[index]

    counting = CountingSource(open_sources([toy_take])[0])
    config = load_c2f_config({"data": {"cache_frames": True, "crop_size": 64}})
    ds = FrameDataset([counting], config, train=True)
    first = ds[0]
    np.testing.assert_array_equal(ds[0]["rgb"], first["rgb"])
    ds[1]
    assert counting.reads == 2


def test_background_queries_teach_both_fields_where_neither_part_is(toy_take):
    config = load_c2f_config("configs/tiny.yaml")
    config.data.background_queries = 0.25
    frame = open_sources([toy_take])[0][1]
    # A wall 4 cm behind the hand, inside the reconstruction cube, where the toy scene shows nothing near.
    mask = frame.gt["mask"]
    wall = float(np.median(frame.depth_m[mask == 1])) + 0.04
    frame = dataclasses.replace(frame, depth_m=np.where(mask == 0, wall, frame.depth_m).astype(np.float32))
    sample = FrameDataset([[frame]], config, train=False, seed=5)[0]
    q, half = config.data.n_queries, config.frames.cube_half_m
    n_back = round(0.25 * (q // 2))
    assert sample["query_nu"].shape == (q, 3) and sample["query_is_hand"][: q // 2].all()
    ref = sample["ref_m"].astype(np.float64)
    for start, key in ((q // 2 - n_back, "hand_verts"), (q - n_back, "object_verts")):
        points = nu_to_cam(sample["query_nu"][start : start + n_back].astype(np.float64), ref, half)
        sdf = sdf_nu_to_m(sample["query_sdf_nu"][start : start + n_back].astype(np.float64), half)
        # Observed pixels of the wall: on the depth map, labelled neither hand nor object.
        uv, z = project(points, frame.K)
        cols, rows = np.round(uv).astype(int).T
        np.testing.assert_allclose(frame.depth_m[rows, cols], z, atol=1e-4)
        assert not np.isin(mask[rows, cols], (1, 2)).any()
        # Their target: the distance to the part's nearest vertex, positive (outside).
        vertices = frame.gt[key].astype(np.float64)
        nearest = np.linalg.norm(points[:, None] - vertices[None], axis=-1).min(1)
        np.testing.assert_allclose(sdf, nearest, atol=1e-5)
        assert (sdf > 0).all()
    # Off (the default): the halves are the GT samples only, as before.
    plain = FrameDataset([[frame]], CONFIG, train=False, seed=5)[0]
    assert not np.array_equal(plain["query_nu"], sample["query_nu"])


def test_hidden_queries_lie_behind_the_observed_surface_with_exact_distances(toy_take):
    config = load_c2f_config("configs/tiny.yaml")
    config.data.hidden_queries = 0.3
    frame = open_sources([toy_take])[0][1]
    sample = FrameDataset([[frame]], config, train=False, seed=3)[0]
    q, half = config.data.n_queries, config.frames.cube_half_m
    n_hidden = round(0.3 * (q // 2))
    ref = sample["ref_m"].astype(np.float64)
    hand_part = sample["query_nu"][q // 2 - n_hidden : q // 2]
    object_part = sample["query_nu"][q - n_hidden :]
    # The same hidden points serve both fields, each with its own part's distance.
    np.testing.assert_array_equal(hand_part, object_part)
    points = nu_to_cam(hand_part.astype(np.float64), ref, half)
    assert (np.abs(hand_part) < 1.0).all()
    uv, z = project(points, frame.K)
    cols, rows = np.round(uv).astype(int).T
    observed = frame.depth_m[rows, cols].astype(np.float64)
    assert (observed > 0).all() and (z >= observed - 0.003).all()
    assert (z - observed).max() <= config.data.hidden_behind_m + 0.003
    # Most of them behind the hand or the object, where the toy scene's parts hide their far sides.
    assert np.isin(frame.gt["mask"][rows, cols], (1, 2)).mean() > 0.6
    for start, part in ((q // 2 - n_hidden, "hand"), (q - n_hidden, "object")):
        sdf = sdf_nu_to_m(sample["query_sdf_nu"][start : start + n_hidden].astype(np.float64), half)
        exact = signed_distance(points, frame.gt[f"{part}_verts"], frame.gt[f"{part}_faces"])
        np.testing.assert_allclose(sdf, exact, atol=3e-4)  # libigl's signed_distance is single precision
    # Points inside the parts' hidden far sides are there, with negative targets.
    assert (sample["query_sdf_nu"][q - n_hidden :] < 0).any() or (
        sample["query_sdf_nu"][q // 2 - n_hidden : q // 2] < 0
    ).any()


def test_query_shares_that_leave_no_gt_samples_are_refused(toy_take):
    config = load_c2f_config("configs/tiny.yaml")
    config.data.background_queries, config.data.hidden_queries = 0.5, 0.5
    frame = open_sources([toy_take])[0][1]
    with pytest.raises(C2FError, match="hidden_queries"):
        FrameDataset([[frame]], config, train=False)[0]


def test_palm_reference_rule_places_the_cube_at_the_palm_as_inference_does(toy_take):
    config = load_c2f_config("configs/tiny.yaml")
    config.data.ref_rule = "palm"
    frame = open_sources([toy_take])[0][1]
    sample = FrameDataset([[frame]], config, train=False)[0]
    joints = frame.gt["hand_joints"].astype(np.float64).reshape(21, 3)
    uv, _ = project(joints[list(PALM)], frame.K)
    cols, rows = np.round(uv).astype(int).T
    expected = float(np.median(frame.depth_m[rows, cols]))
    assert abs(sample["ref_m"][2] - palm_depth(frame.depth_m, frame.K, joints)) < 1e-6
    assert abs(sample["ref_m"][2] - expected) < 0.01
    # On the crop's centre ray, as make_input puts it from landmarks.
    centre = (config.data.crop_size - 1) / 2
    uv_ref, _ = project(sample["ref_m"][None].astype(np.float64), sample["K_crop"].astype(np.float64))
    np.testing.assert_allclose(uv_ref[0], [centre, centre], atol=1e-3)
    # Unseen palm (no depth under it): the crop rule.
    holes = frame.depth_m.copy()
    for col, row in zip(cols, rows):
        holes[max(row - 3, 0) : row + 4, max(col - 3, 0) : col + 4] = 0
    blind = dataclasses.replace(frame, depth_m=holes)
    assert palm_depth(blind.depth_m, blind.K, joints) is None
    crop_rule = FrameDataset([[blind]], config, train=False)[0]
    config.data.ref_rule = "crop"
    np.testing.assert_allclose(crop_rule["ref_m"], FrameDataset([[blind]], config, train=False)[0]["ref_m"])
    # Mixed: each sample one rule or the other, the rest of the sample unchanged.
    datasets = {}
    for rule in ("mixed", "palm", "crop"):
        rule_config = copy.deepcopy(config)
        rule_config.data.ref_rule, rule_config.data.ref_palm_share = rule, 0.5
        datasets[rule] = FrameDataset([[frame] * 16], rule_config, train=True, seed=2)
    mixed, palm_only, crop_only = datasets["mixed"], datasets["palm"], datasets["crop"]
    picked = []
    for key in range(16):
        got = mixed[key]
        same_palm = np.array_equal(got["ref_m"], palm_only[key]["ref_m"])
        assert same_palm or np.array_equal(got["ref_m"], crop_only[key]["ref_m"])
        np.testing.assert_array_equal(got["rgb"], crop_only[key]["rgb"])
        picked.append(same_palm)
    assert 0 < sum(picked) < 16
    config.data.ref_palm_share = 1.5
    with pytest.raises(C2FError, match="ref_palm_share"):
        config.validate()
    config.data.ref_palm_share = 0.7
    config.data.ref_rule = "elbow"
    with pytest.raises(C2FError, match="ref_rule"):
        config.validate()
