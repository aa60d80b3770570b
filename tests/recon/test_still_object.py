"""The object before the grasp: frames of a reach get the object where it stands."""

import json
import warnings

import numpy as np
import pytest
import trimesh

from c2f_core.geometry.raster import rasterize_depth
from c2f_core.io.intrinsics import Intrinsics
from c2f_core.io.take import Take, TakeWriter
from c2f_core.recon import take_run
from c2f_core.recon.extract import Mesh
from c2f_core.recon.runner import FrameResult, ReconstructionSettings
from c2f_core.recon.still_object import (
    StillObjectSettings,
    carve_seen_through,
    find_still_object,
    object_view,
)

K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
SIZE = (240, 320)
TABLE_M = 0.6
BOX = trimesh.creation.box((0.06, 0.06, 0.06), trimesh.transformations.translation_matrix([0.05, 0, 0.55]))
HAND_X = [-0.25, -0.2, -0.15, -0.1, 0.0, 0.0, 0.0, 0.0]
"""The hand reaches for the box in frames 0-3 and holds it from frame 4 on."""


def _mesh(trimesh_mesh):
    return np.asarray(trimesh_mesh.vertices), np.asarray(trimesh_mesh.faces)


def hand(frame):
    return _mesh(trimesh.creation.icosphere(3, 0.04).apply_translation([HAND_X[frame], 0.0, 0.5]))


def network_object(frame):
    """What the network calls object: a blob on the reaching hand, the box once the hand is at it."""
    if HAND_X[frame] < 0:
        return _mesh(trimesh.creation.icosphere(2, 0.02).apply_translation([HAND_X[frame], 0.03, 0.47]))
    return _mesh(BOX)


def observed(frame, box_there=True):
    """The frame's depth: the table, the box where it stands (unless not yet there), the hand."""
    depth = np.full(SIZE, TABLE_M)
    parts = [hand(frame)] + ([_mesh(BOX)] if box_there or HAND_X[frame] >= 0 else [])
    for vertices, faces in parts:
        depth = np.minimum(depth, rasterize_depth(vertices, faces, K, SIZE[1], SIZE[0]))
    return depth


def views(box_there=True, settings=None):
    settings = settings or StillObjectSettings()

    def view_of(frame):
        return object_view(hand(frame), network_object(frame), observed(frame, box_there), K, settings)

    return view_of


def test_frames_before_the_grasp_get_the_object_where_it_stands():
    asked = []
    found = find_still_object(range(8), lambda f: asked.append(f) or views()(f))
    assert (found.grasp, found.source, found.frames) == (4, 4, (3, 2, 1, 0))
    assert "frames 0-3 show it where frame 4 meshed it" in found.describe()
    assert max(asked.count(f) for f in range(8)) <= 2  # searched, then walked back
    held = find_still_object(range(4, 8), views())  # held from the first frame: nothing to give
    assert (held.grasp, held.frames) == (4, ())


def test_an_object_not_there_before_the_grasp_is_not_put_there():
    found = find_still_object(range(8), views(box_there=False))
    assert (found.grasp, found.frames) == (4, ())
    assert found.describe() == "the object is found from frame 4 on"


def test_an_object_the_network_never_finds_again_at_one_place_is_no_grasp():
    moving = views()
    assert find_still_object(range(4), moving) is None  # frames 0-3: a blob that follows the hand
    assert find_still_object(range(8), lambda f: None if f == 5 else moving(f)) is None  # a gap


def test_a_hidden_object_cannot_be_judged_still():
    strict = StillObjectSettings(min_pixels=10**6)
    found = find_still_object(range(8), views(settings=strict), strict)
    assert found is None  # too few pixels to say the depth supports it anywhere


