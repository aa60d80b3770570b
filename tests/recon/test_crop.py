import numpy as np
import pytest

from c2f_core.data.crop import square_box, tight_box
from c2f_core.errors import C2FError
from c2f_core.geometry.camera import project
from c2f_core.recon.crop import check_box_in_image, detect_box, parse_bbox

K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])


def scene(hand_centre=(0.03, -0.02, 0.5), distractor=(-0.12, 0.05, 0.62)):
    """A table plane seen from above-front, a skin-coloured sphere (the hand) and a grey sphere on the table."""
    h, w = 240, 320
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    # plane y = 0.1 + 0.3 (z - 0.5)... tilted table: n·p + d = 0
    n = np.array([0.0, -1.0, 0.3])
    n /= np.linalg.norm(n)
    d = 0.12
    with np.errstate(divide="ignore"):
        t_plane = -d / (rays @ n)
    depth = np.where(t_plane > 0, t_plane, np.inf)
    color = np.full((h, w, 3), (90, 110, 140), np.uint8)  # bluish table
    for centre, radius, rgb in ((hand_centre, 0.05, (224, 172, 140)), (distractor, 0.04, (128, 128, 128))):
        c = np.asarray(centre)
        b = rays @ c
        disc = b**2 - (rays**2).sum(-1) * (c @ c - radius**2)
        t = (b - np.sqrt(np.clip(disc, 0, None))) / (rays**2).sum(-1)
        hit = (disc > 0) & (t < depth)
        depth[hit] = t[hit]
        color[hit] = rgb
    depth[~np.isfinite(depth) | (depth > 3.0)] = 0.0
    return color, depth.astype(np.float32)


def test_detector_finds_the_skin_region_not_the_distractor():
    color, depth = scene()
    box = detect_box(color, depth, K)
    (u, v), _ = project(np.array([0.03, -0.02, 0.5]), K)
    assert box[0] < u < box[2] and box[1] < v < box[3]
    (du, dv), _ = project(np.array([-0.12, 0.05, 0.62]), K)
    assert not (box[0] < du < box[2] and box[1] < dv < box[3])
    radius_px = 0.05 * 300 / 0.5
    assert box[2] - box[0] < 3 * radius_px  # tight, not the whole table


def test_detector_fails_clearly_without_depth():
    with pytest.raises(C2FError, match="no valid depth"):
        detect_box(np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40), np.float32), K)


def test_bbox_parsing_and_checks():
    assert parse_bbox("1,2,30,40") == (1, 2, 30, 40)
    with pytest.raises(C2FError, match="four numbers"):
        parse_bbox("1,2,3")
    with pytest.raises(C2FError, match="x1 must exceed x0"):
        parse_bbox("10,2,3,40")
    with pytest.raises(C2FError, match="outside the 640x480 image"):
        check_box_in_image((700, 10, 800, 100), 640, 480)
    assert check_box_in_image((-5, 10, 100, 500), 640, 480) == (0, 10, 100, 480)


def test_square_and_point_boxes():
    assert square_box((0, 0, 10, 20), scale=1.0) == (-5, 0, 15, 20)
    points = np.array([[0.0, 0.0, 1.0], [0.1, 0.05, 1.0]])
    box = tight_box(points, K)
    assert box == pytest.approx((160, 120, 191, 136))


def test_tracking_box_is_the_previous_meshes_box_grown_clipped_squared_and_scaled():
    from c2f_core.io.frames import RGBDFrame
    from c2f_core.recon.extract import Mesh
    from c2f_core.recon.runner import TRACK_MARGIN_PX, FrameResult, ReconstructionSettings, find_box

    frame = RGBDFrame(0, np.zeros((240, 320, 3), np.uint8), np.ones((240, 320), np.float32), K)
    settings = ReconstructionSettings(box_scale=1.25)

    def previous(points):
        mesh = Mesh(np.asarray(points, np.float32), np.array([[0, 1, 2]]))
        return FrameResult(mesh, Mesh.empty(), np.zeros((21, 3)), np.zeros(3), (0, 0, 1, 1), 0)

    # Projections span u 160..190, v 120..135: the pixel box (160, 120, 191, 136) grown by the margin.
    points = [[0.0, 0.0, 1.0], [0.1, 0.05, 1.0], [0.05, 0.0, 1.0]]
    box = find_box(frame, settings, None, previous(points))
    m = TRACK_MARGIN_PX
    assert box == pytest.approx(square_box((160 - m, 120 - m, 191 + m, 136 + m), scale=1.25))
    # Near the left edge the grown box is clipped to the image before it is squared.
    points = [[-0.52, 0.0, 1.0], [-0.45, 0.05, 1.0], [-0.5, 0.0, 1.0]]  # u from 4 to 25
    box = find_box(frame, settings, None, previous(points))
    assert box == pytest.approx(square_box((0, 120 - m, 26 + m, 136 + m), scale=1.25))


def test_detected_and_user_boxes_use_their_own_scales(monkeypatch):
    from c2f_core.io.frames import RGBDFrame
    from c2f_core.recon import runner

    frame = RGBDFrame(0, np.zeros((240, 320, 3), np.uint8), np.ones((240, 320), np.float32), K)
    monkeypatch.setattr(runner, "detect_box", lambda color, depth, K: (100.0, 80.0, 180.0, 160.0))
    settings = runner.ReconstructionSettings(box_scale=1.25, detector_box_scale=1.05)
    assert runner.find_box(frame, settings, None, None) == pytest.approx(square_box((100, 80, 180, 160), 1.05))
    user = runner.find_box(frame, settings, (100.0, 80.0, 180.0, 160.0), None)
    assert user == pytest.approx(square_box((100, 80, 180, 160), 1.25))
