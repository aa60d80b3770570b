"""Tests for training: configs, losses, checkpoints, the data order, overfitting, resume, DDP and the CLI."""

import argparse
import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from c2f_core.config import config_to_dict
from c2f_core.data.toy_scene import toy_frame, write_toy_take
from c2f_core.errors import C2FError
from c2f_core.model.network import C2FNetwork
from c2f_core.train.checkpoint import load_checkpoint, load_model, save_checkpoint
from c2f_core.train.config import C2FConfig, load_c2f_config
from c2f_core.train.logs import read_log
from c2f_core.train.loop import StepBatchSampler, train
from c2f_core.train.losses import chamfer_sq, clamped_l1, compute_losses

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
TINY = load_c2f_config(CONFIGS / "tiny.yaml")


def tiny(**train_overrides):
    config = copy.deepcopy(TINY)
    for key, value in train_overrides.items():
        setattr(config.train, key, value)
    return config


@pytest.fixture(scope="module")
def frames():
    return [toy_frame(i, index=i) for i in range(4)]


# ---------------------------------------------------------------- configs


def test_paper_yaml_is_the_default_config_with_the_paper_sizes():
    paper = load_c2f_config(CONFIGS / "paper.yaml")
    assert config_to_dict(paper) == config_to_dict(C2FConfig())
    assert paper.data.crop_size == 256 and paper.train.batch_size == 32 and paper.train.lr == 1e-4
    assert paper.model.pifu.k == 16 and paper.model.latent == 128 and paper.data.n_pcl == 1024
    assert (
        paper.data.n_queries == 2000
        and paper.train.lr_decay_at == 0.75
        and paper.train.lr_decay_factor == 0.5
    )


@pytest.mark.parametrize(
    ("name", "switches"),
    [
        ("ablation_pixel_rgb", ("rgb", False, False)),
        ("ablation_pixel_rgbd", ("rgbd", False, False)),
        ("ablation_point3d", ("rgbd", True, False)),
        ("ablation_point3d_ref", ("rgbd", True, True)),
    ],
)
def test_ablation_configs_select_table1_rows(name, switches):
    model = load_c2f_config(CONFIGS / f"{name}.yaml").model
    assert (model.modality, model.point_features, model.coarse_refinement) == switches


def test_every_config_file_loads():
    for path in sorted(CONFIGS.glob("*.yaml")):
        load_c2f_config(path)


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(C2FError, match="unknown key 'model.encoder.widht'"):
        load_c2f_config({"model": {"encoder": {"widht": 2}}})
    with pytest.raises(C2FError, match="'train.batch_size' must be an integer"):
        load_c2f_config({"train": {"batch_size": "8"}})
    with pytest.raises(C2FError, match="'model.pifu.metric' must be one of"):
        load_c2f_config({"model": {"pifu": {"metric": "2d"}}})
    with pytest.raises(C2FError, match="data.crop_size"):
        load_c2f_config({"data": {"crop_size": 100}})
    with pytest.raises(C2FError, match="not found"):
        load_c2f_config(tmp_path / "nope.yaml")


# ---------------------------------------------------------------- losses


def test_clamped_l1_values():
    pred = torch.tensor([[0.01, 0.2, -0.2, 0.2, 0.02]])
    target = torch.tensor([[0.03, 0.5, 0.01, -0.3, 0.5]])
    mask = torch.tensor([[True, True, True, True, False]])
    # |0.01-0.03| + 0 (both beyond +0.05) + |-0.2-0.01| (target inside: no clamp on pred) + |0.05-(-0.05)|
    expected = (0.02 + 0.0 + 0.21 + 0.25) / 4
    assert float(clamped_l1(pred, target, mask, 0.05)) == pytest.approx(expected, rel=1e-5)
    assert float(clamped_l1(pred, target, torch.zeros_like(mask), 0.05)) == 0.0
    # A saturated prediction on the wrong side still has a gradient.
    wrong = torch.tensor([[-0.5]], requires_grad=True)
    clamped_l1(wrong, torch.tensor([[0.3]]), torch.tensor([[True]]), 0.05).backward()
    assert wrong.grad.item() == pytest.approx(-1.0)


