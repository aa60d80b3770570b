"""Reported crashes that are now one-line errors with exit code 2, or one frame's error with exit code 1."""

import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import c2f_core.cli.info as info_module
from c2f_core.cli.main import main
from tests.cli.cli_run import one_error_line, run_cli
from tests.io.test_images import png_header_only
from tests.recon.test_reconstruct import reconstruct, sphere_network, tiny_setup

__all__ = ["sphere_network", "tiny_setup"]  # fixtures shared with tests/recon


def test_focal_length_too_big_for_a_float(capsys, make_take, tmp_path):
    root = make_take(frame_ids=(0,))
    camera = tmp_path / "camera.json"
    text = (root / "intrinsics.json").read_text()
    camera.write_text(text.replace('"fx": 60.0', '"fx": 1' + "0" * 400))
    code, _, err = run_cli(
        capsys,
        "info",
        "--color",
        root / "color/000000.png",
        "--depth",
        root / "depth/000000.png",
        "--intrinsics",
        camera,
    )
    assert code == 2
    assert f"{camera}: 'fx' must be a finite number, found a number too large" in one_error_line(err)


def test_decompression_bomb_fails_that_frame_only(capsys, make_take):
    root = make_take(frame_ids=(0, 1, 2))
    png_header_only(root / "color/000001.png", 20_000, 20_000)
    code, _, err = run_cli(capsys, "info", root, "--quiet")
    assert code == 1
    assert "1 of 3 frame(s) failed" in err and "over the limit of 100 megapixels" in err


