"""Tests for left-right mirroring: the mirrored image is the image of the mirrored scene, round trips."""

import numpy as np

from c2f_core.geometry.camera import project
from c2f_core.geometry.mirror import mirror_box, mirror_faces, mirror_image, mirror_intrinsics, mirror_points

K = np.array([[500.0, 0.0, 300.3], [0.0, 510.0, 240.7], [0.0, 0.0, 1.0]])
WIDTH = 640


def test_mirrored_points_project_to_mirrored_pixels():
    points = np.random.default_rng(0).uniform([-0.2, -0.2, 0.5], [0.2, 0.2, 1.0], (50, 3))
    uv, _ = project(points, K)
    uv_m, _ = project(mirror_points(points), mirror_intrinsics(K, WIDTH))
    np.testing.assert_allclose(uv_m[:, 0], WIDTH - 1 - uv[:, 0], atol=1e-9)
    np.testing.assert_allclose(uv_m[:, 1], uv[:, 1], atol=1e-9)


def test_every_mirror_is_its_own_inverse():
    image = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    np.testing.assert_array_equal(mirror_image(mirror_image(image)), image)
    assert mirror_image(image)[0, 0, 0] == image[0, 2, 0]
    np.testing.assert_allclose(mirror_intrinsics(mirror_intrinsics(K, WIDTH), WIDTH), K)
    box = (10.0, 20.0, 110.0, 90.0)
    assert mirror_box(box, WIDTH) == (530.0, 20.0, 630.0, 90.0)
    assert mirror_box(mirror_box(box, WIDTH), WIDTH) == box
    faces = np.array([[0, 1, 2]])
    np.testing.assert_array_equal(mirror_faces(faces), [[2, 1, 0]])


def test_mirrored_triangle_keeps_its_outward_normal():
    triangle = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [0.0, 0.1, 1.0]])
    normal = np.cross(triangle[1] - triangle[0], triangle[2] - triangle[0])
    mirrored = mirror_points(triangle)[mirror_faces(np.array([[0, 1, 2]]))[0]]
    normal_m = np.cross(mirrored[1] - mirrored[0], mirrored[2] - mirrored[0])
    np.testing.assert_allclose(normal_m, mirror_points(normal))