def test_chamfer_and_compute_losses():
    points = torch.arange(30.0).view(1, 10, 3).expand(2, 10, 3)  # spacing far above the 0.1 shift
    assert float(chamfer_sq(points, points)) == pytest.approx(0.0, abs=1e-6)
    assert float(chamfer_sq(points, points + torch.tensor([0.1, 0, 0]))) == pytest.approx(0.02, abs=1e-5)
    q = 6
    batch = {
        "query_sdf_nu": torch.zeros(1, q),
        "query_is_hand": torch.tensor([[True] * 3 + [False] * 3]),
        "joints_nu": torch.zeros(1, 21, 3),
        "object_center_nu": torch.zeros(1, 3),
        "hand_points_nu": torch.zeros(1, 4, 3),
        "heatmap": torch.zeros(1, 2, 2, 2, 2),
    }
    out = {
        "sdf_hand": torch.full((1, q), 0.01),
        "sdf_object": torch.full((1, q), -0.02),
        "joints": torch.ones(1, 21, 3),
        "object_center": torch.zeros(1, 3),
        "hand_points": torch.zeros(1, 4, 3),
        "heatmap": torch.ones(1, 2, 2, 2, 2),
    }
    losses = compute_losses(out, batch, TINY.loss, clamp_nu=0.08)
    assert float(losses["sdf_hand"]) == pytest.approx(0.01)
    assert float(losses["sdf_object"]) == pytest.approx(0.02)
    assert float(losses["coarse_hand"]) == 0.0
    assert float(losses["total"]) == pytest.approx(0.5 * 0.03 + 0.5 * 1.0 + 0.01 * 1.0)


# ---------------------------------------------------------------- data order


def test_step_sampler_partitions_epochs_and_ranks():
    one = StepBatchSampler(10, 4, seed=3, rank=0, world_size=1, start_step=0, end_step=5)
    batches = list(one)
    assert [len(b) for b in batches] == [4] * 5
    stream = [k for b in batches for k in b]
    assert sorted(k % 10 for k in stream[:10]) == list(range(10))  # epoch 0 covers every frame once
    assert all(k >= 10 for k in stream[10:20])  # epoch 1 keys
    two = [StepBatchSampler(10, 4, 3, rank, 2, 0, 5) for rank in (0, 1)]
    merged = [a + b for a, b in zip(*two)]
    assert merged == batches
    resumed = list(StepBatchSampler(10, 4, 3, 0, 1, start_step=3, end_step=5))
    assert resumed == batches[3:]
    with pytest.raises(C2FError, match="not divisible"):
        StepBatchSampler(10, 3, 0, 0, 2, 0, 1)


# ---------------------------------------------------------------- checkpoints


def test_checkpoints_round_trip_and_load_model(frames, tmp_path):
    result = train(tiny(steps=2), [frames], tmp_path / "run", quiet=True)
    assert result.end_step == 2
    for name in ("last.pt", "config.yaml", "log.csv", "curves.png"):
        assert (tmp_path / "run" / name).is_file()
    data = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert data["format"] == "c2f-checkpoint" and data["step"] == 2 and "torch" in data["versions"]
    network, config = load_model(tmp_path / "run" / "last.pt")
    assert isinstance(network, C2FNetwork) and not network.training
    assert config_to_dict(config) == config_to_dict(tiny(steps=2))


def test_bad_checkpoints_give_clear_errors(frames, tmp_path):
    with pytest.raises(C2FError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(C2FError, match="not a readable c2f checkpoint"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(C2FError, match="not a c2f checkpoint"):
        load_checkpoint(foreign)
    network = C2FNetwork(TINY.model, TINY.frames, TINY.data.crop_size)
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"config": config_to_dict(TINY), "model": network.state_dict(), "step": 0})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(C2FError, match="not a readable c2f checkpoint"):
        load_checkpoint(truncated)
    other = copy.deepcopy(TINY)
    other.model.latent = 8  # the stored weights were made with latent 16
    mismatched = tmp_path / "mismatched.pt"
    save_checkpoint(mismatched, {"config": config_to_dict(other), "model": network.state_dict(), "step": 0})
    with pytest.raises(C2FError, match="wrong architecture"):
        load_model(mismatched)
    missing_keys = tmp_path / "missing_keys.pt"
    state = network.state_dict()
    state.pop(next(iter(state)))
    save_checkpoint(missing_keys, {"config": config_to_dict(TINY), "model": state, "step": 0})
    with pytest.raises(C2FError, match="1 missing"):
        load_model(missing_keys)


def test_unreadable_checkpoint_errors_are_one_line_without_unsafe_advice(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"config": {}, "model": {"w": torch.zeros(256)}, "step": 0})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    pickled_object = tmp_path / "pickled_object.pt"
    torch.save({"args": argparse.Namespace(lr=1e-3)}, pickled_object)
    for path, expected in (
        (garbage, "not a readable c2f checkpoint"),
        (truncated, "not a readable c2f checkpoint"),
        (pickled_object, "not a c2f checkpoint: the safe loader refuses"),
    ):
        with pytest.raises(C2FError) as info:
            load_checkpoint(path)
        message = str(info.value)
        assert expected in message and str(path) in message
        assert "\n" not in message and "\x1b" not in message
        assert "weights_only" not in message
    assert "argparse.Namespace" in message


