"""Scenes around a grasp: a camera viewpoint, a forearm, a table with clutter, a wall, colours, light.

The grasp lives in the canonical hand frame (see `hands.open_hand`); a scene places it in the
OpenCV camera frame (metres, x right, y down, z forward) with the rigid map `hand_to_camera`, then
builds the static surroundings below and behind it. Viewpoints follow the two kinds of data the
method is trained and tested on: third-person (a fixed camera in front of a person, as in DexYCB,
hand at 0.45-0.9 m) and egocentric (a head-mounted camera looking down at the hand coming from the
bottom of the image, 0.35-0.6 m).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from c2f_core.synth.grasp import Grasp
from c2f_core.synth.objects import FAMILIES, ObjectMesh, random_object
from c2f_core.synth.render import LABEL_BACKGROUND, LABEL_HAND, LABEL_OBJECT, Lighting, SceneMesh

SKIN_TONES = np.array(
    [
        [0.96, 0.80, 0.69],
        [0.93, 0.75, 0.63],
        [0.89, 0.68, 0.55],
        [0.82, 0.60, 0.46],
        [0.72, 0.51, 0.37],
        [0.60, 0.41, 0.29],
        [0.47, 0.31, 0.21],
        [0.36, 0.24, 0.16],
    ]
)
"""Albedo of skin from light to dark (sRGB in [0, 1]); a hand's tone is drawn between neighbours."""

VIEWPOINTS = ("third_person", "egocentric")


@dataclass(frozen=True)
class SceneConfig:
    """Settings of scene composition."""

    egocentric_probability: float = 0.4
    """Chance of an egocentric viewpoint (else third-person)."""
    third_person_distance_m: tuple[float, float] = (0.45, 0.9)
    """Camera-to-grasp distance range for third-person views."""
    egocentric_distance_m: tuple[float, float] = (0.35, 0.6)
    """Camera-to-grasp distance range for egocentric views."""
    distractors: tuple[int, int] = (1, 3)
    """Least and most clutter objects on the table."""
    table_probability: float = 0.9
    """Chance of a table plane under the grasp."""
    sleeve_probability: float = 0.5
    """Chance the forearm wears a sleeve (else bare skin)."""
    forearm_length_m: float = 0.26
    """Length of the forearm drawn from the wrist."""


@dataclass
class HandAppearance:
    """Colours and forearm of one hand, fixed for a whole take."""

    skin: np.ndarray
    """(3,) base skin albedo."""
    palm_lightening: float
    """How much lighter the palm is than the back of the hand (0-0.25)."""
    sleeve: np.ndarray | None
    """(3,) sleeve colour, or None for a bare forearm."""
    object_color: np.ndarray
    """(3,) base albedo of the held object."""
    texture_seed: int
    """Seed of the colour noise textures."""


@dataclass
class Surroundings:
    """Everything in a scene besides the hand, the held object and the forearm (camera frame)."""

    viewpoint: str
    up: np.ndarray
    """(3,) world up direction in the camera frame."""
    meshes: list[SceneMesh]
    """Table, wall and clutter."""
    lighting: Lighting
    background: np.ndarray
    """(3,) RGB where no surface is hit."""
    distractor_families: list[str] = field(default_factory=list)


def smooth_noise(
    points: np.ndarray, rng: np.random.Generator, waves: int = 6, scale_m: tuple[float, float] = (0.01, 0.06)
) -> np.ndarray:
    """A smooth random field in [-1, 1] at `points` (N, 3): a sum of plane waves of wavelength in `scale_m`."""
    directions = rng.normal(size=(waves, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelengths = rng.uniform(*scale_m, size=waves)
    phases = rng.uniform(0, 2 * np.pi, size=waves)
    field_ = np.sin(points @ (directions / wavelengths[:, None] * 2 * np.pi).T + phases).sum(1)
    return field_ / np.sqrt(waves / 2) / 2.0


def random_color(
    rng: np.random.Generator,
    saturation: tuple[float, float] = (0.25, 0.9),
    value: tuple[float, float] = (0.25, 0.95),
) -> np.ndarray:
    """A random albedo (3,) from hue, saturation and value ranges."""
    import colorsys

    return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value)))