def test_decompression_bomb_in_reconstruct_fails_that_frame_only(
    tiny_setup, sphere_network, capsys, tmp_path
):
    take = tmp_path / "take"
    take.mkdir()
    for part in ("color", "depth"):
        (take / part).mkdir()
        for source in (tiny_setup / "take" / part).iterdir():
            (take / part / source.name).write_bytes(source.read_bytes())
    (take / "intrinsics.json").write_text((tiny_setup / "take/intrinsics.json").read_text())
    png_header_only(take / "color/000001.png", 12_000, 9_000)
    out = tmp_path / "out"
    code = main(
        [str(a) for a in ("reconstruct", take, "--checkpoint", tiny_setup / "tiny.pt", "--out", out)]
        + ["--method", "dense", "--resolution", "32", "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "000001.png is 12000x9000, over the limit of 100 megapixels" in err
    assert json.loads((out / "reconstruction.json").read_text())["frames"] == [0, 2]


def test_evaluate_json_into_a_folder_is_refused_first(capsys, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "no_out", tmp_path / "no_take", "--json", folder)
    assert code == 2
    assert f"--json {folder} is a folder; give a file name" in one_error_line(err)


def test_resolution_is_bounded(capsys, make_take, tmp_path):
    code, _, err = run_cli(capsys, "reconstruct", make_take(), "--out", tmp_path / "o", "--resolution", 2048)
    assert code == 2
    assert "--resolution must be from 8 to 512" in one_error_line(err)
    assert not (tmp_path / "o").exists()


def test_info_every_frame_failed_is_an_error(capsys, make_take):
    root = make_take(frame_ids=(0, 1, 2))
    for i in (0, 1, 2):
        Image.fromarray(np.zeros((48, 64), np.uint16)).save(root / f"depth/{i:06d}.png")
    code, _, err = run_cli(capsys, "info", root, "--quiet")
    assert code == 2
    line = one_error_line(err)
    assert "every frame failed (3 of 3 frame(s)); first, frame 000000:" in line
    assert "000000.png has no valid pixels" in line


def test_reconstruct_every_frame_failed_writes_no_summary_and_keeps_the_old_one(
    tiny_setup, sphere_network, capsys, tmp_path
):
    fresh = tmp_path / "fresh"
    code, _, err = reconstruct(capsys, tiny_setup, fresh, "--bbox", "400,10,500,100", "--quiet")
    assert code == 2
    line = one_error_line(err)
    assert "every frame failed (3 of 3 frame(s)); first, frame 000000:" in line
    assert "lies outside the 320x240 image" in line
    assert not (fresh / "reconstruction.json").exists()

    done = tmp_path / "done"
    options = ("--frames", "0", "--method", "dense", "--resolution", "32", "--quiet")
    code, _, _ = reconstruct(capsys, tiny_setup, done, *options)
    assert code == 0
    before = (done / "reconstruction.json").read_bytes()
    code, _, err = reconstruct(capsys, tiny_setup, done, *options, "--overwrite", "--bbox", "400,10,500,100")
    assert code == 2 and "every frame failed (1 of 1 frame(s))" in one_error_line(err)
    assert (done / "reconstruction.json").read_bytes() == before


def test_unexpected_exception_is_one_line_with_the_traceback_in_a_log(
    capsys, make_take, tmp_path, monkeypatch
):
    def broken(args):
        raise ValueError("a bug\nsecond line")

    monkeypatch.setattr(info_module, "run", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, _, err = run_cli(capsys, "info", make_take())
    assert code == 2
    line = one_error_line(err)
    assert line.startswith("c2f: error: unexpected ValueError: a bug (please report this bug; traceback in ")
    log = line.rsplit("traceback in ", 1)[1].rstrip(")")
    assert log.startswith(str(tmp_path)) and "Traceback" in Path(log).read_text()


def test_bad_yaml_config_is_one_line(capsys, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  latent: [1, 2\ntrain:\n  steps: 3\n")
    code, _, err = run_cli(capsys, "train", "--config", config, "--out", tmp_path / "run")
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"c2f: error: config file {config} is not valid YAML: ")
    assert "at line 3, column 6" in line and not (tmp_path / "run").exists()


def test_unreadable_encoder_weights_are_one_line(capsys, tmp_path):
    from c2f_core.data.toy_scene import write_toy_take

    write_toy_take(tmp_path / "takes/t0", frames=2, seed=3)
    weights = tmp_path / "resnet.pt"
    weights.write_bytes(b"PK\x03\x04 not really a zip")
    config = tmp_path / "c.yaml"
    repo = Path(__file__).resolve().parents[2]
    config.write_text(
        f"extends: {repo / 'configs/tiny.yaml'}\nmodel:\n  encoder:\n    pretrained: {weights}\n"
    )
    code, _, err = run_cli(
        capsys,
        "train",
        "--config",
        config,
        "--data",
        tmp_path / "takes",
        "--out",
        tmp_path / "run",
        "--quiet",
    )
    assert code == 2
    assert f"cannot read pretrained encoder weights {weights}: PytorchStreamReader failed" in one_error_line(
        err
    )


def test_evaluate_warns_when_the_reconstruction_is_of_another_camera(capsys, make_take, tmp_path):
    from c2f_core.io.intrinsics import Intrinsics
    from c2f_core.io.recon_output import write_frame_result, write_reconstruction_summary
    from tests.conftest import TINY_INTRINSICS

    take = make_take(frame_ids=(0,))
    mesh = (np.array([[0, 0, 0.5], [0.01, 0, 0.5], [0, 0.01, 0.5]]), np.array([[0, 1, 2]]))
    for name, intrinsics, said in (
        (
            "other_size",
            Intrinsics(**{**TINY_INTRINSICS.to_dict(), "width": 640, "height": 480}),
            "was made from 640x480 images, the take's are 64x48",
        ),
        (
            "other_fx",
            Intrinsics(**{**TINY_INTRINSICS.to_dict(), "fx": 500.0}),
            "was made with fx 500, the take's is 60",
        ),
    ):
        recon = tmp_path / name
        write_frame_result(recon, 0, mesh, mesh)
        write_reconstruction_summary(recon, name="take", intrinsics=intrinsics, frames=[0])
        _, _, err = run_cli(capsys, "evaluate", recon, take, "--quiet")
        first = err.strip().splitlines()[0]
        assert (
            first
            == f"c2f: warning: the reconstruction {recon} {said}: is it a reconstruction of another take?"
        )
