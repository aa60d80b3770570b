"""Tests for the C2F-SDF network: shapes through every module, gradients everywhere, conventions, query API."""

import copy

import numpy as np
import pytest
import torch

from c2f_core.data.take_dataset import FrameDataset
from c2f_core.data.toy_scene import toy_frame
from c2f_core.errors import C2FError
from c2f_core.geometry.frames import cam_to_nu, crop_points_nu
from c2f_core.model.config import PifuConfig
from c2f_core.model.encoder import DualResNetEncoder, GatedFusion, build_encoder, load_pretrained
from c2f_core.model.heads import HeatmapHead
from c2f_core.model.lifting import lift_features, lifted_pixel_points
from c2f_core.model.network import C2FNetwork
from c2f_core.model.pifu3d import PointAlignedFeatures
from c2f_core.model.pixel import project_to_grid
from c2f_core.train.config import load_c2f_config

BASE = load_c2f_config("configs/tiny.yaml")
ABLATIONS = {
    "pixel_rgb": ("rgb", False, False),
    "pixel_rgbd": ("rgbd", False, False),
    "point3d": ("rgbd", True, False),
    "point3d_ref": ("rgbd", True, True),
}


def config_for(ablation="point3d_ref", kind="resnet", norm="group"):
    config = copy.deepcopy(BASE)
    config.model.modality, config.model.point_features, config.model.coarse_refinement = ABLATIONS[ablation]
    config.model.encoder.kind = kind
    config.model.norm = norm
    return config


@pytest.fixture(scope="module")
def batch():
    frames = [toy_frame(i) for i in range(2)]
    ds = FrameDataset([frames], BASE, train=True, seed=0)
    return torch.utils.data.default_collate([ds[0], ds[1]])


@pytest.mark.parametrize("kind", ["resnet", "hourglass"])
@pytest.mark.parametrize("modality", ["rgb", "rgbd"])
def test_encoder_shapes(kind, modality):
    config = config_for(kind=kind).model
    encoder = build_encoder(config.encoder, modality, "batch")
    feat, bottleneck = encoder(torch.randn(2, 3, 64, 64), torch.randn(2, 1, 64, 64))
    assert feat.shape == (2, config.encoder.feat_channels, 16, 16)
    assert bottleneck.shape == (2, encoder.bottleneck_channels, 2, 2)
    assert hasattr(encoder, "fusions") == (modality == "rgbd")


def test_gated_fusion_is_a_convex_blend():
    fusion = GatedFusion(4)
    rgb, depth = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    rgb2, depth2, merge = fusion(rgb, depth)
    gates = torch.softmax(fusion.gate(torch.cat([rgb, depth], 1)), 1)
    torch.testing.assert_close(merge, gates[:, :1] * rgb + gates[:, 1:] * depth)
    torch.testing.assert_close(rgb2, torch.relu((rgb + merge) / 2))
    assert merge.shape == rgb.shape and depth2.shape == depth.shape


@pytest.mark.parametrize("ablation", list(ABLATIONS))
@pytest.mark.parametrize("kind", ["resnet", "hourglass"])
def test_forward_shapes_and_every_parameter_gets_a_gradient(batch, ablation, kind):
    config = config_for(ablation, kind)
    torch.manual_seed(0)
    net = C2FNetwork(config.model, config.frames, config.data.crop_size)
    out = net(batch)
    q, r = config.data.n_queries, config.frames.heatmap_res
    expected = {
        "sdf_hand": (2, q),
        "sdf_object": (2, q),
        "joints": (2, 21, 3),
        "object_center": (2, 3),
        "hand_points": (2, config.model.heads.n_hand_points, 3),
        "heatmap": (2, 2, r, r, r),
    }
    if config.model.coarse_refinement:
        expected.update(coarse_hand=(2, q), coarse_object=(2, q))
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    loss = sum(v.float().square().mean() for v in out.values())
    loss.backward()
    dead = [
        n
        for n, p in net.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ]
    assert dead == []
    assert (net.coarse is None) == (not config.model.coarse_refinement)
    assert (net.pifu is None) == (not config.model.point_features)


