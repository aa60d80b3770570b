"""Detection in the pipeline, with the bundled model on small synthetic takes and a scripted detector.

A left hand is the mirror image of a right hand: reconstructing a mirrored take must give the
mirrored meshes, and so the same scores against the mirrored ground truth. In a sequence the
detector runs on every frame, tracking fills the frames where it finds nothing, and a jump of the
hand is reported.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from c2f_core.detect.base import HandDetection
from c2f_core.eval.protocol import evaluate_frame
from c2f_core.geometry.camera import project
from c2f_core.geometry.mirror import mirror_faces, mirror_image, mirror_intrinsics, mirror_points
from c2f_core.io.intrinsics import Intrinsics
from c2f_core.io.recon_output import read_frame_info, read_frame_meshes, read_reconstruction
from c2f_core.io.take import Take, TakeWriter, read_gt
from c2f_core.recon.locate import box_jump
from c2f_core.recon.runner import ReconstructionSettings
from c2f_core.recon.take_run import reconstruct_take
from c2f_core.synth.generate import SynthConfig, generate_take
from c2f_core.synth.sensor import SensorConfig
from c2f_core.train.checkpoint import load_model

BUNDLED = Path(__file__).resolve().parents[2] / "c2f_core" / "assets" / "c2f_synthetic.pt"
CLEAN = dataclasses.replace(SynthConfig(), sdf_samples_per_mesh=300, sensor=SensorConfig(enabled=False))


class ScriptedDetector:
    """Answers with the ground truth's joints projected (as a perfect detector would), or as told;
    it knows each frame by its colour image, and counts the calls per frame."""

    name = "scripted"

    def __init__(
        self,
        take: Take,
        side: str,
        shifts: dict[int, float | None] | None = None,
        odd: dict[int, tuple[str, float]] | None = None,
    ):
        """`shifts`: frame -> pixels the landmarks move toward the image's centre (None: no hand);
        `odd`: frame -> (side, score) where the detector gets the side wrong."""
        self.take, self.side, self.shifts, self.odd = take, side, shifts or {}, odd or {}
        self.frames = {take.read_frame(i, with_gt=False).color.tobytes(): i for i in take.frame_ids}
        self.asked: list[int] = []

    @property
    def calls(self) -> int:
        return len(self.asked)

    def detect(self, color: np.ndarray) -> list[HandDetection]:
        frame_id = self.frames[color.tobytes()]
        self.asked.append(frame_id)
        if frame_id in self.shifts and self.shifts[frame_id] is None:
            return []
        joints = read_gt(self.take.paths(frame_id).gt)["hand_joints"].reshape(21, 3)
        uv, _ = project(joints, self.take.intrinsics.K)
        shift = self.shifts.get(frame_id) or 0.0
        uv[:, 0] += shift if uv[:, 0].mean() < self.take.intrinsics.width / 2 else -shift  # toward the centre
        relative = (joints[:, 2] - joints[0, 2]) * self.take.intrinsics.fx / joints[0, 2]
        side, score = self.odd.get(frame_id, (self.side, 0.9))
        return [HandDetection(uv, np.full(21, 0.9), relative, side, score, self.name)]


def mirror_take(source: Path, target: Path) -> None:
    """Write the left-right mirror image of a take with its ground truth (a right hand becomes a left one)."""
    take = Take.open(source)
    intr = take.intrinsics
    K = mirror_intrinsics(intr.K, intr.width)
    mirrored = Intrinsics(**{**intr.to_dict(), "cx": float(K[0, 2])})
    with TakeWriter(target, mirrored) as writer:
        for frame_id in take.frame_ids:
            frame = take.read_frame(frame_id)
            gt = dict(frame.gt)
            for key in ("hand_verts", "object_verts", "hand_joints", "object_center"):
                gt[key] = mirror_points(np.asarray(gt[key]))
            for key in ("hand_faces", "object_faces"):
                gt[key] = mirror_faces(np.asarray(gt[key]))
            gt["mask"] = mirror_image(gt["mask"])
            gt["K"] = K
            writer.write(frame_id, mirror_image(frame.color), mirror_image(frame.depth_m), gt)


@pytest.fixture(scope="module")
def model():
    return load_model(BUNDLED, "cpu")


@pytest.fixture(scope="module")
def right_take(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("locate") / "right"
    generate_take(root, 1, seed=5, size=(320, 240), quiet=True, config=CLEAN)
    return root


def scores(recon_dir: Path, take_dir: Path) -> dict[str, float]:
    recon, take = read_reconstruction(recon_dir), Take.open(take_dir)
    frame = take.frame_ids[0]
    m = read_frame_meshes(recon, frame)
    ev = evaluate_frame(
        (m.hand_vertices, m.hand_faces, m.object_vertices, m.object_faces), take.read_frame(frame).gt, "raw"
    )
    return {"hand_cd": ev.hand.chamfer_cm2, "object_cd": ev.object.chamfer_cm2, **ev.hand.fscores}


def test_mirrored_left_hand_scores_as_the_right_hand(model, right_take, tmp_path):
    network, config = model
    left_take = tmp_path / "left"
    mirror_take(right_take, left_take)
    settings = ReconstructionSettings(resolution=64)
    outputs = {}
    for name, root, side in (("right", right_take, "right"), ("left", left_take, "left")):
        take = Take.open(root)
        outputs[name] = tmp_path / f"out_{name}"
        detector = ScriptedDetector(take, side)
        reconstruct_take(take, network, config, outputs[name], settings, detector=detector, write_usd=False)
    info = read_frame_info(read_reconstruction(outputs["left"]), 0)
    assert info.timings["total"] > 0
    left_json = (outputs["left"] / "000000.json").read_text()
    assert '"hand_side": "left"' in left_json and '"crop_source": "landmarks"' in left_json
    # The left hand's meshes are the right hand's mirrored...
    mesh_r = read_frame_meshes(read_reconstruction(outputs["right"]), 0)
    mesh_l = read_frame_meshes(read_reconstruction(outputs["left"]), 0)
    np.testing.assert_allclose(mesh_l.hand_vertices, mirror_points(mesh_r.hand_vertices), atol=1e-5)
    np.testing.assert_array_equal(mesh_l.hand_faces, mirror_faces(mesh_r.hand_faces))
    np.testing.assert_allclose(mesh_l.object_vertices, mirror_points(mesh_r.object_vertices), atol=1e-5)
    # ...so they score the same against the mirrored truth (up to the metrics' random surface samples).
    right, left = scores(outputs["right"], right_take), scores(outputs["left"], left_take)
    assert right["hand_cd"] < 50  # a real reconstruction, not an empty one
    for key in right:
        assert left[key] == pytest.approx(right[key], rel=0.01, abs=0.01), key
    # The left hand's joints are the right hand's mirrored.
    joints_r = read_frame_info(read_reconstruction(outputs["right"]), 0).joints
    joints_l = read_frame_info(read_reconstruction(outputs["left"]), 0).joints
    np.testing.assert_allclose(joints_l, mirror_points(joints_r), atol=1e-5)


def test_forced_side_overrides_the_detector(model, right_take, tmp_path):
    network, config = model
    take = Take.open(right_take)
    settings = ReconstructionSettings(resolution=32)
    settings.locate.hand_side = "left"
    reconstruct_take(
        take,
        network,
        config,
        tmp_path / "out",
        settings,
        detector=ScriptedDetector(take, "right"),
        write_usd=False,
    )
    text = (tmp_path / "out" / "000000.json").read_text()
    assert '"hand_side": "left"' in text and "reconstructing it as left as asked" in text


def test_sequence_tracks_where_the_detector_misses_and_reports_jumps(model, tmp_path):
    network, config = model
    root = tmp_path / "sequence"
    generate_take(root, 4, seed=9, sequence=True, size=(320, 240), quiet=True, config=CLEAN)
    take = Take.open(root)
    events = []
    detector = ScriptedDetector(take, "right", shifts={1: None, 3: 100.0})
    reconstruct_take(
        take, network, config, tmp_path / "out", ReconstructionSettings(resolution=32),
        detector=detector, write_usd=False, on_event=events.append,
    )  # fmt: skip
    # The side was voted over the take's frames (all four), then the detector ran on every frame.
    assert detector.asked == [0, 1, 2, 3, 0, 1, 2, 3]
    assert any(e["event"] == "hand_side" and "the take's hand is right" in e["message"] for e in events)
    second = (tmp_path / "out" / "000001.json").read_text()
    assert '"crop_source": "tracked"' in second and "scripted found no hand" in second
    jumps = [e for e in events if e["event"] == "warning" and "jumped" in e["message"]]
    assert [e["frame"] for e in jumps] == [3]


def test_frames_before_the_first_detection_are_redone_backwards_from_it(model, tmp_path):
    network, config = model
    root = tmp_path / "sequence"
    generate_take(root, 4, seed=9, sequence=True, size=(320, 240), quiet=True, config=CLEAN)
    take = Take.open(root)
    settings = ReconstructionSettings(resolution=32)
    # The hand enters the picture: the detector finds it from frame 2 on.
    events: list[dict] = []
    detector = ScriptedDetector(take, "right", shifts={0: None, 1: None})
    out = tmp_path / "out"
    summary = reconstruct_take(
        take, network, config, out, settings, detector=detector, write_usd=False, on_event=events.append
    )
    assert detector.asked[4:] == [0, 1, 2, 3, 1, 0] and summary["lead_in"] == [1, 0]  # after the vote
    assert [e["frames"] for e in events if e["event"] == "lead_in"] == [[1, 0]]
    for frame_id in (0, 1):
        assert '"crop_source": "tracked"' in (out / f"00000{frame_id}.json").read_text()
    assert list(read_reconstruction(out).frames) == [0, 1, 2, 3]
    # A rerun skips every complete frame: nothing is redone.
    again = ScriptedDetector(take, "right")
    reconstruct_take(take, network, config, out, settings, detector=again, write_usd=False)
    assert again.calls == 0
    # Independent frames are never tracked: the lead-in keeps the depth-and-skin crops.
    settings.track = "off"
    independent = ScriptedDetector(take, "right", shifts={0: None, 1: None})
    reconstruct_take(take, network, config, tmp_path / "off", settings, detector=independent, write_usd=False)
    assert independent.asked[4:] == [0, 1, 2, 3]  # after the vote (hands in 2 of 4 frames: no side)
    assert '"crop_source": "depth-skin"' in (tmp_path / "off" / "000000.json").read_text()


def test_the_take_votes_one_hand_side_for_its_frames(model, tmp_path):
    network, config = model
    root = tmp_path / "take"
    generate_take(root, 4, seed=9, size=(320, 240), quiet=True, config=CLEAN)
    take = Take.open(root)
    settings = ReconstructionSettings(resolution=32)
    # A blurred frame the detector calls left, less sure of it than of the others.
    detector = ScriptedDetector(take, "right", odd={1: ("left", 0.5)})
    summary = reconstruct_take(
        take, network, config, tmp_path / "out", settings, detector=detector, write_usd=False
    )
    assert summary["hand_side_vote"].startswith("the take's hand is right")
    odd = (tmp_path / "out" / "000001.json").read_text()
    assert (
        '"hand_side": "right"' in odd and "reconstructing it as right the side the take's frames voted" in odd
    )
    # Without a clear majority each frame keeps the detector's side.
    detector = ScriptedDetector(take, "right", odd={1: ("left", 0.9), 3: ("left", 0.9)})
    summary = reconstruct_take(
        take, network, config, tmp_path / "split", settings, detector=detector, write_usd=False
    )
    assert summary["hand_side_vote"].startswith("no side for the whole take")
    assert '"hand_side": "left"' in (tmp_path / "split" / "000001.json").read_text()


def test_box_jump_is_in_hand_sizes():
    assert box_jump((0, 0, 10, 10), (15, 0, 25, 10)) == pytest.approx(1.5)
    assert box_jump(None, (0, 0, 1, 1)) is None
