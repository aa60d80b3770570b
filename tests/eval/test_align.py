"""Tests for c2f_core.eval.align: scale + translation ICP recovers a known transform."""

import numpy as np
import pytest
import trimesh

from c2f_core.eval.align import ScaleTranslation, icp_scale_translation, refine_scale_translation
from c2f_core.geometry.mesh_sdf import sample_surface


def asymmetric_mesh():
    # A capsule with a sphere on one side: no symmetry that lets a shift fit as well as the truth.
    capsule = trimesh.creation.capsule(height=0.08, radius=0.012)
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.02)
    ball.apply_translation([0.02, 0.0, 0.03])
    mesh = trimesh.util.concatenate([capsule, ball])
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def test_recovers_known_scale_and_shift():
    target_vertices, faces = asymmetric_mesh()
    true_scale, true_shift = 1.3, np.array([0.02, -0.01, 0.05])
    source_vertices = (target_vertices - true_shift) / true_scale  # so target = s * source + t
    result = icp_scale_translation(source_vertices, faces, target_vertices, faces)
    assert result.scale == pytest.approx(true_scale, rel=0.005)
    np.testing.assert_allclose(result.translation, true_shift, atol=1e-3)
    np.testing.assert_allclose(result.apply(source_vertices), target_vertices, atol=2e-3)
    assert result.rms_error < 2e-3


def test_iterations_converge_from_a_wrong_start():
    vertices, faces = asymmetric_mesh()
    source, _ = sample_surface(vertices, faces, 5_000, np.random.default_rng(0))
    true_scale, true_shift = 0.7, np.array([0.01, 0.02, -0.03])
    target = true_scale * source + true_shift
    # Start 8% off in scale and 4 mm off in translation; run past the reference's 1 mm stop.
    result = refine_scale_translation(source, target, 0.7 * 1.08, true_shift + 0.004, stop_error=0.0)
    assert result.iterations > 1
    assert result.scale == pytest.approx(true_scale, rel=1e-6)
    np.testing.assert_allclose(result.translation, true_shift, atol=1e-7)


def test_repeatable_with_seed():
    target_vertices, faces = asymmetric_mesh()
    source_vertices = target_vertices * 0.8 + 0.01
    first = icp_scale_translation(source_vertices, faces, target_vertices, faces, num_samples=5_000, seed=1)
    again = icp_scale_translation(source_vertices, faces, target_vertices, faces, num_samples=5_000, seed=1)
    assert first.scale == again.scale and np.array_equal(first.translation, again.translation)


def test_inverse_round_trip():
    transform = ScaleTranslation(2.0, np.array([1.0, -2.0, 0.5]), 0.0, 0)
    points = np.random.default_rng(0).normal(size=(10, 3))
    np.testing.assert_allclose(transform.inverse().apply(transform.apply(points)), points)


def test_empty_mesh_raises():
    vertices, faces = asymmetric_mesh()
    with pytest.raises(ValueError, match="source mesh: empty mesh"):
        icp_scale_translation(np.zeros((0, 3)), np.zeros((0, 3), int), vertices, faces)