def test_nerf_xyz_encoding_feeds_every_decoder(batch):
    config = config_for()
    config.model.xyz_encoding = "nerf"
    config.model.xyz_frequencies = 3
    net = C2FNetwork(config.model, config.frames, config.data.crop_size)
    assert net.fine.hand.in_features == 2 * config.model.latent + 3 + 18
    assert net.coarse.hand.in_features == config.model.latent + 3 + 18
    out = net(batch)
    sum(v.float().square().mean() for v in out.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    encoded = net.fine.xyz(torch.tensor([[0.25, -0.5, 0.0]]))
    torch.testing.assert_close(encoded[0, :3], torch.tensor([0.25, -0.5, 0.0]))
    torch.testing.assert_close(
        encoded[0, 3:6], torch.sin(torch.tensor([0.25, 0.5, 1.0]) * torch.pi)
    )  # x at 1, 2, 4 pi


def test_batchnorm_model_trains_and_evaluates(batch):
    config = config_for(norm="batch")
    net = C2FNetwork(config.model, config.frames, config.data.crop_size)
    net(batch)["sdf_hand"].sum().backward()
    net.eval()
    with torch.no_grad():
        assert torch.isfinite(net(batch)["sdf_hand"]).all()


def test_encode_query_equals_training_forward_and_chunks(batch):
    config = config_for()
    net = C2FNetwork(config.model, config.frames, config.data.crop_size).eval()
    with torch.no_grad():
        out = net(batch)
        state = net.encode(batch)
        hand, obj = net.query(state, batch["query_nu"], chunk=37)
        coarse_hand, _ = net.coarse_sdf(state, batch["query_nu"])
    torch.testing.assert_close(hand, out["sdf_hand"])
    torch.testing.assert_close(obj, out["sdf_object"])
    torch.testing.assert_close(coarse_hand, out["coarse_hand"])
    assert state.pcl_sdf.shape == (2, config.data.n_pcl, 2)
    assert state.pcl_sdf.abs().max() <= net.sdf_clamp_nu + 1e-6
    assert state.pcl_feat.shape == (2, config.data.n_pcl, config.model.latent)
    one = state.select(1)
    torch.testing.assert_close(state.select(-1).ref_m, one.ref_m)
    assert one.ref_m.shape == (1, 3) and one.cube_half_m == state.cube_half_m
    with torch.no_grad():
        hand1, _ = net.query(one, batch["query_nu"][1:])
    torch.testing.assert_close(hand1[0], hand[1])


def test_field_fn_takes_metres_and_returns_metres(batch):
    config = config_for()
    net = C2FNetwork(config.model, config.frames, config.data.crop_size).eval()
    with torch.no_grad():
        state = net.encode(batch)
        points_nu = batch["query_nu"][1, :50]
        points_m = state.to_cam(batch["query_nu"])[1, :50]
        values = net.field_fn(state, frame=1)(points_m)
        hand, obj = net.query(state.select(1), points_nu[None])
    assert values.shape == (50, 2)
    torch.testing.assert_close(values[:, 0], hand[0] * config.frames.cube_half_m, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(values[:, 1], obj[0] * config.frames.cube_half_m, atol=1e-6, rtol=1e-4)


def test_pixel_projection_hits_pixel_centres():
    K = torch.tensor([[[50.0, 0, 31.5], [0, 50.0, 31.5], [0, 0, 1]]])
    ref = torch.tensor([[0.0, 0.0, 0.5]])
    u, v, z = torch.tensor([0.0, 10.0, 63.0]), torch.tensor([5.0, 31.5, 63.0]), torch.tensor([0.4, 0.5, 0.6])
    cam = torch.stack([(u - 31.5) * z / 50, (v - 31.5) * z / 50, z], -1)[None]
    grid, back = project_to_grid(cam_to_nu(cam, ref, 0.2), K, ref, 0.2, 64)
    torch.testing.assert_close(back, cam)
    torch.testing.assert_close(grid[0, :, 0], (2 * u + 1) / 64 - 1)
    torch.testing.assert_close(grid[0, :, 1], (2 * v + 1) / 64 - 1)


def test_lifting_copies_coincident_pixels_and_blends_between():
    depth_norm = torch.full((1, 1, 16, 16), 0.2)
    K = torch.tensor([[[20.0, 0, 7.5], [0, 20.0, 7.5], [0, 0, 1]]])
    ref = torch.tensor([[0.0, 0.0, 0.5]])
    pixels = lifted_pixel_points(depth_norm, K, ref, 4, 0.2, 0.25)
    assert pixels.shape == (1, 16, 3)
    all_points = crop_points_nu(depth_norm[:, 0], K, ref, 0.2, 0.25)
    torch.testing.assert_close(pixels[0, 5], all_points[0, 6, 6])  # feature pixel (1, 1) -> crop pixel (6, 6)
    feat = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    lifted = lift_features(feat, pixels, pixels[:, [5, 10]], neighbours=4)
    torch.testing.assert_close(lifted[0, :, 0], torch.tensor([5.0, 10.0]))
    midpoint = (pixels[:, 5] + pixels[:, 6]) / 2
    blended = lift_features(feat, pixels, midpoint[:, None], neighbours=2)
    torch.testing.assert_close(blended[0, 0, 0], torch.tensor(5.5))


def test_point_aligned_weights_normalise_and_downweight_positive_sdf():
    pifu = PointAlignedFeatures(PifuConfig(k=4), use_sdf=True)
    dist_sq = torch.full((1, 1, 4), 0.01)
    sdf = torch.tensor([0.0, 0.0, 0.05, 0.05]).view(1, 1, 4, 1).expand(1, 1, 4, 2)
    w = pifu.weights(dist_sq, sdf)
    torch.testing.assert_close(w.sum(2), torch.ones(1, 1, 2))
    assert (w[0, 0, :2] > w[0, 0, 2:]).all()
    pcl = torch.randn(2, 30, 3)
    feat = torch.randn(2, 30, 8)
    for metric in ("3d", "xy"):
        layer = PointAlignedFeatures(PifuConfig(k=5, metric=metric), use_sdf=True)
        hand, obj = layer(torch.randn(2, 7, 3), pcl, feat, torch.rand(2, 30, 2))
        assert hand.shape == obj.shape == (2, 7, 8)
    plain = PointAlignedFeatures(PifuConfig(k=30), use_sdf=False)
    hand, obj = plain(pcl[:, :1] * 0 + 1e3, pcl, feat, None)  # far query: nearly uniform weights
    torch.testing.assert_close(hand[:, 0], feat.mean(1), atol=1e-3, rtol=1e-3)
    assert hand is obj


def test_heatmap_layout_is_x_y_z():
    res = 4
    head = HeatmapHead(3, res, res, 2, "group")
    head.neck = torch.nn.Identity()
    code = torch.zeros(1, 2 * res, res, res)  # conv channels c*R + z, rows y, columns x
    for c in range(2):
        for z in range(res):
            for y in range(res):
                for x in range(res):
                    code[0, c * res + z, y, x] = 1000 * c + 100 * x + 10 * y + z

    class Fixed(torch.nn.Module):
        def forward(self, _):
            return code

    head.out = Fixed()
    out = head(torch.zeros(1, 3, res, res))
    assert out.shape == (1, 2, res, res, res)
    assert out[0, 1, 3, 2, 1] == 1000 + 300 + 20 + 1


def test_pretrained_encoder_weights_load_from_a_local_file(tmp_path):
    config = config_for().model
    source = build_encoder(config.encoder, "rgbd", "batch")
    path = tmp_path / "encoder.pt"
    torch.save(source.state_dict(), path)
    target = build_encoder(config.encoder, "rgbd", "batch")
    assert load_pretrained(target, path) == len(source.state_dict())
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value)
    # A torchvision-style ResNet-18 state dict maps onto both paths (depth stem: RGB kernels averaged).
    rgb = {k[len("rgb_") :]: v for k, v in source.state_dict().items() if k.startswith("rgb_")}
    tv = {}
    for key, value in rgb.items():
        if key.startswith("stem.0."):
            tv["conv1." + key[7:]] = value
        elif key.startswith("stem.1."):
            tv["bn1." + key[7:]] = value
        else:
            stage, rest = key[len("stages.") :].split(".", 1)
            tv[f"layer{int(stage) + 1}.{rest}"] = value
    torch.save({"state_dict": tv}, path)
    fresh = build_encoder(config.encoder, "rgbd", "batch")
    assert isinstance(fresh, DualResNetEncoder)
    load_pretrained(fresh, path)
    torch.testing.assert_close(fresh.depth_stages[2][1].conv2.weight, source.rgb_stages[2][1].conv2.weight)
    torch.testing.assert_close(fresh.depth_stem[0].weight, source.rgb_stem[0].weight.mean(1, keepdim=True))
    with pytest.raises(C2FError, match="not found"):
        load_pretrained(fresh, tmp_path / "missing.pt")
    torch.save({"unrelated": torch.zeros(3)}, path)
    with pytest.raises(C2FError, match="no tensor"):
        load_pretrained(fresh, path)


def test_invalid_model_configs_are_clear_errors():
    config = config_for()
    config.model.point_features = False
    with pytest.raises(C2FError, match="coarse_refinement needs"):
        C2FNetwork(config.model, config.frames, 64)
    config = config_for()
    with pytest.raises(C2FError, match="multiple of 32"):
        C2FNetwork(config.model, config.frames, 48)


def test_query_rejects_mismatched_points(batch):
    config = config_for()
    net = C2FNetwork(config.model, config.frames, config.data.crop_size).eval()
    with torch.no_grad():
        state = net.encode(batch)
        with pytest.raises(ValueError, match="points_nu"):
            net.query(state, torch.zeros(3, 5, 3))
        empty_hand, _ = net.query(state, torch.zeros(2, 0, 3))
    assert empty_hand.shape == (2, 0)
    assert np.isfinite(state.heatmap.numpy()).all()


def test_open_hand_posed_by_predicted_joints(batch):
    pytest.importorskip("c2f_core.hands.open_hand")
    from c2f_core.hands.open_hand import OpenHandLayer

    try:
        layer = OpenHandLayer()
    except C2FError:
        pytest.skip("open-hand asset not built")
    config = config_for()
    net = C2FNetwork(config.model, config.frames, config.data.crop_size).eval()
    with torch.no_grad():
        state = net.encode(batch)
        rest = layer.rest_joints(batch=2) + torch.tensor([0.0, 0.0, 0.5])
        state.joints_nu = cam_to_nu(rest, state.ref_m[:, None, :], state.cube_half_m)
        verts = net.posed_hand_nu(state)
    assert verts.shape == (2, layer.template_vertices.shape[0], 3)
    rest_verts, _ = layer.rest(batch=2)
    torch.testing.assert_close(
        state.to_cam(verts), rest_verts + torch.tensor([0.0, 0.0, 0.5]), atol=1e-5, rtol=0
    )


def test_forward_runs_under_bf16_autocast(batch):
    config = config_for()
    net = C2FNetwork(config.model, config.frames, config.data.crop_size)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(batch)
    assert all(torch.isfinite(v.float()).all() for v in out.values())
    sum(v.float().square().mean() for v in out.values()).backward()


def _flat_depth_input(crop: int, depth_m: float, ref_m, half_depth: float):
    """A crop whose every pixel sees a plane at ``depth_m``, normalised around ``ref_m``."""
    depth_norm = torch.full((1, 1, crop, crop), (depth_m - ref_m[2]) / half_depth)
    K = torch.tensor([[[100.0, 0.0, 30.0], [0.0, 110.0, 20.0], [0.0, 0.0, 1.0]]])
    return depth_norm, K, torch.tensor([ref_m])


def test_pixel_joints_start_on_the_surface_at_the_heatmap_mean():
    from c2f_core.model.heads import PixelJointHead

    head = PixelJointHead(8, 8, 4, "group")
    torch.nn.init.zeros_(head.heatmaps.weight)
    torch.nn.init.zeros_(head.heatmaps.bias)  # uniform heatmaps: the mean pixel
    ref, half_cube, half_depth = [0.01, -0.02, 0.5], 0.2, 0.3
    depth_norm, K, ref_t = _flat_depth_input(64, 0.55, ref, half_depth)
    joints_nu = head(torch.randn(1, 8, 16, 16), depth_norm, K, ref_t, half_cube, half_depth)
    centre = np.arange(16).mean() * 4 + 2  # feature pixel i covers crop pixel 4 i + 2
    z = 0.55
    expected_m = torch.tensor([(centre - 30.0) / 100.0 * z, (centre - 20.0) / 110.0 * z, z])
    expected_nu = cam_to_nu(expected_m, torch.tensor(ref), half_cube).float()
    assert joints_nu.shape == (1, 21, 3)
    torch.testing.assert_close(joints_nu[0], expected_nu.expand(21, 3), atol=1e-5, rtol=0)


def test_pixel_joints_follow_the_heatmap_peak_and_the_depth_offset():
    from c2f_core.model.heads import PixelJointHead

    head = PixelJointHead(8, 8, 4, "group")

    class FirstChannels(torch.nn.Module):
        def forward(self, x):
            return x[:, :8]

    head.body = FirstChannels()
    with torch.no_grad():
        head.heatmaps.weight.zero_()
        head.heatmaps.bias.zero_()
        head.heatmaps.weight[:, 0] = 60.0  # every joint peaks where channel 0 is lit
        head.depths.bias.fill_(0.1)  # 0.1 nu behind the observed surface
    feat = torch.zeros(1, 8, 16, 16)
    feat[0, 0, 5, 9] = 1.0
    ref, half_cube, half_depth = [0.0, 0.0, 0.6], 0.2, 0.3
    depth_norm, K, ref_t = _flat_depth_input(64, 0.58, ref, half_depth)
    depth_norm[..., :8, :8] = 1.0  # missing depth elsewhere does not matter at the peak
    joints_m = head(feat, depth_norm, K, ref_t, half_cube, half_depth) * half_cube + ref_t
    u, v, z = 9 * 4 + 2, 5 * 4 + 2, 0.58 + 0.1 * half_cube
    expected = torch.tensor([(u - 30.0) / 100.0 * z, (v - 20.0) / 110.0 * z, z])
    torch.testing.assert_close(joints_m[0], expected.expand(21, 3), atol=1e-4, rtol=0)


def test_pixel_joint_network_trains_its_head_and_loads(batch):
    config = config_for()
    config.model.heads.joints = "pixel"
    torch.manual_seed(0)
    net = C2FNetwork(config.model, config.frames, config.data.crop_size)
    out = net(batch)
    assert out["joints"].shape == (2, 21, 3)
    out["joints"].square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.pixel_joints.parameters())
    assert net.pose.joints.weight.grad is None  # the regressed joints are not used
    with pytest.raises(C2FError, match="model.heads.joints"):
        bad = copy.deepcopy(config)
        bad.model.heads.joints = "volume"
        bad.model.validate()