def sample_appearance(rng: np.random.Generator, config: SceneConfig) -> HandAppearance:
    """Skin tone, sleeve and held-object colour of a take."""
    position = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(np.floor(position))
    high = min(low + 1, len(SKIN_TONES) - 1)
    skin = SKIN_TONES[low] + (position - low) * (SKIN_TONES[high] - SKIN_TONES[low])
    skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 1)
    sleeve = random_color(rng, (0.0, 0.7), (0.1, 0.85)) if rng.random() < config.sleeve_probability else None
    return HandAppearance(
        skin=skin,
        palm_lightening=rng.uniform(0.05, 0.25),
        sleeve=sleeve,
        object_color=random_color(rng),
        texture_seed=int(rng.integers(2**31)),
    )


def hand_colors(
    rest_normals: np.ndarray, rest_vertices: np.ndarray, appearance: HandAppearance
) -> np.ndarray:
    """Per-vertex skin albedo (V, 3): lighter on the palm (rest normals facing -z), with mottling."""
    palmness = np.clip(-rest_normals[:, 2], 0.0, 1.0) ** 1.5
    noise = smooth_noise(rest_vertices, np.random.default_rng(appearance.texture_seed), scale_m=(0.008, 0.04))
    tone = appearance.skin[None] * (1.0 + 0.04 * noise[:, None])
    pink = np.array([1.0, 0.86, 0.84])
    palm = tone + appearance.palm_lightening * (pink - tone) * 0.8
    return np.clip(tone + palmness[:, None] * (palm - tone), 0, 1)


def object_colors(
    vertices: np.ndarray, base: np.ndarray, rng: np.random.Generator, strength: float = 0.08
) -> np.ndarray:
    """Per-vertex albedo (V, 3) around `base` with a smooth colour-noise texture."""
    noise = smooth_noise(vertices, rng)
    tint = rng.normal(0, 0.03, 3)
    return np.clip(base[None] * (1.0 + strength * noise[:, None]) + tint[None] * noise[:, None], 0, 1)


def wrist_loop(faces: np.ndarray, cap_vertex: int) -> np.ndarray:
    """Vertex ids around the wrist cap (the neighbours of the cap's centre vertex)."""
    rows = faces[np.any(faces == cap_vertex, axis=1)]
    return np.unique(rows[rows != cap_vertex])


def forearm_mesh(
    hand_vertices: np.ndarray,
    loop: np.ndarray,
    direction: np.ndarray,
    length: float,
    rings: int = 12,
    sides: int = 18,
) -> tuple[np.ndarray, np.ndarray]:
    """A closed forearm tube (vertices (N, 3), faces (F, 3)) from the wrist along `direction`, hand frame.

    Its cross-section is an ellipse fitted to the wrist opening, widening by a third towards the
    elbow; it starts 1.5 cm inside the hand so the wrist shows no seam.
    """
    wrist = hand_vertices[loop]
    centre = wrist.mean(0)
    direction = direction / np.linalg.norm(direction)
    width_axis = np.array([0.0, 1.0, 0.0]) - direction[1] * direction
    width_axis /= np.linalg.norm(width_axis)
    depth_axis = np.cross(direction, width_axis)
    half_width = 0.5 * np.ptp(wrist @ width_axis)
    half_depth = 0.5 * np.ptp(wrist @ depth_axis)
    s = np.linspace(-0.015, length, rings)
    growth = 1.0 + 0.33 * np.clip(s / length, 0, 1) ** 0.7
    angles = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    ring_points = (
        centre
        + s[:, None, None] * direction
        + growth[:, None, None]
        * (
            half_width * np.cos(angles)[None, :, None] * width_axis
            + half_depth * np.sin(angles)[None, :, None] * depth_axis
        )
    ).reshape(-1, 3)
    start, end = centre + s[0] * direction, centre + s[-1] * direction
    vertices = np.concatenate([start[None], ring_points, end[None]])
    return vertices, _tube_faces(rings, sides)


