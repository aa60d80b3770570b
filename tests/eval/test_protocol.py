import json

import numpy as np
import trimesh

from c2f_core.cli.main import main
from c2f_core.eval.protocol import evaluate_folder, evaluate_frame, format_table
from c2f_core.io.recon_output import write_frame_result, write_reconstruction_summary
from c2f_core.io.take import Take, TakeWriter
from tests.conftest import TINY_INTRINSICS, tiny_frame


def _gt(shift=(0.0, 0.0, 0.0)):
    hand = trimesh.creation.icosphere(subdivisions=3, radius=0.04)
    hand.apply_translation([0.0, 0.0, 0.5])
    obj = trimesh.creation.box(extents=(0.05, 0.05, 0.08))
    obj.apply_translation([0.06, 0.0, 0.5])
    return {
        "hand_verts": hand.vertices.astype(np.float32),
        "hand_faces": hand.faces,
        "object_verts": obj.vertices.astype(np.float32),
        "object_faces": obj.faces,
    }


def test_aligned_protocol_undoes_scale_and_shift_raw_does_not():
    gt = _gt()
    scale, shift = 1.1, np.array([0.01, -0.005, 0.02])
    pred = (
        (gt["hand_verts"] - [0, 0, 0.5]) * scale + [0, 0, 0.5] + shift,
        gt["hand_faces"],
        (gt["object_verts"] - [0, 0, 0.5]) * scale + [0, 0, 0.5] + shift,
        gt["object_faces"],
    )
    raw = evaluate_frame(pred, gt, "raw", num_samples=5000)
    aligned = evaluate_frame(pred, gt, "aligned", num_samples=5000)
    assert raw.hand.chamfer_cm2 > 1.0
    assert aligned.hand.chamfer_cm2 < 0.1 and aligned.hand.fscores[0.5] > 0.95
    assert aligned.object.chamfer_cm2 < 0.15
    assert abs(aligned.alignment["scale"] - 1 / scale) < 0.01
    # the hand sphere and the box overlap: predicted contact is detected
    assert aligned.contact.in_contact and aligned.contact.penetration_depth_cm > 0


def test_folder_evaluation_counts_missing_frames_and_cli(tmp_path, capsys):
    take_dir = tmp_path / "take"
    with TakeWriter(take_dir, TINY_INTRINSICS) as writer:
        for i in range(3):
            color, depth = tiny_frame(i)
            writer.write(i, color, depth, gt=_gt())
    out = tmp_path / "recon"
    gt = _gt()
    for i in (0, 1):
        write_frame_result(
            out, i, (gt["hand_verts"], gt["hand_faces"]), (gt["object_verts"], gt["object_faces"])
        )
    write_reconstruction_summary(
        out, name="take", intrinsics=TINY_INTRINSICS, frames=[0, 1], failed={2: "no hand"}
    )
    report = evaluate_folder(str(out), str(take_dir), ("raw",), num_samples=3000, quiet=True)
    raw = report["protocols"]["raw"]
    assert report["missing"] == {"2": "no hand"}
    assert raw["hand"]["count"] == 2 and raw["hand"]["skipped"] == 1
    assert raw["hand"]["chamfer_cm2_mean"] < 0.1 and raw["object"]["fscore@1cm"] > 0.99
    assert "| raw |" in format_table(report)
    code = main(
        [
            "evaluate",
            str(out),
            str(take_dir),
            "--protocol",
            "both",
            "--samples",
            "2000",
            "--quiet",
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "| aligned |" in printed and "| raw |" in printed
    saved = json.loads((tmp_path / "r.json").read_text())
    assert set(saved["protocols"]) == {"aligned", "raw"}
    assert Take.open(take_dir).frame_ids == [0, 1, 2]
    code = main(
        [
            "evaluate",
            str(out),
            str(take_dir),
            "--frames",
            "0:1",
            "--samples",
            "2000",
            "-q",
            "--json",
            str(tmp_path / "sub.json"),
        ]
    )
    subset = json.loads((tmp_path / "sub.json").read_text())
    assert code == 0 and subset["frames"] == 2 and subset["missing"] == {}


def test_evaluate_without_ground_truth_is_a_clear_error(tmp_path, capsys, make_take):
    take_dir = make_take(frame_ids=(0,))
    out = tmp_path / "recon"
    gt = _gt()
    write_frame_result(out, 0, (gt["hand_verts"], gt["hand_faces"]), (gt["object_verts"], gt["object_faces"]))
    write_reconstruction_summary(out, name="take", intrinsics=TINY_INTRINSICS, frames=[0])
    code = main(["evaluate", str(out), str(take_dir), "--quiet"])
    assert code == 2 and "has no ground truth" in capsys.readouterr().err


def test_folder_evaluation_samples_each_gt_mesh_once_per_frame(tmp_path, monkeypatch):
    """Both protocols share a frame's GT samples: per frame, 2 GT meshes + 2 x 2 predictions + 2 for ICP."""
    from c2f_core.eval import align, metrics

    take_dir = tmp_path / "take"
    with TakeWriter(take_dir, TINY_INTRINSICS) as writer:
        color, depth = tiny_frame(0)
        writer.write(0, color, depth, gt=_gt())
    out = tmp_path / "recon"
    gt = _gt()
    write_frame_result(out, 0, (gt["hand_verts"], gt["hand_faces"]), (gt["object_verts"], gt["object_faces"]))
    write_reconstruction_summary(out, name="take", intrinsics=TINY_INTRINSICS, frames=[0], failed={})
    calls = []
    for module in (metrics, align):
        original = module.sample_surface

        def counting(vertices, *args, _original=original, **kwargs):
            calls.append(len(vertices))
            return _original(vertices, *args, **kwargs)

        monkeypatch.setattr(module, "sample_surface", counting)
    evaluate_folder(str(out), str(take_dir), num_samples=500, quiet=True)
    assert len(calls) == 8


def test_workers_are_one_per_core_with_enough_frames_each(monkeypatch):
    from c2f_core.eval import protocol

    monkeypatch.setattr(protocol, "usable_cores", lambda: 2)
    assert [protocol.default_workers(n) for n in (0, 1, 7, 8, 100)] == [1, 1, 1, 2, 2]
    monkeypatch.setattr(protocol, "usable_cores", lambda: 16)
    assert protocol.default_workers(20) == 5


def test_spawned_workers_get_their_share_of_threads_and_the_setting_comes_back(monkeypatch):
    import os

    from c2f_core.eval.protocol import _threads_of_spawned_workers

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with _threads_of_spawned_workers(1):
        assert os.environ["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in os.environ
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with _threads_of_spawned_workers(2):
        assert os.environ["OMP_NUM_THREADS"] == "2"
    assert os.environ["OMP_NUM_THREADS"] == "3"
