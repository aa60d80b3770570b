"""`c2f prepare` on tiny DexYCB and ObMan trees in their released layouts; train, reconstruct, evaluate."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml

import c2f_core.cli.main as cli_main
import c2f_core.data.dexycb as dexycb_module
from c2f_core.data.obman import ObManReader
from c2f_core.data.prepare import OBMAN_TAKE_FRAMES, close_boundary_loops, frame_rng
from c2f_core.data.take_dataset import REQUIRED_GT
from c2f_core.data.toy_scene import box_sdf
from c2f_core.hands.mano import ManoLayer
from c2f_core.hands.mano_file import MANO_DIR_ENV
from c2f_core.io.frames import GT_KEYS
from c2f_core.io.take import Take
from c2f_core.train.config import load_c2f_config

TESTS = Path(__file__).resolve().parents[1]
CONFIGS = TESTS.parent / "configs"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dex = _load(TESTS / "data" / "test_dexycb.py", "prepare_test_dexycb_builders")
obm = _load(TESTS / "data" / "test_obman.py", "prepare_test_obman_builders")
mano_fixture = dex.mano_fixture
SAMPLES = 1500

TINY_RUN = {
    "frames": {"heatmap_res": 8},
    "data": {"crop_size": 64, "n_pcl": 64, "n_queries": 64, "n_hand_points": 16, "val_frames": 1},
    "model": {
        "latent": 16,
        "pix_hidden": 16,
        "norm": "group",
        "encoder": {"width": 0.125, "feat_channels": 16},
        "sdf_decoder": {"hidden": 16, "dropout": 0.0},
        "heads": {"hidden": 16, "n_hand_points": 16, "heatmap_channels": 8},
    },
    "train": {
        "batch_size": 2,
        "steps": 2,
        "lr": 1.0e-3,
        "amp": False,
        "num_workers": 0,
        "log_every": 1,
        "val_every": 0,
        "ckpt_every": 1,
        "keep_every": 0,
    },
}


class FixtureManoLayer(ManoLayer):
    """The MANO layer DexYCB builds from a file, with the 133-vertex fixture's fingertip vertices."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, tip_vertex_ids=mano_fixture.TIP_VERTEX_IDS, **kwargs)


def _use_fixture_mano(patch: pytest.MonkeyPatch, mano_dir: Path) -> None:
    patch.setattr(dexycb_module, "ManoLayer", FixtureManoLayer)
    patch.setenv(MANO_DIR_ENV, str(mano_dir))
    for name in ("prepare", "train"):
        if name not in cli_main.SUBCOMMANDS:
            patch.setattr(cli_main, "SUBCOMMANDS", (*cli_main.SUBCOMMANDS, name))


def c2f(capsys, *argv) -> tuple[int, str, str]:
    code = cli_main.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Tiny DexYCB and ObMan (+ ShapeNet) trees, the MANO stand-in, and what the readers give."""
    root = tmp_path_factory.mktemp("datasets")
    mano_path = mano_fixture.write_mano_fixture(root / "mano")
    layer = FixtureManoLayer(mano_path, use_pca=True, num_pca_comps=45, flat_hand_mean=False)
    dex_expected = dex.build_dexycb(root / "dexycb", layer)
    obm_expected = obm.build_obman(root / "obman", FixtureManoLayer(mano_path))
    obm.build_shapenet(root / "shapenet")
    return {
        "root": root,
        "mano": mano_path,
        "layer": layer,
        "dexycb": root / "dexycb",
        "obman": root / "obman",
        "shapenet": root / "shapenet",
        "dex_expected": dex_expected,
        "obm_expected": obm_expected,
    }


@pytest.fixture(scope="module")
def prepared(trees, tmp_path_factory):
    """Both datasets' train and test splits prepared through the CLI with two worker processes."""
    cache = tmp_path_factory.mktemp("cache")
    outputs = {}
    with pytest.MonkeyPatch.context() as patch:
        _use_fixture_mano(patch, trees["mano"].parent)
        for dataset, extra in (("dexycb", []), ("obman", ["--shapenet", trees["shapenet"]])):
            for split in ("train", "test"):
                argv = [
                    "prepare",
                    dataset,
                    trees[dataset],
                    "--out",
                    cache / dataset,
                    "--split",
                    split,
                    "--samples",
                    SAMPLES,
                    "--workers",
                    2,
                    "--quiet",
                    *extra,
                ]
                outputs[(dataset, split)] = cli_main.main([str(a) for a in argv])
    assert all(code == 0 for code in outputs.values()), outputs
    return cache