def _tube_faces(rings: int, sides: int) -> np.ndarray:
    """Triangles of a closed tube: vertex 0 and the last close its ends, rings of `sides` between."""
    k = np.arange(sides)
    k1 = (k + 1) % sides
    last = 1 + rings * sides
    first_cap = np.stack([np.zeros(sides, int), 1 + k1, 1 + k], 1)
    last_cap = np.stack([np.full(sides, last), 1 + (rings - 1) * sides + k, 1 + (rings - 1) * sides + k1], 1)
    i = np.arange(rings - 1)[:, None]
    a, b = 1 + i * sides + k, 1 + i * sides + k1
    c, d = a + sides, b + sides
    sides_ = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    return np.concatenate([first_cap, last_cap, sides_])


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal columns (primary, secondary made orthogonal, their cross product)."""
    a = primary / np.linalg.norm(primary)
    b = secondary - (secondary @ a) * a
    b /= np.linalg.norm(b)
    return np.stack([a, b, np.cross(a, b)], 1)


def sample_hand_to_camera(
    grasp_points: np.ndarray,
    forearm_dir: np.ndarray,
    viewpoint: str,
    K: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    config: SceneConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """A rigid map (rotation (3, 3), translation (3,)) from the hand frame to the camera frame.

    Egocentric: the forearm comes towards the camera from the bottom of the image, the back of the
    hand mostly towards the camera. Third-person: the forearm leads away from the camera (towards
    the person behind the hand), turned about its axis at random. The centre of `grasp_points` (N, 3, hand frame) lands near the image centre.
    """
    dorsal = np.array([0.0, 0.0, 1.0])
    if viewpoint == "egocentric":
        target_forearm = np.array([rng.uniform(-0.35, 0.25), rng.uniform(0.35, 0.7), -1.0])
        hint = np.array([0.0, -0.3, -1.0])
        roll = rng.uniform(-1.7, 0.6)
        distance = rng.uniform(*config.egocentric_distance_m)
        image_offset = (rng.uniform(-0.15, 0.15), rng.uniform(-0.05, 0.2))
    else:
        # The person stands behind the hand: the forearm leads away from the camera, mostly
        # downwards or sideways in the image.
        target_forearm = np.array([rng.uniform(-1.0, 1.0), rng.uniform(-0.4, 1.0), rng.uniform(0.2, 1.0)])
        target_forearm /= np.linalg.norm(target_forearm)
        hint = rng.normal(size=3)
        roll = 0.0
        distance = rng.uniform(*config.third_person_distance_m)
        image_offset = (rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15))
    hint = hint - (hint @ target_forearm) * target_forearm / (target_forearm @ target_forearm)
    hand_axes = _frame(forearm_dir, dorsal)
    camera_axes = _frame(target_forearm, hint)
    rotation = camera_axes @ hand_axes.T
    rotation = Rotation.from_rotvec(camera_axes[:, 0] * roll).as_matrix() @ rotation
    centre_hand = 0.5 * (grasp_points.min(0) + grasp_points.max(0))
    width, height = size
    u = K[0, 2] + image_offset[0] * width
    v = K[1, 2] + image_offset[1] * height
    ray = np.linalg.solve(K, np.array([u, v, 1.0]))
    centre_camera = ray / np.linalg.norm(ray) * distance
    return rotation, centre_camera - rotation @ centre_hand


def grid_plane(
    centre: np.ndarray, axis_a: np.ndarray, axis_b: np.ndarray, half: float, cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """A square grid (vertices, faces) of side 2*half centred at `centre`, spanned by unit axes a, b."""
    t = np.linspace(-half, half, cells + 1)
    a, b = np.meshgrid(t, t, indexing="ij")
    vertices = centre + a.reshape(-1, 1) * axis_a + b.reshape(-1, 1) * axis_b
    idx = np.arange((cells + 1) ** 2).reshape(cells + 1, cells + 1)
    q00, q01, q10, q11 = (
        idx[:-1, :-1].ravel(),
        idx[:-1, 1:].ravel(),
        idx[1:, :-1].ravel(),
        idx[1:, 1:].ravel(),
    )
    faces = np.concatenate([np.stack([q00, q10, q11], 1), np.stack([q00, q11, q01], 1)])
    return vertices, faces


def facing(vertices: np.ndarray, faces: np.ndarray, towards: np.ndarray) -> np.ndarray:
    """Flip `faces` so their normals point to the half-space containing point `towards`."""
    corners = vertices[faces[:1]]
    normal = np.cross(corners[0, 1] - corners[0, 0], corners[0, 2] - corners[0, 0])
    if normal @ (towards - corners[0, 0]) < 0:
        return faces[:, ::-1].copy()
    return faces


def up_direction(pitch: float, roll: float) -> np.ndarray:
    """World up (3,) in the camera frame of a camera pitched down by `pitch` and rolled by `roll` (radians)."""
    up = np.array([np.sin(roll), -np.cos(roll) * np.cos(pitch), -np.cos(roll) * np.sin(pitch)])
    return up / np.linalg.norm(up)


def table_plane(
    centre: np.ndarray, up: np.ndarray, table_height: float, half_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A table top at height `table_height` along `up` below `centre`, facing the camera.

    Returns vertices, faces, its origin (below `centre`) and its in-plane unit axes a, b; the
    square of side 2 * `half_m` reaches 0.3 m further along b (away from the camera).
    """
    origin = centre - ((centre @ up) - table_height) * up
    axis_a = np.cross(up, [1.0, 0.0, 0.0])
    axis_a /= np.linalg.norm(axis_a)
    axis_b = np.cross(up, axis_a)
    vertices, faces = grid_plane(origin + axis_b * 0.3, axis_a, axis_b, half_m, 40)
    return vertices, facing(vertices, faces, np.zeros(3)), origin, axis_a, axis_b