@pytest.mark.parametrize("still_object", [True, False])
def test_a_take_run_rewrites_the_frames_before_the_grasp(tmp_path, monkeypatch, still_object):
    intr = Intrinsics(fx=300, fy=300, cx=160, cy=120, width=320, height=240, depth_scale=0.001)
    color = np.full((*SIZE, 3), 90, np.uint8)
    with TakeWriter(tmp_path / "take", intr) as writer:
        for frame in range(8):
            writer.write(frame, color, observed(frame))

    def reconstruct_frame(network, config, seen, crop, settings, device):
        (hv, hf), (ov, of) = hand(seen.index), network_object(seen.index)
        meshes = Mesh(hv.astype(np.float32), hf), Mesh(ov.astype(np.float32), of)
        centre = ov.mean(0)
        return FrameResult(*meshes, np.zeros((21, 3)), centre, (100, 60, 220, 180), 1, timings={"total": 0.0})

    monkeypatch.setattr(take_run, "reconstruct_frame", reconstruct_frame)
    settings = ReconstructionSettings(track="on", detector="depth-skin", still_object=still_object)
    out = tmp_path / "out"
    events = []
    summary = take_run.reconstruct_take(
        Take.open(tmp_path / "take"), None, None, out, settings, user_box=(100, 60, 220, 180),
        write_usd=False, on_event=events.append,
    )  # fmt: skip
    first = json.loads((out / "000000.json").read_text())
    copies = [trimesh.load(out / f"00000{f}_object.ply", process=False) for f in range(4)]
    if still_object:
        assert "frames 0-3 show it where frame 4 meshed it" in summary["still_object"]
        assert first["object_from_frame"] == 4
        assert first["object_center"] == pytest.approx(BOX.vertices.mean(0))
        # the box, meshed again after carving (nothing to carve: the depth shows it as it is)
        np.testing.assert_allclose(copies[0].bounds, BOX.bounds, atol=0.004)
        assert all(np.array_equal(c.vertices, copies[0].vertices) for c in copies)
        assert first["meshes"]["object"]["vertices"] == len(copies[0].vertices)
        assert any(e["event"] == "still_object" for e in events)
    else:
        assert summary["still_object"] is None and "object_from_frame" not in first
        assert copies[0].bounds[1, 0] < 0  # the blob on the reaching hand


def test_the_copy_loses_what_the_depth_sees_through():
    swollen = trimesh.creation.box(
        (0.1, 0.1, 0.06), trimesh.transformations.translation_matrix([0.05, 0, 0.55])
    )
    depth = observed(4)  # the 6 cm box where it stands, the hand beside it, the table
    carved = carve_seen_through(_mesh(swollen), [depth, depth, np.zeros(SIZE)], K, StillObjectSettings())

    def over_table(vertices):
        uv = np.round(np.asarray(vertices)[:, :2] / np.asarray(vertices)[:, 2:] * 300 + [160, 120]).astype(
            int
        )
        return float((depth[uv[:, 1], uv[:, 0]] >= TABLE_M).mean())

    # around the box the camera sees the table through the swollen copy: that part goes
    before = over_table(trimesh.sample.sample_surface(swollen, 4000, seed=0)[0])
    assert before > 0.5 and over_table(carved[0]) < 0.1  # what is left: silhouette pixels
    low, high = np.asarray(carved[0]).min(0), np.asarray(carved[0]).max(0)
    assert low[0] < 0.02 - 0.01  # where the hand stands in front, nothing is seen through: kept
    assert high[2] == pytest.approx(0.58, abs=0.004)  # the far side is hidden: kept
    holed = depth.copy()
    holed[:20, :20] = 0  # no depth there in any frame: says nothing, quietly
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(carve_seen_through(_mesh(swollen), [holed, holed], K, StillObjectSettings())[1]) > 0
    nothing = carve_seen_through((np.zeros((0, 3)), np.zeros((0, 3), int)), [depth], K, StillObjectSettings())
    assert len(nothing[0]) == 0


def test_a_huge_copy_is_carved_on_a_coarser_grid():
    huge = trimesh.creation.box((2.0, 2.0, 0.06), trimesh.transformations.translation_matrix([0, 0, 0.55]))
    carved = carve_seen_through(_mesh(huge), [observed(4)], K, StillObjectSettings())
    spacing = np.diff(np.unique(np.round(np.asarray(carved[0])[:, 2], 6)))
    assert len(carved[1]) > 0 and spacing.max() > 2 * StillObjectSettings().carve_voxel_m