# ---------------------------------------------------------------- learning


def test_init_weights_starts_a_new_run_from_a_checkpoint(frames, tmp_path):
    train(tiny(steps=3), [frames], tmp_path / "a", quiet=True)
    trained = load_checkpoint(tmp_path / "a" / "last.pt")["model"]

    def first_weights(run, **overrides):
        train(tiny(steps=1, lr=1e-12, **overrides), [frames], tmp_path / run, quiet=True)
        return load_checkpoint(tmp_path / run / "last.pt")

    started = first_weights("b", init_weights=str(tmp_path / "a" / "last.pt"))
    assert started["step"] == 1  # a new schedule, not a resume
    assert all(torch.allclose(started["model"][k].float(), v.float(), atol=1e-6) for k, v in trained.items())
    fresh = first_weights("c")["model"]
    assert not all(torch.allclose(fresh[k].float(), v.float(), atol=1e-6) for k, v in trained.items())
    with pytest.raises(C2FError, match="not found"):
        train(tiny(steps=1, init_weights=str(tmp_path / "nope.pt")), [frames], tmp_path / "d", quiet=True)


def test_overfits_four_frames(frames, tmp_path):
    config = tiny(steps=120, ckpt_every=1000, lr=3e-3)
    for key in ("box_shift", "box_scale", "ref_jitter_m", "color", "depth_noise_m", "depth_dropout"):
        setattr(config.augment, key, 0.0)
    config.augment.depth_holes = 0
    result = train(config, [frames], tmp_path / "run", quiet=True)
    first = result.losses[1]
    last = {k: np.mean([result.losses[s][k] for s in range(116, 121)]) for k in first}
    # The output layers start near 0, so the first losses are those of predicting the surface everywhere.
    assert last["sdf_hand"] < 0.6 * first["sdf_hand"]
    assert last["sdf_object"] < 0.4 * first["sdf_object"]
    assert last["total"] < 0.4 * first["total"]


def test_loss_falls_on_synthetic_takes(tmp_path):
    """Four frames of ``c2f synth`` (hands holding objects, 320x240), the tiny model, 100 steps.

    Weaker bounds than on the toy scenes: fitting thin fingers with a raw-xyz MLP is slow (an
    auto-decoder with a free latent per frame reaches about 75% of the predict-zero baseline after
    300 steps at this width), so this checks that every SDF head and the total loss learn on real
    synthetic frames, not how far.
    """
    generate = pytest.importorskip("c2f_core.synth.generate")
    try:
        generate.generate_take(tmp_path / "synth", 4, seed=5, size=(320, 240), quiet=True)
    except C2FError as exc:  # the open-hand asset is built separately
        pytest.skip(f"synthetic generator unavailable: {exc}")
    from c2f_core.data.take_dataset import open_sources

    config = tiny(steps=100, ckpt_every=1000, lr=3e-3)
    for key in ("box_shift", "box_scale", "ref_jitter_m", "color", "depth_noise_m", "depth_dropout"):
        setattr(config.augment, key, 0.0)
    config.augment.depth_holes = 0
    config.data.cache_frames = True
    result = train(config, open_sources([tmp_path / "synth"]), tmp_path / "run", quiet=True)
    first = result.losses[1]
    last = {k: np.mean([result.losses[s][k] for s in range(96, 101)]) for k in first}
    assert last["sdf_hand"] < 0.9 * first["sdf_hand"]
    assert last["sdf_object"] < 0.9 * first["sdf_object"]
    assert last["total"] < 0.4 * first["total"]


