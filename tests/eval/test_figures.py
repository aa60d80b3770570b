import numpy as np
import trimesh

from c2f_core.eval.figures import HAND_RGB, draw_meshes, label_panel, side_by_side
from c2f_core.io.visual import depth_to_rgb

K = np.array([[200.0, 0, 80], [0, 200.0, 60], [0, 0, 1]])


def test_mesh_is_drawn_where_it_projects():
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.05)
    sphere.apply_translation([0, 0, 0.5])
    image = np.zeros((120, 160, 3), np.uint8)
    out = draw_meshes(image, [(sphere.vertices, sphere.faces, HAND_RGB)], K, alpha=1.0)
    painted = out.sum(-1) > 0
    rows, cols = np.nonzero(painted)
    assert abs(cols.mean() - 80) < 1.5 and abs(rows.mean() - 60) < 1.5
    radius_px = 200 * 0.05 / 0.5
    assert abs(painted.sum() - np.pi * radius_px**2) < 0.15 * np.pi * radius_px**2
    assert out[60, 80, 0] > out[60, 80, 2]  # hand colour, lit facing the camera


def test_depth_colours_and_panels():
    depth = np.full((10, 12), 0.5, np.float32)
    depth[0, 0] = 0
    rgb = depth_to_rgb(depth)
    assert rgb.shape == (10, 12, 3) and rgb[0, 0].sum() == 0 and rgb[5, 5].sum() > 0
    joined = side_by_side([label_panel(rgb, "a"), np.zeros((20, 5, 3), np.uint8)])
    assert joined.shape == (20, 24 + 4 + 5, 3)  # the shorter panel is scaled to the tallest
