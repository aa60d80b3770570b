"""The hand's seen side laid onto the measured depth."""

import numpy as np
import trimesh

from c2f_core.geometry.mesh_sdf import MeshSDF
from c2f_core.geometry.raster import rasterize_depth
from c2f_core.recon.depth_snap import snap_parts_to_depth, snap_to_depth
from c2f_core.recon.extract import Mesh

K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
WIDTH, HEIGHT = 320, 240


def as_mesh(made):
    return Mesh(np.asarray(made.vertices, np.float32), np.asarray(made.faces, np.int64))


def sphere(centre, radius=0.04):
    return as_mesh(trimesh.creation.icosphere(3, radius).apply_translation(centre))


def measured(*meshes, background_m=0.9):
    """The depth a camera measures of these meshes in front of a wall."""
    depth = np.full((HEIGHT, WIDTH), background_m)
    for mesh in meshes:
        rendered = rasterize_depth(mesh.vertices.astype(np.float64), mesh.faces, K, WIDTH, HEIGHT)
        depth = np.minimum(depth, np.where(np.isfinite(rendered), rendered, np.inf))
    return depth


def depth_error_of_seen_side(mesh, depth):
    """Median |mesh depth - measured depth| over the pixels the mesh covers, metres."""
    rendered = rasterize_depth(mesh.vertices.astype(np.float64), mesh.faces, K, WIDTH, HEIGHT)
    covered = np.isfinite(rendered)
    return float(np.median(np.abs(rendered[covered] - depth[covered])))


def test_a_hand_behind_its_depth_moves_onto_it_whole():
    truth = sphere([0.0, 0.0, 0.5])
    predicted = sphere([0.0, 0.0, 0.508])  # the network's hand 8 mm too far
    depth = measured(truth)
    result = snap_to_depth(predicted, Mesh.empty(), depth, K)
    assert depth_error_of_seen_side(predicted, depth) > 0.007
    assert depth_error_of_seen_side(result.mesh, depth) < 0.001
    assert result.seen > 100 and result.held == 0
    assert abs(result.mean_offset_m - 0.008) < 0.002
    # the hidden side follows: the hand keeps its thickness instead of being flattened onto the depth
    assert abs(np.ptp(result.mesh.vertices[:, 2]) - np.ptp(predicted.vertices[:, 2])) < 0.003
    assert result.mesh.faces is predicted.faces


def test_depth_beyond_the_reach_or_missing_moves_nothing():
    predicted = sphere([0.0, 0.0, 0.5])
    far = measured(sphere([0.0, 0.0, 0.45]))  # 5 cm in front: another surface
    result = snap_to_depth(predicted, Mesh.empty(), far, K, max_offset_m=0.02)
    assert result.seen == 0 and np.array_equal(result.mesh.vertices, predicted.vertices)
    holes = np.zeros((HEIGHT, WIDTH))
    assert snap_to_depth(predicted, Mesh.empty(), holes, K).seen == 0
    assert snap_to_depth(predicted, Mesh.empty(), far, K, max_offset_m=0.0).seen == 0
    assert snap_to_depth(Mesh.empty(), predicted, far, K).mesh.is_empty


def test_the_hand_keeps_its_contact_and_does_not_enter_the_object():
    obj = sphere([0.0, 0.0, 0.56], 0.03)
    predicted = sphere([0.0, 0.0, 0.5])  # its back (0.54) 1 cm into the object's front (0.53)
    depth = measured(sphere([0.0, 0.0, 0.512]))  # seen 12 mm farther: the move goes towards the object
    result = snap_to_depth(predicted, obj, depth, K)
    object_sdf = MeshSDF(obj.vertices.astype(np.float64), obj.faces)
    near = object_sdf.closest(predicted.vertices.astype(np.float64))[0] < 0.005
    assert near.any() and result.held >= near.sum()
    np.testing.assert_allclose(result.mesh.vertices[near], predicted.vertices[near], atol=5e-5)
    inside_before = object_sdf.contains(predicted.vertices.astype(np.float64))
    assert not (object_sdf.contains(result.mesh.vertices.astype(np.float64)) & ~inside_before).any()
    assert result.seen > 0


