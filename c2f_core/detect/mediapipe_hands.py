"""MediaPipe Hands as a `HandDetector`: palm detection and 21 landmarks, trained on real images.

The weights ship inside the `mediapipe` 0.10.21 wheel (`palm_detection_*.tflite`,
`hand_landmark_*.tflite`), so nothing is downloaded. That wheel declares dependencies it does not
need for Hands and that replace our OpenCV; the project's install step (`make venv`, README)
installs it without them. MediaPipe's handedness assumes a mirrored (selfie) image: on an
ordinary camera image its "Left" is a right hand, which `side` here corrects.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

import numpy as np

from c2f_core.detect.base import HandDetection, HandSide
from c2f_core.errors import C2FError

MEDIAPIPE_VERSION = "0.10.21"
"""The last MediaPipe release whose wheel carries the Hands models."""
INSTALL_HINT = f"pip install --no-deps mediapipe=={MEDIAPIPE_VERSION} absl-py attrs flatbuffers 'protobuf<5'"


NATIVE_NOISE = re.compile(
    rb"^(INFO: Created TensorFlow Lite|WARNING: All log messages before absl::InitializeLog|[IW]\d{4} )"
)
"""Lines MediaPipe's C++ side writes to stderr on its own threads (TFLite and absl notices)."""
_relay: threading.Thread | None = None


def _filter_native_stderr() -> None:
    """Route this process's stderr through a thread that drops MediaPipe's native notices.

    They are written by the graph's own threads, at times Python cannot bracket, so stderr (fd 2)
    becomes a pipe that a thread copies to the real stderr, line by line, leaving those lines out.
    At exit the real stderr is put back and the pipe drained, so no message of ours is lost.
    """
    global _relay
    if _relay is not None:
        return
    try:
        real = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        return
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)

    def copy() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as source:
            pending = b""
            while chunk := source.read(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not NATIVE_NOISE.match(line))
                if kept:
                    os.write(real, kept)
            if pending and not NATIVE_NOISE.match(pending):
                os.write(real, pending)

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end: the copier drains it and stops
        _relay.join(timeout=2.0)

    _relay = threading.Thread(target=copy, name="c2f-stderr-filter", daemon=True)
    _relay.start()
    atexit.register(restore)


def mediapipe_available() -> bool:
    """Whether `mediapipe` with its Hands solution can be imported."""
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        return False
    return True


class MediaPipeHands:
    """MediaPipe Hands on single images (no tracking between calls, so results do not depend on order)."""

    name = "mediapipe-hands"

    def __init__(self, max_hands: int = 2, min_score: float = 0.5, model_complexity: int = 1):
        """Load the models from the installed wheel.

        Args:
            max_hands: most hands reported per image.
            min_score: palm detections below this confidence are dropped.
            model_complexity: 0 = the lite landmark model, 1 = the full one.

        Raises:
            C2FError: when mediapipe is not installed (with the command that installs it).
        """
        try:
            import mediapipe as mp
        except ImportError as exc:
            raise C2FError(
                f"the hand detector needs mediapipe ({exc}); install it with: {INSTALL_HINT}"
            ) from None
        _filter_native_stderr()
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=True,
            max_num_hands=max_hands,
            min_detection_confidence=min_score,
            model_complexity=model_complexity,
        )

    def detect(self, color: np.ndarray) -> list[HandDetection]:
        """All hands in an (H, W, 3) uint8 RGB image, most confident first."""
        if color.ndim != 3 or color.shape[2] != 3 or color.dtype != np.uint8:
            raise ValueError(f"color must be (H, W, 3) uint8, got {color.shape} {color.dtype}")
        height, width = color.shape[:2]
        result = self._hands.process(np.ascontiguousarray(color))
        if not result.multi_hand_landmarks:
            return []
        found = []
        for landmarks, handedness in zip(result.multi_hand_landmarks, result.multi_handedness):
            points = np.array([(p.x * width, p.y * height, p.z * width) for p in landmarks.landmark])
            label = handedness.classification[0]
            # MediaPipe names the hand as it would look in a mirror.
            side: HandSide = "right" if label.label == "Left" else "left"
            score = float(label.score)
            found.append(
                HandDetection(
                    landmarks_px=points[:, :2],
                    confidence=np.full(21, score),
                    relative_depth=points[:, 2] - points[0, 2],
                    side=side,
                    score=score,
                    detector=self.name,
                )
            )
        return sorted(found, key=lambda d: -d.score)

    def close(self) -> None:
        """Free the models."""
        self._hands.close()
