"""MediaPipe Hands behind our detector interface: its models load from the wheel, its noise stays off stderr."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mediapipe")

SCRIPT = """
import sys
import numpy as np
from c2f_core.detect.mediapipe_hands import MediaPipeHands
detector = MediaPipeHands()
print(len(detector.detect(np.zeros((120, 160, 3), np.uint8))))
print("our own message", file=sys.stderr)
sys.exit(3)
"""


def test_native_notices_are_dropped_and_our_stderr_survives_exit():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 3
    assert proc.stdout.strip() == "0"  # a black image holds no hand
    assert proc.stderr == "our own message\n"  # no TFLite / absl lines, nothing lost at exit


def test_detections_follow_the_interface():
    from c2f_core.detect.mediapipe_hands import MediaPipeHands

    detector = MediaPipeHands()
    assert detector.detect(np.full((96, 128, 3), 127, np.uint8)) == []
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((96, 128, 3), np.float32))
    detector.close()


def test_finds_a_synthetic_right_hand_near_its_true_joints(tmp_path):
    import dataclasses

    from c2f_core.detect.mediapipe_hands import MediaPipeHands
    from c2f_core.geometry.camera import project
    from c2f_core.io.take import Take
    from c2f_core.synth.generate import SynthConfig, generate_take
    from c2f_core.synth.sensor import SensorConfig

    config = dataclasses.replace(SynthConfig(), sdf_samples_per_mesh=100, sensor=SensorConfig(enabled=False))
    generate_take(tmp_path / "take", 2, seed=3, size=(480, 360), quiet=True, config=config)
    take = Take.open(tmp_path / "take")
    detector = MediaPipeHands()
    errors = []
    for frame_id in take.frame_ids:
        frame = take.read_frame(frame_id)
        found = detector.detect(frame.color)
        assert all(d.side == "right" for d in found)  # our renders are right hands, not mirrored
        if found:
            uv, _ = project(frame.gt["hand_joints"].reshape(21, 3), frame.K)
            errors.append(float(np.linalg.norm(uv - found[0].landmarks_px, axis=1).mean()))
    assert errors and min(errors) < 10.0, errors


def test_windows_find_a_hand_too_small_for_the_whole_image(tmp_path):
    import dataclasses

    from c2f_core.detect.mediapipe_hands import MediaPipeHands
    from c2f_core.detect.windows import WindowedDetector
    from c2f_core.geometry.camera import project
    from c2f_core.io.take import Take
    from c2f_core.synth.generate import SynthConfig, generate_take
    from c2f_core.synth.sensor import SensorConfig

    config = dataclasses.replace(SynthConfig(), sdf_samples_per_mesh=100, sensor=SensorConfig(enabled=False))
    generate_take(tmp_path / "take", 2, seed=3, size=(480, 360), quiet=True, config=config)
    frame = Take.open(tmp_path / "take").read_frame(1)
    # The frame pasted into a canvas twice its size: the hand is half as large in the whole image.
    height, width = frame.color.shape[:2]
    canvas = np.full((2 * height, 2 * width, 3), frame.color.reshape(-1, 3).mean(0).astype(np.uint8))
    y0, x0 = height // 2 + height // 3, width // 2 + width // 5
    canvas[y0 : y0 + height, x0 : x0 + width] = frame.color
    detector = MediaPipeHands()
    assert detector.detect(frame.color) and detector.detect(canvas) == []
    found = WindowedDetector(detector).detect(canvas)
    assert len(found) == 1 and found[0].detector == "mediapipe-hands (window)"
    uv, _ = project(frame.gt["hand_joints"].reshape(21, 3), frame.K)
    assert np.linalg.norm(found[0].landmarks_px - (uv + [x0, y0]), axis=1).mean() < 10.0
