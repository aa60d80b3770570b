"""The real look: deferred rendering, shadows, and real-look takes (`c2f synth --look real`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import trimesh

from c2f_core.io.take import Take
from c2f_core.synth.generate import SynthConfig, generate_take
from c2f_core.synth.lighting import Light, visibility
from c2f_core.synth.render import LABEL_FOREARM, LABEL_HAND, LABEL_OBJECT, Renderer, SceneMesh

K = np.array([[200.0, 0.0, 79.5], [0.0, 200.0, 59.5], [0.0, 0.0, 1.0]])


def _box(size: float, centre: tuple[float, float, float], color: tuple[float, float, float]) -> SceneMesh:
    box = trimesh.creation.box((size, size, size))
    vertices = box.vertices + np.asarray(centre)
    return SceneMesh("box", vertices, box.faces, np.tile(color, (len(vertices), 1)), smooth=False)


@pytest.fixture
def renderer() -> Renderer:
    r = Renderer(160, 120, K)
    yield r
    r.close()


def test_gbuffer_gives_albedo_normals_depth_and_mesh_ids(renderer: Renderer) -> None:
    near = _box(0.1, (0.0, 0.0, 1.0), (1.0, 0.0, 0.0))
    far = _box(4.0, (0.0, 0.0, 4.0), (0.0, 1.0, 0.0))
    g = renderer.gbuffer([near, far])
    assert g.index[60, 80] == 0 and g.index[2, 2] == 1
    assert g.depth_m[60, 80] == pytest.approx(0.95, abs=1e-4)
    assert g.depth_m[2, 2] == pytest.approx(2.0, abs=1e-3)
    assert np.allclose(g.albedo[60, 80], [1, 0, 0], atol=0.01)
    # The near face points back at the camera (-z).
    assert g.normal[60, 80] @ np.array([0.0, 0.0, -1.0]) > 0.99
    points = renderer.points(g.depth_m)
    assert np.allclose(points[60, 80], [(80 - 79.5) / 200 * 0.95, (60 - 59.5) / 200 * 0.95, 0.95], atol=1e-4)


def test_shadow_map_depth_is_metric_and_shadows_fall_behind_occluders(renderer: Renderer) -> None:
    near = _box(0.1, (0.0, 0.0, 1.0), (1.0, 0.0, 0.0))
    wall = _box(2.0, (0.0, 0.0, 2.5), (0.0, 1.0, 0.0))
    pose = np.eye(4)
    pose[:3, 3] = [0.0, 0.0, -1.0]
    depth = renderer.light_depth([near, wall], pose, 0.5)
    assert depth[60, 80] == pytest.approx(1.95, abs=2e-3)
    light = Light(np.array([0.0, 0.0, 1.0]), np.ones(3), 3.0)
    behind = np.array([[0.0, 0.0, 1.5], [0.3, 0.0, 1.5]])
    lit = visibility(behind, light, renderer, [near, wall], np.array([0.0, 0.0, 1.0]), 0.5)
    assert lit[0] == 0.0 and lit[1] == 1.0


@pytest.fixture(scope="module")
def real_take(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("real") / "take"
    config = SynthConfig(look="real", sdf_samples_per_mesh=300)
    summary = generate_take(out, 4, seed=11, size=(160, 120), quiet=True, config=config)
    return out, summary


def test_real_look_frames_have_hand_object_and_forearm_classes(real_take: tuple[Path, dict]) -> None:
    out, summary = real_take
    take = Take.open(out)
    assert summary["frames"] == 4
    labels = set()
    for frame_id in take.frame_ids:
        frame = take.read_frame(frame_id, with_gt=True)
        mask = frame.gt["mask"]
        labels |= set(np.unique(mask).tolist())
        assert str(frame.gt["look"]) == "real"
        assert np.count_nonzero(mask == LABEL_HAND) > 0
        # The hand ground truth ends at the wrist: no hand vertex lies on the forearm pixels' side.
        assert frame.gt["hand_verts"].shape[1] == 3
        valid = frame.depth_m > 0
        assert 0.5 < valid.mean() <= 1.0
    assert {LABEL_HAND, LABEL_OBJECT, LABEL_FOREARM} <= labels


def test_real_look_is_reproducible(real_take: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = real_take
    again = tmp_path / "again"
    generate_take(
        again,
        2,
        seed=11,
        size=(160, 120),
        quiet=True,
        config=SynthConfig(look="real", sdf_samples_per_mesh=300),
    )
    for name in ("color/000000.png", "depth/000001.png", "gt/000001.npz"):
        assert (
            hashlib.sha256((out / name).read_bytes()).digest()
            == hashlib.sha256((again / name).read_bytes()).digest()
        )


def test_real_look_refuses_sequences(tmp_path: Path) -> None:
    from c2f_core.errors import C2FError

    with pytest.raises(C2FError, match="independent frames"):
        generate_take(
            tmp_path / "s",
            2,
            seed=1,
            sequence=True,
            size=(160, 120),
            quiet=True,
            config=SynthConfig(look="real"),
        )
