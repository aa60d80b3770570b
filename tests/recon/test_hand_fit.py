"""Tests for the open-hand fit on a stand-in network whose hand SDF is the distance to a known hand."""

import numpy as np
import torch

from c2f_core.geometry.frames import cam_to_nu, nu_to_cam
from c2f_core.geometry.knn import knn
from c2f_core.hands.open_hand import OpenHandLayer
from c2f_core.hands.rotations import axis_angle_to_matrix
from c2f_core.model.network import EncodedFrames
from c2f_core.recon.hand_fit import HandFitConfig, fit_open_hand

HALF = 0.2
K = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])


def true_hand():
    """The open hand, fingers curled, turned and 0.5 m in front of the camera."""
    layer = OpenHandLayer()
    angles = torch.zeros(1, 19, 3)
    angles[..., 0] = 0.5  # flex every bone
    axis = torch.tensor([0.3, -0.5, 0.2])
    out = layer(
        axis_angle_to_matrix(axis)[None],
        layer.angles_to_rotations(angles),
        transl=torch.tensor([[0.02, -0.01, 0.5]]),
    )
    return out.vertices[0], out.joints[0]


class StandInNetwork:
    """fine_sdf: distance to the true hand's vertices (hand) and 'far away' (object)."""

    def __init__(self, vertices, ref):
        self.vertices, self.ref = vertices, ref
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def fine_sdf(self, state, points_nu):
        points = nu_to_cam(points_nu[0], self.ref, HALF)
        distance = knn(points, self.vertices, 1)[0][:, 0].clamp_min(1e-12).sqrt()
        hand_nu = distance / HALF + 0 * self.weight  # the weight joins the graph: it must get no gradient
        return hand_nu[None], torch.ones_like(hand_nu)[None]


def encoded(vertices, joints, ref):
    """A batch-of-one state: the camera-facing half of the true hand as depth points, given joints."""
    visible = vertices[vertices[:, 2] < vertices[:, 2].median()]
    zeros = torch.zeros(1, 1)
    return EncodedFrames(
        feat_map=zeros,
        pix_map=zeros,
        K_crop=torch.as_tensor(K, dtype=torch.float32)[None],
        ref_m=ref[None],
        pcl_nu=cam_to_nu(visible, ref, HALF)[None],
        global_feat=None,
        pcl_feat=None,
        pcl_sdf=None,
        joints_nu=cam_to_nu(joints, ref, HALF)[None],
        hand_points_nu=zeros,
        object_center_nu=torch.zeros(1, 3),
        heatmap=zeros,
        cube_half_m=HALF,
    )


def test_fit_recovers_a_hand_from_noisy_joints():
    vertices, joints = true_hand()
    ref = vertices.mean(0)
    rng = np.random.default_rng(0)
    noisy = joints + torch.as_tensor(rng.normal(0, 0.006, (21, 3)), dtype=torch.float32) + 0.01
    network = StandInNetwork(vertices, ref)
    state = encoded(vertices, noisy, ref)
    depth = np.zeros((480, 640), np.float32)  # no depth map: the free-space term stays out

    fit = fit_open_hand(network, state, depth, K, HandFitConfig(iterations=80), surface=vertices.numpy())
    start = fit_open_hand(network, state, depth, K, HandFitConfig(iterations=0))

    def error(mesh_vertices):
        return float(np.linalg.norm(mesh_vertices - vertices.numpy(), axis=1).mean())

    assert fit.vertices.shape == vertices.shape and fit.faces.shape[1] == 3
    assert fit.hand_points == len(state.pcl_nu[0])
    assert error(fit.vertices) < 0.5 * error(start.vertices)
    assert error(fit.vertices) < 0.008
    assert network.weight.grad is None  # only the fit's own parameters get gradients
    again = fit_open_hand(network, state, depth, K, HandFitConfig(iterations=80), surface=vertices.numpy())
    np.testing.assert_array_equal(again.vertices, fit.vertices)  # repeatable


def test_free_space_pushes_the_hand_behind_the_observed_depth():
    vertices, joints = true_hand()
    ref = vertices.mean(0)
    network = StandInNetwork(vertices, ref)
    state = encoded(vertices, joints, ref)
    # Observed depth 3 cm behind the hand's nearest point: the vertices in front of it are in free space.
    wall = float(vertices[:, 2].min()) + 0.03
    depth = np.full((480, 640), wall, np.float32)
    config = HandFitConfig(iterations=60, w_depth=0.0, w_sdf=0.0, w_joints=0.0, w_coverage=0.0)
    fit = fit_open_hand(network, state, depth, K, config)
    assert fit.losses["free_space"] < 0.2 * float(
        ((wall - 0.004 - vertices[:, 2]).clamp(0, 0.02) ** 2).mean()
    )


def test_landmarks_pull_the_joints_onto_the_detected_2d_positions():
    from c2f_core.geometry.camera import project
    from c2f_core.recon.hand_fit import Landmarks

    vertices, joints = true_hand()
    ref = vertices.mean(0)
    network = StandInNetwork(vertices, ref)
    state = encoded(vertices, joints, ref)
    depth = np.zeros((480, 640), np.float32)
    pixels, _ = project(joints.numpy().astype(np.float64), K)
    # The lifted joints are off (as depth-lifted landmarks are); the 2D landmarks are right.
    lifted = joints.numpy() + np.array([0.015, -0.01, 0.02], np.float32)
    config = HandFitConfig(iterations=60, w_depth=0.0, w_sdf=0.0, w_coverage=0.0)

    def reprojection_px(fit) -> float:
        uv, _ = project(fit.joints, K)
        return float(np.linalg.norm(uv - pixels, axis=1).mean())

    with_2d = fit_open_hand(
        network, state, depth, K, config, landmarks=Landmarks(pixels, np.ones(21), lifted)
    )
    ignored = Landmarks(pixels, np.zeros(21), lifted)  # zero confidence: the 2D term has no weight
    without_2d = fit_open_hand(network, state, depth, K, config, landmarks=ignored)
    assert reprojection_px(without_2d) > 10.0  # the lifted joints' own offset, seen in the image
    assert reprojection_px(with_2d) < 0.3 * reprojection_px(without_2d)
