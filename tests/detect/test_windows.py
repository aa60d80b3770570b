import numpy as np
import pytest

from c2f_core.detect.base import HandDetection
from c2f_core.detect.windows import WindowedDetector, same_hand, window_boxes


class SquareFinder:
    """Finds white squares as "hands", but only those at least `min_share` of the image's width wide."""

    name = "squares"

    def __init__(self, min_share: float):
        self.min_share = min_share
        self.calls: list[tuple[int, int]] = []

    def detect(self, color: np.ndarray) -> list[HandDetection]:
        self.calls.append(color.shape[:2])
        rows, cols = np.nonzero(color[..., 0] == 255)
        if len(rows) == 0 or (cols.max() - cols.min() + 1) < self.min_share * color.shape[1]:
            return []
        # 21 landmarks spread over the square, as a hand's would be over the hand.
        u = np.linspace(cols.min(), cols.max(), 21)
        v = np.linspace(rows.min(), rows.max(), 21)
        score = 0.5 + 0.4 * len(rows) / color.shape[0] / color.shape[1]  # a hand cut by the edge scores less
        return [HandDetection(np.stack([u, v], 1), np.ones(21), None, "right", score, self.name)]


def image_with_square(x0: int, y0: int, side: int, shape=(480, 640)) -> np.ndarray:
    image = np.zeros((*shape, 3), np.uint8)
    image[y0 : y0 + side, x0 : x0 + side] = 255
    return image


def test_windows_cover_the_image_with_overlap_and_touch_its_edges():
    boxes = window_boxes(480, 640)
    assert boxes == [
        (0, 0, 320, 320), (160, 0, 480, 320), (320, 0, 640, 320),
        (0, 160, 320, 480), (160, 160, 480, 480), (320, 160, 640, 480),
    ]  # fmt: skip
    # Any square up to half a window's side lies whole inside some window.
    for x in range(0, 640 - 160, 37):
        for y in range(0, 480 - 160, 29):
            assert any(x0 <= x and x + 160 <= x1 and y0 <= y and y + 160 <= y1 for x0, y0, x1, y1 in boxes)
    assert window_boxes(100, 100, fraction=1.0) == [(0, 0, 100, 100)]
    with pytest.raises(ValueError, match="fraction"):
        window_boxes(480, 640, fraction=0.0)


def test_a_hand_too_small_for_the_whole_image_is_found_in_a_window_in_image_pixels():
    finder = SquareFinder(min_share=0.1)  # 64 px of 640, but 32 px of a 320-px window
    windowed = WindowedDetector(finder)
    found = windowed.detect(image_with_square(500, 300, 40))
    assert len(found) == 1  # the windows that saw it agree on one hand
    hand = found[0]
    np.testing.assert_allclose(hand.landmarks_px.min(0), [500, 300])
    np.testing.assert_allclose(hand.landmarks_px.max(0), [539, 339])
    assert hand.detector == "squares (window)"
    assert len(finder.calls) == 1 + len(window_boxes(480, 640))


def test_windows_are_searched_only_when_the_whole_image_shows_no_hand():
    finder = SquareFinder(min_share=0.1)
    found = WindowedDetector(finder).detect(image_with_square(100, 100, 80))
    assert [d.detector for d in found] == ["squares"] and finder.calls == [(480, 640)]
    # Nothing anywhere: nothing, after looking in every window.
    finder = SquareFinder(min_share=0.1)
    assert WindowedDetector(finder).detect(image_with_square(0, 0, 0)) == []
    assert len(finder.calls) == 1 + len(window_boxes(480, 640))


def test_detections_are_one_hand_when_either_centre_lies_in_the_other():
    def detection(u0: float, v0: float, side: float) -> HandDetection:
        grid = np.stack([np.linspace(u0, u0 + side, 21), np.linspace(v0, v0 + side, 21)], 1)
        return HandDetection(grid, np.ones(21), None, "right", 0.9, "x")

    assert same_hand(detection(0, 0, 40), detection(10, 10, 40))
    assert same_hand(detection(0, 0, 100), detection(40, 40, 10))
    assert not same_hand(detection(0, 0, 40), detection(50, 0, 40))


def test_a_hand_found_in_one_window_only_does_not_count_unless_asked():
    # In the image's corner only the corner window sees it.
    image = image_with_square(600, 440, 40)
    assert WindowedDetector(SquareFinder(min_share=0.1)).detect(image) == []
    found = WindowedDetector(SquareFinder(min_share=0.1), min_windows=1).detect(image)
    assert len(found) == 1 and found[0].detector == "squares (window)"