def test_a_move_into_the_object_is_held_back(monkeypatch):
    obj = sphere([0.0, 0.0, 0.578], 0.03)  # 8 mm behind the hand's back (0.54): no contact
    predicted = sphere([0.0, 0.0, 0.5])
    depth = measured(sphere([0.0, 0.0, 0.515]))  # seen 15 mm farther: moved whole, it would enter
    object_sdf = MeshSDF(obj.vertices.astype(np.float64), obj.faces)
    result = snap_to_depth(predicted, obj, depth, K)
    assert result.held > 0 and result.seen > 0
    assert not object_sdf.contains(result.mesh.vertices.astype(np.float64)).any()
    assert depth_error_of_seen_side(result.mesh, depth) < depth_error_of_seen_side(predicted, depth) / 3
    # without the check the same move does enter it (the check above is not idle)
    monkeypatch.setattr(MeshSDF, "contains", lambda self, points: np.zeros(len(points), dtype=bool))
    unchecked = snap_to_depth(predicted, obj, depth, K)
    monkeypatch.undo()
    assert object_sdf.contains(unchecked.mesh.vertices.astype(np.float64)).any()


def test_depth_the_object_explains_is_not_the_hand():
    predicted = sphere([0.0, 0.0, 0.5])
    # an object whose front covers the hand's pixels, 1 cm in front of it: the camera sees the object
    board = trimesh.creation.box((0.2, 0.2, 0.01), trimesh.transformations.translation_matrix([0, 0, 0.45]))
    obj = as_mesh(board)
    depth = measured(obj)
    result = snap_to_depth(predicted, obj, depth, K)
    assert result.seen == 0 and np.array_equal(result.mesh.vertices, predicted.vertices)


def test_both_parts_meet_their_depth_and_stay_apart():
    hand_truth, object_truth = sphere([-0.03, 0.0, 0.5], 0.03), sphere([0.035, 0.0, 0.52], 0.03)
    hand, obj = sphere([-0.03, 0.0, 0.506], 0.03), sphere([0.035, 0.0, 0.512], 0.03)
    depth = measured(hand_truth, object_truth)
    moved_hand, moved_object = snap_parts_to_depth(hand, obj, depth, K)
    for before, after in ((hand, moved_hand), (obj, moved_object)):
        assert depth_error_of_seen_side(after, depth) < depth_error_of_seen_side(before, depth) / 4
    hand_sdf = MeshSDF(moved_hand.vertices.astype(np.float64), moved_hand.faces)
    assert not hand_sdf.contains(moved_object.vertices.astype(np.float64)).any()
    unmoved = snap_parts_to_depth(hand, obj, depth, K, max_offset_m=0.0)
    assert unmoved[0] is hand and unmoved[1] is obj


def test_no_face_is_turned_over_by_the_move():
    from c2f_core.geometry.mesh_normals import face_normals
    from c2f_core.recon.depth_snap import MAX_TURN_COSINE, _unflip

    made = trimesh.creation.icosphere(3, 0.04).apply_translation([0.0, 0.0, 0.5])
    vertices, faces = np.asarray(made.vertices), np.asarray(made.faces)
    shift = np.random.default_rng(0).normal(0.0, 0.004, len(vertices))  # rough: folds many faces

    def turned(moved):
        before, after = face_normals(vertices, faces), face_normals(moved, faces)
        cosine = (before * after).sum(1) / np.linalg.norm(before, axis=1) / np.linalg.norm(after, axis=1)
        return int((cosine < MAX_TURN_COSINE).sum())

    assert turned(vertices * (1.0 + shift / vertices[:, 2])[:, None]) > 100
    mended = _unflip(vertices, faces, shift, vertices[:, 2], np.zeros(len(vertices), bool))
    assert turned(mended) == 0
    # each vertex still moves along its own ray
    np.testing.assert_allclose(np.cross(mended, vertices), 0.0, atol=1e-12)


def test_mending_a_turned_face_keeps_its_held_corners():
    from c2f_core.recon.depth_snap import _unflip

    made = trimesh.creation.icosphere(3, 0.04).apply_translation([0.0, 0.0, 0.5])
    vertices, faces = np.asarray(made.vertices), np.asarray(made.faces)
    shift = np.random.default_rng(0).normal(0.0, 0.004, len(vertices))
    held = np.zeros(len(vertices), bool)
    held[: len(vertices) // 3] = True  # a contact band: their offsets are the solve's, ~0
    shift[held] = 0.0
    free = _unflip(vertices, faces, shift, vertices[:, 2], np.zeros(len(vertices), bool))
    assert np.abs(free[held] - vertices[held]).max() > 1e-3  # unheld mending would move them
    kept = _unflip(vertices, faces, shift, vertices[:, 2], held)
    np.testing.assert_array_equal(kept[held], vertices[held])
