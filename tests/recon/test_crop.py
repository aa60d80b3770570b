import numpy as np
import pytest

from c2f_core.data.crop import square_box, tight_box
from c2f_core.errors import C2FError
from c2f_core.recon.crop import check_box_in_image, parse_bbox

K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])


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
    from c2f_core.recon.locate import TRACK_MARGIN_PX, LocateSettings, locate_hand

    frame = RGBDFrame(0, np.zeros((240, 320, 3), np.uint8), np.ones((240, 320), np.float32), K)
    settings = LocateSettings(box_scale=1.25)

    # Projections span u 160..190, v 120..135: the pixel box (160, 120, 191, 136) grown by the margin.
    points = np.array([[0.0, 0.0, 1.0], [0.1, 0.05, 1.0], [0.05, 0.0, 1.0]])
    _, crop = locate_hand(frame, settings, None, previous_points=points)
    m = TRACK_MARGIN_PX
    assert crop.source == "tracked"
    assert crop.box == pytest.approx(square_box((160 - m, 120 - m, 191 + m, 136 + m), scale=1.25))
    # Near the left edge the grown box is clipped to the image before it is squared.
    points = np.array([[-0.52, 0.0, 1.0], [-0.45, 0.05, 1.0], [-0.5, 0.0, 1.0]])  # u from 4 to 25
    _, crop = locate_hand(frame, settings, None, previous_points=points)
    assert crop.box == pytest.approx(square_box((0, 120 - m, 26 + m, 136 + m), scale=1.25))


def test_detected_and_user_boxes_use_their_own_scales(monkeypatch):
    from c2f_core.io.frames import RGBDFrame
    from c2f_core.recon import locate

    frame = RGBDFrame(0, np.zeros((240, 320, 3), np.uint8), np.ones((240, 320), np.float32), K)
    monkeypatch.setattr(locate, "detect_box", lambda color, depth, K: (100.0, 80.0, 180.0, 160.0))
    settings = locate.LocateSettings(box_scale=1.25, detector_box_scale=1.05)
    _, crop = locate.locate_hand(frame, settings, None)
    assert crop.source == "depth-skin" and crop.box == pytest.approx(square_box((100, 80, 180, 160), 1.05))
    _, crop = locate.locate_hand(frame, settings, None, user_box=(100.0, 80.0, 180.0, 160.0))
    assert crop.source == "user" and crop.box == pytest.approx(square_box((100, 80, 180, 160), 1.25))