def test_resume_after_a_kill_repeats_the_uninterrupted_losses(frames, tmp_path):
    config = tiny(steps=6, ckpt_every=2)
    config.model.sdf_decoder.dropout = 0.2  # dropout draws must repeat too
    full = train(config, [frames], tmp_path / "full", quiet=True)

    def killed_after_step_5(step, _losses):
        if step == 5:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        train(config, [frames], tmp_path / "cut", quiet=True, step_callback=killed_after_step_5)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["step"] == 4
    resumed = train(None, [frames], tmp_path / "cut", resume=True, quiet=True)
    assert (resumed.start_step, resumed.end_step) == (4, 6)
    for step in (5, 6):
        for key, value in full.losses[step].items():
            assert resumed.losses[step][key] == pytest.approx(value, rel=1e-5, abs=1e-8), (step, key)
    steps = [int(r["step"]) for r in read_log(tmp_path / "cut" / "log.csv") if r["split"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    other = copy.deepcopy(config)
    other.model.latent = 8
    with pytest.raises(C2FError, match="model.latent"):
        train(other, [frames], tmp_path / "cut", resume=True, quiet=True)


def test_validation_writes_best_checkpoint_and_curves(frames, tmp_path):
    config = tiny(steps=2, val_every=1)
    result = train(config, [frames[:2]], tmp_path / "run", val_sources=[frames[2:]], quiet=True)
    assert result.val is not None and result.val["sdf_hand"] > 0
    rows = read_log(tmp_path / "run" / "log.csv")
    assert [r["split"] for r in rows].count("val") == 2
    assert load_checkpoint(tmp_path / "run" / "best.pt")["best_val"] == pytest.approx(
        min(float(r["sdf_hand"]) + float(r["sdf_object"]) for r in rows if r["split"] == "val"), rel=1e-5
    )


DDP_SCRIPT = """
import json, sys, torch
from c2f_core.data.toy_scene import toy_frame
from c2f_core.train.config import load_c2f_config
from c2f_core.train.loop import train
config = load_c2f_config(sys.argv[1])
config.train.steps = 3
result = train(config, [[toy_frame(i, index=i) for i in range(4)]], sys.argv[2], quiet=True, device="cpu")
import torch.distributed as dist
if dist.get_rank() == 0:
    json.dump({str(k): v for k, v in result.losses.items()}, open(sys.argv[3], "w"))
dist.destroy_process_group()
"""


def test_two_gloo_processes_match_one_process_on_the_same_global_batch(frames, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    losses_path = tmp_path / "ddp_losses.json"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(CONFIGS / "tiny.yaml"),
        str(tmp_path / "ddp"),
        str(losses_path),
    ]
    done = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = json.loads(losses_path.read_text())
    single = train(tiny(steps=3), [frames], tmp_path / "single", quiet=True, device="cpu")
    for step in (1, 2, 3):
        for key, value in single.losses[step].items():
            assert ddp[str(step)][key] == pytest.approx(value, rel=1e-4, abs=1e-7), (step, key)
    assert load_checkpoint(tmp_path / "ddp" / "last.pt")["world_size"] == 2


# ---------------------------------------------------------------- CLI


def _cli(argv):
    from c2f_core.cli import train as train_cli

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")

    class Adder:
        def add_parser(self, name, **kwargs):
            p = sub.add_parser(name, **kwargs)
            p.add_argument("--quiet", action="store_true")
            p.add_argument("--device", default="cpu")
            return p

    train_cli.add_parser(Adder())
    args = parser.parse_args(argv)
    return args.run(args)


def test_cli_trains_resumes_and_reports_errors(tmp_path, capsys):
    take = write_toy_take(tmp_path / "takes" / "t0", frames=4, seed=2)
    config = tmp_path / "c.yaml"
    config.write_text((CONFIGS / "tiny.yaml").read_text().replace("steps: 100", "steps: 4"))
    run = tmp_path / "run"
    assert (
        _cli(
            [
                "train",
                "--config",
                str(config),
                "--data",
                str(take.parent),
                "--out",
                str(run),
                "--max-steps",
                "2",
            ]
        )
        == 0
    )
    assert "train:" in capsys.readouterr().out  # the full config is printed at the start
    assert load_checkpoint(run / "last.pt")["step"] == 2
    assert _cli(["train", "--out", str(run), "--resume", "--quiet"]) == 0  # data paths remembered
    assert load_checkpoint(run / "last.pt")["step"] == 4
    with pytest.raises(C2FError, match="no config|--config"):
        _cli(["train", "--out", str(tmp_path / "new"), "--data", str(take)])
    with pytest.raises(C2FError, match="checkpoint not found"):
        _cli(["train", "--out", str(tmp_path / "new"), "--resume", "--data", str(take)])


def test_a_new_head_trains_alone_from_weights_that_lack_it(frames, tmp_path):
    train(tiny(steps=1), [frames], tmp_path / "a", quiet=True)
    before = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    config = tiny(steps=3, lr=1e-2, init_weights=str(tmp_path / "a" / "last.pt"))
    config.model.heads.joints = "pixel"
    with pytest.raises(C2FError, match="missing 'pixel_joints."):
        train(config, [frames], tmp_path / "b", quiet=True)  # a new head must be named as trained
    config.train.trainable = ["pixel_joints."]
    train(config, [frames], tmp_path / "c", quiet=True)
    after = load_checkpoint(tmp_path / "c" / "last.pt")["model"]
    new = [k for k in after if k not in before]
    assert new and all(k.startswith("pixel_joints.") for k in new)
    assert all(torch.equal(after[k], v) for k, v in before.items())  # the rest stays as it was
    network, loaded = load_model(tmp_path / "c" / "last.pt")
    assert loaded.model.heads.joints == "pixel" and network.pixel_joints is not None
    config.train.trainable = ["no_such_part."]
    with pytest.raises(C2FError, match="names no weight"):
        train(config, [frames], tmp_path / "d", quiet=True)