def build_surroundings(
    group_points: np.ndarray,
    viewpoint: str,
    K: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    config: SceneConfig,
) -> Surroundings:
    """Table, wall, clutter and light around the points `group_points` (N, 3, camera frame) of the
    hand, forearm and held object (over a whole sequence, so the table stays below every frame)."""
    pitch = rng.uniform(0.7, 1.2) if viewpoint == "egocentric" else rng.uniform(0.15, 0.7)
    up = up_direction(pitch, rng.normal(0, 0.08))
    meshes: list[SceneMesh] = []
    families: list[str] = []
    centre = group_points.mean(0)
    lowest = float((group_points @ up).min())
    table_height = lowest - rng.uniform(0.03, 0.25)
    has_table = rng.random() < config.table_probability and table_height < -0.1
    if has_table:
        # The table: a textured plane under the grasp, centred below it.
        vertices, faces, _, axis_a, axis_b = table_plane(centre, up, table_height, 1.2)
        base = random_color(rng, (0.1, 0.6), (0.3, 0.9))
        grain = np.sin(
            (vertices @ axis_a) * rng.uniform(30, 120) + 3 * smooth_noise(vertices, rng, scale_m=(0.1, 0.5))
        )
        colors = base[None] * (
            1 + 0.06 * grain[:, None] + 0.08 * smooth_noise(vertices, rng, scale_m=(0.05, 0.4))[:, None]
        )
        meshes.append(
            SceneMesh(
                "table", vertices, faces, colors, LABEL_BACKGROUND, smooth=False, roughness=0.5, specular=0.04
            )
        )
        families = _add_clutter(meshes, group_points, up, table_height, K, size, rng, config)
    # The wall: a plane facing the camera somewhere behind the grasp.
    wall_z = float(group_points[:, 2].max()) + rng.uniform(0.3, 2.0)
    tilt = Rotation.from_rotvec(rng.normal(0, 0.25, 3) * [1, 1, 0]).as_matrix()
    normal = tilt @ np.array([0.0, 0.0, -1.0])
    axis_a = tilt @ np.array([1.0, 0.0, 0.0])
    axis_b = np.cross(normal, axis_a)
    vertices, faces = grid_plane(np.array([0.0, 0.0, wall_z]), axis_a, axis_b, 2.5 + wall_z, 24)
    faces = facing(vertices, faces, np.zeros(3))
    wall_color = random_color(rng, (0.0, 0.3), (0.45, 0.95))
    colors = wall_color[None] * (1 + 0.1 * smooth_noise(vertices, rng, scale_m=(0.2, 1.0))[:, None])
    meshes.append(
        SceneMesh(
            "wall", vertices, faces, colors, LABEL_BACKGROUND, smooth=False, roughness=0.9, specular=0.0
        )
    )

    travel = -up * rng.uniform(0.6, 1.0) + rng.normal(0, 0.5, 3) + np.array([0.0, 0.0, rng.uniform(0.2, 0.8)])
    lighting = Lighting(
        direction=travel / np.linalg.norm(travel),
        intensity=float(rng.uniform(2.0, 5.0)),
        ambient=np.full(3, rng.uniform(0.2, 0.45)) * (1 + rng.normal(0, 0.05, 3)),
        color=np.clip(1 + rng.normal(0, 0.06, 3), 0.8, 1.1),
    )
    return Surroundings(viewpoint, up, meshes, lighting, wall_color * 0.5, families)