@pytest.fixture
def fixture_mano(trees, monkeypatch):
    _use_fixture_mano(monkeypatch, trees["mano"].parent)


def winding_numbers(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Exact generalised winding numbers (solid angles, Van Oosterom & Strackee), independent of libigl."""
    tri = vertices[faces][None] - points[:, None, None, :]  # (N, F, 3, 3)
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
    numerator = np.einsum("nfi,nfi->nf", a, np.cross(b, c))
    denominator = (
        la * lb * lc
        + np.einsum("nfi,nfi->nf", a, b) * lc
        + np.einsum("nfi,nfi->nf", a, c) * lb
        + np.einsum("nfi,nfi->nf", b, c) * la
    )
    return (2.0 * np.arctan2(numerator, denominator)).sum(axis=1) / (4.0 * np.pi)


def _segment_distances(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a  # (F, 3)
    t = np.einsum("nfi,fi->nf", points[:, None] - a, ab) / np.maximum((ab * ab).sum(1), 1e-30)
    closest = a + np.clip(t, 0.0, 1.0)[..., None] * ab
    return np.linalg.norm(points[:, None] - closest, axis=-1)


def mesh_distances(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Exact unsigned distances (N,) to a triangle mesh, brute force over all faces (independent of libigl)."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    normal = np.cross(b - a, c - a)
    area2 = np.linalg.norm(normal, axis=1)
    normal = normal / np.maximum(area2, 1e-30)[:, None]
    offset = np.einsum("nfi,fi->nf", points[:, None] - a, normal)
    projected = points[:, None] - offset[..., None] * normal
    # inside the triangle when the projection is on the inner side of all three edges
    inside = np.ones(offset.shape, bool)
    for p, q in ((a, b), (b, c), (c, a)):
        inside &= np.einsum("nfi,fi->nf", np.cross(q - p, projected - p), normal) >= 0
    plane = np.where(inside & (area2 > 0), np.abs(offset), np.inf)
    edges = np.minimum.reduce([_segment_distances(points, p, q) for p, q in ((a, b), (b, c), (c, a))])
    return np.minimum(plane, edges).min(axis=1)


def check_sdf(points: np.ndarray, sdf: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Stored samples: |sdf| = distance to the mesh, sign from an independent winding number."""
    vertices = vertices.astype(np.float64)
    points = points.astype(np.float64)
    np.testing.assert_allclose(np.abs(sdf), mesh_distances(points, vertices, faces), atol=1e-6)
    inside = np.abs(winding_numbers(points, vertices, faces)) > 0.5
    assert inside.any() and (~inside).any()
    assert ((sdf < 0) == inside).all()


# ----------------------------------------------------------------------------------------------
# Library pieces


def test_close_boundary_loops_keeps_orientation():
    cube = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    faces = np.asarray(cube.faces)
    on_top = np.asarray(cube.vertices)[faces][:, :, 2].min(axis=1) > 1.4
    opened = faces[~on_top]  # the two triangles of the +z side removed: one square hole
    closed = close_boundary_loops(opened)
    assert len(closed) == len(faces)
    np.testing.assert_array_equal(closed[: len(opened)], opened)
    mesh = trimesh.Trimesh(cube.vertices, closed, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(6.0)
    np.testing.assert_array_equal(close_boundary_loops(faces), faces)  # nothing to close


def test_mano_fixture_hand_becomes_closed(trees):
    faces = trees["layer"].faces.numpy()
    closed = close_boundary_loops(faces)
    mesh = trimesh.Trimesh(trees["layer"].v_template.numpy(), closed, process=False)
    assert not trimesh.Trimesh(mesh.vertices, faces, process=False).is_watertight
    assert mesh.is_watertight and mesh.is_winding_consistent


def test_frame_rng_is_stable():
    assert frame_rng("dexycb/a/b/c/000005").integers(0, 2**62) == frame_rng("dexycb/a/b/c/000005").integers(
        0, 2**62
    )
    assert frame_rng("a").integers(0, 2**62) != frame_rng("b").integers(0, 2**62)


# ----------------------------------------------------------------------------------------------
# Prepared takes against the readers


def test_dexycb_takes_hold_the_readers_frames(trees, prepared):
    for split, count in (("train", 27), ("test", 2)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = list(dex.reader(trees["dexycb"], split, mano=trees["layer"]))
        assert len(frames) == count
        written = sorted((prepared / "dexycb" / split).glob("*/gt/*.npz"))
        assert len(written) == count
        for frame in frames:
            subject, sequence, serial, number = frame.name.split("/")
            take = Take.open(prepared / "dexycb" / split / f"{subject}__{sequence}__{serial}")
            assert take.intrinsics.depth_scale == 0.001 and take.intrinsics.fps == 30.0
            assert (take.intrinsics.width, take.intrinsics.height) == (dex.W, dex.H)
            taken = take.read_frame(int(number))
            np.testing.assert_array_equal(taken.K, frame.K)
            np.testing.assert_array_equal(taken.color, frame.color)  # the JPEG copied, not re-encoded
            np.testing.assert_allclose(taken.depth_m, frame.depth_m, atol=1e-7)
            assert taken.depth_m[20, 20] == pytest.approx(
                trees["dex_expected"][frame.name]["depth_mm"] / 1000
            )
            gt = taken.gt
            assert set(REQUIRED_GT) | set(GT_KEYS) <= set(gt)
            for key in ("hand_verts", "hand_joints", "object_verts", "object_center", "mask", "K"):
                np.testing.assert_array_equal(gt[key], frame.gt[key])
            np.testing.assert_array_equal(gt["object_faces"], frame.gt["object_faces"])
            original = frame.gt["hand_faces"]
            np.testing.assert_array_equal(gt["hand_faces"][: len(original)], original)
            assert trimesh.Trimesh(gt["hand_verts"], gt["hand_faces"], process=False).is_watertight
    # the test split keeps only frames in contact (frame 0 of each camera of its one sequence)
    assert sorted(
        p.parent.parent.name.split("__")[-1] + "/" + p.stem
        for p in (prepared / "dexycb" / "test").glob("*/gt/*.npz")
    ) == [f"{serial}/000000" for serial in dex.CAMERAS]


def test_dexycb_sdf_samples_are_exact(trees, prepared):
    takes = sorted((prepared / "dexycb" / "train").iterdir())
    for take_dir in takes[:2]:
        take = Take.open(take_dir)
        subject, sequence, serial = take_dir.name.split("__")
        for frame_id in take.frame_ids:
            gt = take.read_frame(frame_id).gt
            pose = trees["dex_expected"][f"{subject}/{sequence}/{serial}/{frame_id:06d}"]["pose_y"]
            R, t = pose[:, :3], pose[:, 3]
            rest = (gt["sdf_object_points"].astype(np.float64) - t) @ R  # R^T (p - t)
            half = dex.CUBE_SIZE / 2
            np.testing.assert_allclose(
                gt["sdf_object"], box_sdf(rest, dex.CUBE_MIN + half, np.full(3, half)), atol=2e-6
            )
            assert (gt["sdf_object"] < 0).mean() > 0.1
            check_sdf(gt["sdf_hand_points"], gt["sdf_hand"], gt["hand_verts"], gt["hand_faces"])
            assert len(gt["sdf_hand"]) == SAMPLES and gt["sdf_hand"].dtype == np.float32


def test_obman_takes_hold_the_readers_frames(trees, prepared):
    step = 0.7 / 254  # upper bound of one 8-bit depth level of the fixture's range
    for split, ids in (("train", obm.SPLIT_IDS), ("test", ["00000000", "00000001"])):
        reader = ObManReader(trees["obman"], split, shapenet_root=trees["shapenet"], mano=trees["mano"])
        take = Take.open(prepared / "obman" / split / "obman_000")
        assert take.frame_ids == [int(i) for i in ids]
        assert take.intrinsics.depth_scale == 0.0001 and take.intrinsics.fps is None
        for index, frame in enumerate(reader):
            taken = take.read_frame(int(frame.extras["id"]))
            np.testing.assert_array_equal(taken.K, [[480, 0, 127.5], [0, 480, 127.5], [0, 0, 1]])
            np.testing.assert_array_equal(taken.color, frame.color)
            np.testing.assert_allclose(taken.depth_m, frame.depth_m, atol=0.5e-4 + 1e-6)
            assert abs(taken.depth_m[100, 50] - obm.NEAR_Z) < step
            gt = taken.gt
            assert set(REQUIRED_GT) | set(GT_KEYS) <= set(gt)
            for key in ("hand_verts", "hand_joints", "object_verts", "object_center", "mask"):
                np.testing.assert_array_equal(gt[key], frame.gt[key])
            check_sdf(gt["sdf_hand_points"], gt["sdf_hand"], gt["hand_verts"], gt["hand_faces"])
            # ObMan's stand-in object is an open box: signs where defined, ambiguous samples dropped
            check_sdf(gt["sdf_object_points"], gt["sdf_object"], gt["object_verts"], gt["object_faces"])
            assert 0.6 * SAMPLES < len(gt["sdf_object"]) < SAMPLES  # the samples near its holes are dropped


def test_obman_takes_hold_a_thousand_frames(trees, tmp_path, fixture_mano, capsys):
    ids = [f"{i:08d}" for i in range(OBMAN_TAKE_FRAMES + 2)]
    listed = tmp_path / "ids.json"
    listed.write_text(json.dumps(ids))
    # every listed id reuses frame 00000000's files, so only the take split is under test
    root = tmp_path / "obman"
    for sub in ("rgb", "depth", "segm", "meta"):
        folder = root / "train" / sub
        folder.mkdir(parents=True)
        source = next((trees["obman"] / "train" / sub).glob("00000000.*"))
        for frame_id in (ids[0], ids[OBMAN_TAKE_FRAMES - 1], ids[-1]):
            (folder / f"{frame_id}{source.suffix}").write_bytes(source.read_bytes())
    code, _, err = c2f(
        capsys,
        "prepare",
        "obman",
        root,
        "--out",
        tmp_path / "cache",
        "--shapenet",
        trees["shapenet"],
        "--split-file",
        listed,
        "--samples",
        200,
        "--workers",
        1,
        "--quiet",
    )
    assert code == 1 and "ObMan meta file not found" in err  # the ids without files fail, the rest go on
    assert Take.open(tmp_path / "cache" / "train" / "obman_000").frame_ids == [0, OBMAN_TAKE_FRAMES - 1]
    assert Take.open(tmp_path / "cache" / "train" / "obman_001").frame_ids == [OBMAN_TAKE_FRAMES + 1]


# ----------------------------------------------------------------------------------------------
# Resume, determinism, errors


def test_resume_after_a_kill_redoes_only_unfinished_frames(trees, prepared, tmp_path, fixture_mano, capsys):
    cache = tmp_path / "cache"
    base = ["prepare", "dexycb", trees["dexycb"], "--out", cache, "--samples", SAMPLES, "--quiet"]
    code, out, _ = c2f(capsys, *base, "--limit", 10, "--workers", 2)
    assert code == 0 and "10 frame(s) written" in out
    done = sorted((cache / "train").glob("*/gt/*.npz"))
    assert len(done) == 10
    # a kill between the depth and the gt write, and an orphaned temporary file of an atomic write
    victim = done[3]
    victim.unlink()
    (victim.parent / f".{victim.name}.x1y2.tmp.npz").write_bytes(b"partial")
    code, out, err = c2f(capsys, *base, "--workers", 1)
    assert code == 0
    assert "18 frame(s) written, 9 already done, 1 skipped without hand mesh, 0 failed; 14 take(s)" in out
    assert "1 frame(s) skipped without a hand mesh" in err
    # one process or two, first run or resumed: the same bytes as the module's two-worker run
    files = sorted(p for p in (cache / "train").rglob("*") if p.is_file() and not p.name.startswith("."))
    assert len(files) == 14 + 3 * 27  # intrinsics.json per take, colour, depth and gt per frame
    for path in files:
        reference = prepared / "dexycb" / path.relative_to(cache)
        assert path.read_bytes() == reference.read_bytes(), path
    assert len(Take.open(victim.parent.parent).frame_ids) == 2  # the orphan is ignored
    code, out, _ = c2f(capsys, *base)
    assert code == 0 and "0 frame(s) written, 27 already done, 1 skipped without hand mesh" in out


def test_clear_errors(trees, tmp_path, fixture_mano, monkeypatch, capsys):
    code, _, err = c2f(capsys, "prepare", "dexycb", tmp_path / "nowhere", "--out", tmp_path / "c")
    assert code == 2 and "dexycb root not found" in err
    monkeypatch.delenv(MANO_DIR_ENV)
    code, _, err = c2f(capsys, "prepare", "dexycb", trees["dexycb"], "--out", tmp_path / "c")
    assert code == 2 and "DexYCB hand meshes need the MANO model" in err
    assert MANO_DIR_ENV in err and "mano.is.tue.mpg.de" in err
    code, _, err = c2f(
        capsys, "prepare", "dexycb", trees["dexycb"], "--out", tmp_path / "c", "--mano-dir", tmp_path
    )
    assert code == 2 and "MANO_RIGHT.pkl" in err
    code, _, err = c2f(
        capsys,
        "prepare",
        "obman",
        trees["obman"],
        "--out",
        tmp_path / "c",
        "--mano-dir",
        trees["mano"].parent,
    )
    assert code == 2 and "--shapenet" in err
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    code, _, err = c2f(
        capsys,
        "prepare",
        "obman",
        trees["obman"],
        "--out",
        tmp_path / "c",
        "--mano-dir",
        trees["mano"].parent,
        "--shapenet",
        trees["shapenet"],
        "--split-file",
        empty,
    )
    assert code == 2 and "nothing to convert" in err
    code, _, err = c2f(capsys, "prepare", "dexycb", trees["dexycb"], "--out", tmp_path / "c", "--limit", 0)
    assert code == 2 and "--limit must be >= 1" in err
    assert not (tmp_path / "c").exists()


# ----------------------------------------------------------------------------------------------
# The prepared takes drive training, reconstruction and evaluation unchanged


@pytest.mark.parametrize("name", ["dexycb.yaml", "obman.yaml"])
def test_dataset_configs_load(name):
    config = load_c2f_config(CONFIGS / name)
    assert config.data.crop_size == 256 and config.train.batch_size == 32
    assert config.model.pifu.k == 16 and config.model.latent == 128 and config.data.n_pcl == 1024
    assert config.data.n_queries == 2000 and config.train.lr == pytest.approx(1e-4)
    assert config.train.lr_decay_at == 0.75 and config.train.lr_decay_factor == 0.5
    frames_per_split, half, shift = {"dexycb.yaml": (29_656, 0.32, 0.1), "obman.yaml": (87_190, 0.286, 0.0)}[
        name
    ]
    assert config.train.steps == 800 * (frames_per_split // 32)
    assert config.frames.cube_half_m == pytest.approx(half) and config.augment.box_shift == shift
    assert config.model.sdf_clamp_m == pytest.approx(0.05 * half, abs=5e-4)


def test_train_reconstruct_evaluate_on_prepared_takes(prepared, tmp_path, fixture_mano, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_RUN))
    run = tmp_path / "run"
    code, out, err = c2f(
        capsys,
        "train",
        "--config",
        config,
        "--data",
        prepared / "dexycb" / "train",
        "--out",
        run,
        "--device",
        "cpu",
        "--quiet",
    )
    assert code == 0, err
    assert "trained steps 0-2" in out and (run / "last.pt").is_file()
    test_takes = sorted((prepared / "dexycb" / "test").iterdir())
    recon = tmp_path / "recon"
    code, out, err = c2f(
        capsys,
        "reconstruct",
        test_takes[0],
        "--checkpoint",
        run / "last.pt",
        "--out",
        recon,
        "--method",
        "dense",
        "--resolution",
        16,
        "--bbox",
        f"0,0,{dex.W},{dex.H}",
        "--device",
        "cpu",
        "--quiet",
    )
    # An untrained network may find no surface: with the take's only frame failed that is an error
    # (exit 2) that names the frame's reason and writes no summary, not a crash.
    if code == 2:
        assert "every frame failed (1 of 1 frame(s)); first, frame 000000:" in err
        assert not (recon / "reconstruction.json").exists()
        return
    assert code == 0, err
    assert (recon / "000000.json").is_file()
    assert (recon / "reconstruction.json").is_file()
    code, out, err = c2f(capsys, "evaluate", recon, test_takes[0], "--samples", 500, "--quiet")
    assert code == 0, err
    assert "| aligned |" in out and "| raw |" in out and "/1 |" in out