def _add_clutter(
    meshes: list[SceneMesh],
    group_points: np.ndarray,
    up: np.ndarray,
    table_height: float,
    K: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    config: SceneConfig,
) -> list[str]:
    """Put 1-3 random objects on the table, in view and clear of the grasp; returns their families."""
    group_centre = 0.5 * (group_points.min(0) + group_points.max(0))
    group_radius = float(np.linalg.norm(group_points - group_centre, axis=1).max())
    placed: list[tuple[np.ndarray, float]] = [(group_centre, group_radius)]
    families = []
    count = int(rng.integers(config.distractors[0], config.distractors[1] + 1))
    for index in range(count):
        obj = random_object(rng, FAMILIES)
        for _ in range(15):
            hit = table_point(K, size, up, table_height, rng, 0.3)
            if hit is None:
                continue
            rotation = resting_rotation(obj, up, rng)
            vertices = obj.vertices @ rotation.T
            vertices = vertices + hit - up * ((vertices @ up).min()) - up * 0.0005
            centre = 0.5 * (vertices.min(0) + vertices.max(0))
            radius = float(np.linalg.norm(vertices - centre, axis=1).max())
            if all(np.linalg.norm(centre - c) > radius + r + 0.02 for c, r in placed):
                placed.append((centre, radius))
                colors = object_colors(vertices, random_color(rng), rng)
                meshes.append(
                    SceneMesh(
                        f"clutter{index}",
                        vertices,
                        obj.faces,
                        colors,
                        LABEL_BACKGROUND,
                        obj.smooth,
                        roughness=rng.uniform(0.2, 0.8),
                        specular=rng.uniform(0.0, 0.3),
                    )
                )
                families.append(obj.family)
                break
    return families


def table_point(
    K: np.ndarray,
    size: tuple[int, int],
    up: np.ndarray,
    table_height: float,
    rng: np.random.Generator,
    top_fraction: float,
) -> np.ndarray | None:
    """Where the ray through a random pixel (below `top_fraction` of the image height) meets the
    table plane at `table_height` along `up`, 0.25-2.5 m away; None when it does not."""
    width, height = size
    ray = np.linalg.solve(
        K, np.array([rng.uniform(0, width), rng.uniform(top_fraction * height, height), 1.0])
    )
    along = ray @ up
    if along > -1e-3:
        return None
    hit = ray * (table_height / along)
    return hit if 0.25 < np.linalg.norm(hit) < 2.5 else None


def resting_rotation(obj: ObjectMesh, up: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rotation standing `obj` upright on its base (z up) or, sometimes, lying, spun about `up`."""
    upright = obj.family in ("cylinder", "mug", "cup", "bowl", "bottle", "cone") and rng.random() < 0.8
    if upright:
        base = Rotation.align_vectors(up[None], np.array([[0.0, 0.0, 1.0]]))[0]
    elif obj.family in ("box", "random_mesh", "torus"):
        # Rest on the face spanned by the two longest sides.
        base = Rotation.align_vectors(up[None], np.array([[0.0, 0.0, 1.0]]))[0]
        order = np.argsort(obj.extents)
        axes = np.eye(3)[[order[2], order[1], order[0]]].T
        if np.linalg.det(axes) < 0:
            axes[:, 2] *= -1
        base = base * Rotation.from_matrix(axes.T)
    else:
        base = Rotation.from_rotvec(rng.normal(size=3))
    spin = Rotation.from_rotvec(up * rng.uniform(0, 2 * np.pi))
    return (spin * base).as_matrix()


def grasp_meshes(
    grasp: Grasp,
    obj: ObjectMesh,
    hand_faces: np.ndarray,
    forearm: tuple[np.ndarray, np.ndarray],
    hand_albedo: np.ndarray,
    object_albedo: np.ndarray,
    forearm_albedo: np.ndarray,
    rotation: np.ndarray,
    translation: np.ndarray,
    hand_vertices: np.ndarray | None = None,
) -> list[SceneMesh]:
    """The hand, held object and forearm as scene meshes in the camera frame (hand frame mapped by
    `rotation`, `translation`); `hand_vertices` (V, 3, hand frame) overrides the grasp's hand."""
    hand = grasp.hand_vertices if hand_vertices is None else hand_vertices
    to_camera = lambda p: p @ rotation.T + translation
    object_vertices = to_camera(grasp.object_to_hand(obj.vertices))
    return [
        SceneMesh(
            "hand",
            to_camera(hand),
            hand_faces,
            hand_albedo,
            LABEL_HAND,
            True,
            roughness=0.55,
            specular=0.1,
            wrap=0.35,
        ),
        SceneMesh(
            "object",
            object_vertices,
            obj.faces,
            object_albedo,
            LABEL_OBJECT,
            obj.smooth,
            roughness=0.35,
            specular=0.25,
        ),
        SceneMesh(
            "forearm",
            to_camera(forearm[0]),
            forearm[1],
            forearm_albedo,
            LABEL_BACKGROUND,
            True,
            roughness=0.8,
            wrap=0.2,
        ),
    ]
