"""Surroundings of the "real" look: a room, a cloth-covered table with 2-6 objects, varied lights.

Built to resemble tabletop captures such as DexYCB and HO-3D and egocentric ones: the camera
0.5-1.2 m from the hand looking down at a table (third person) or 0.3-0.6 m from the wearer's eyes;
the table top under the hand, sometimes carrying the held object (reaching and grasping) with
other objects beside it, some touching it; behind the table, furniture and a wall of a room. Every
surface gets a per-pixel pattern (`synth.patterns`: cloths, printed labels, wallpaper). Light comes
from `synth.lighting.sample_rig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from c2f_core.synth import patterns
from c2f_core.synth.lighting import LightRig, sample_rig
from c2f_core.synth.objects import FAMILIES, random_object
from c2f_core.synth.render import LABEL_BACKGROUND, SceneMesh
from c2f_core.synth.scene import (
    facing,
    grid_plane,
    random_color,
    resting_rotation,
    table_plane,
    table_point,
    up_direction,
)


@dataclass(frozen=True)
class RealSceneConfig:
    """Settings of the real look's scenes."""

    third_person_distance_m: tuple[float, float] = (0.5, 1.2)
    """Camera-to-grasp distance of third-person views (DexYCB's cameras sit at about 0.8-1 m)."""
    egocentric_distance_m: tuple[float, float] = (0.3, 0.6)
    image_offset: float = 0.3
    """The grasp's centre lands within +-this fraction of the image size from the centre."""
    distractors: tuple[int, int] = (2, 6)
    """Least and most other objects on the table."""
    touching_probability: float = 0.5
    """Chance that an object on the table touches the held one when that rests on the table."""
    reach_probability: float = 0.25
    """Chance that the hand is reaching (fingers opened, 3-20 cm from the object on the table)."""
    rest_probability: float = 0.35
    """Chance that the held object still rests on the table top while grasped."""
    forearm_length_m: tuple[float, float] = (0.24, 0.42)
    """Forearm drawn from the wrist: to the elbow, or long enough to leave the image."""
    stereo_probability: float = 0.8
    """Chance of the active-stereo depth model (else the LiDAR model)."""


@dataclass
class RealSurroundings:
    """Everything besides the hand, held object and forearm, in the camera frame."""

    viewpoint: str
    up: np.ndarray
    meshes: list[SceneMesh]
    rig: LightRig
    background: np.ndarray
    """(3,) sRGB where nothing was hit."""
    distractor_families: list[str] = field(default_factory=list)


def _to_local(origin: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """(3, 4) map from the camera frame into the frame with `origin` and orthonormal column `axes`."""
    return np.concatenate([axes.T, -(axes.T @ origin)[:, None]], 1)


def _patterned(
    name: str, vertices: np.ndarray, faces: np.ndarray, pattern: patterns.Pattern, to_local: np.ndarray, **kw
) -> SceneMesh:
    """A background mesh whose vertex colours preview its per-pixel pattern."""
    local = vertices @ to_local[:, :3].T + to_local[:, 3]
    colors = pattern(local)
    return SceneMesh(
        name, vertices, faces, colors, LABEL_BACKGROUND, pattern=pattern, to_local=to_local, **kw
    )


def sample_up(viewpoint: str, rng: np.random.Generator) -> np.ndarray:
    """World up in the camera frame: the camera looks down at the table, steeper when egocentric."""
    pitch = rng.uniform(0.7, 1.3) if viewpoint == "egocentric" else rng.uniform(0.3, 1.0)
    return up_direction(pitch, rng.normal(0, 0.1))


def build_real_surroundings(
    hand_points: np.ndarray,
    object_points: np.ndarray,
    viewpoint: str,
    up: np.ndarray,
    K: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    config: RealSceneConfig,
    resting: bool,
) -> RealSurroundings:
    """Table, clutter, furniture, wall and lights around hand (+forearm) and object points (camera frame).

    `resting`: put the table top at the held object's base when nothing of the hand or arm is lower.
    """
    group = np.concatenate([hand_points, object_points])
    centre = group.mean(0)
    object_low = float((object_points @ up).min())
    hand_low = float((hand_points @ up).min())
    can_rest = resting and hand_low > object_low + 0.004
    table_height = object_low - 0.0005 if can_rest else min(object_low, hand_low) - rng.uniform(0.01, 0.25)
    meshes: list[SceneMesh] = []
    # The table: a patterned plane under the grasp.
    vertices, faces, origin, axis_a, axis_b = table_plane(centre, up, table_height, 1.4)
    cloth = patterns.cloth_pattern(rng)
    table_frame = _to_local(origin, np.stack([axis_a, axis_b, up], 1))
    roughness = float(rng.uniform(0.4, 0.95))
    meshes.append(
        _patterned(
            "table", vertices, faces, cloth, table_frame, smooth=False, roughness=roughness, specular=0.05
        )
    )
    families = _add_objects(
        meshes, group, object_points if can_rest else None, up, table_height, K, size, rng, config
    )
    far = float(group[:, 2].max())
    _add_room(meshes, far, up, table_height, rng)
    rig = sample_rig(rng, up)
    background = random_color(rng, (0.0, 0.3), (0.1, 0.6))
    return RealSurroundings(viewpoint, up, meshes, rig, background, families)


def _add_objects(
    meshes: list[SceneMesh],
    group: np.ndarray,
    held: np.ndarray | None,
    up: np.ndarray,
    table_height: float,
    K: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    config: RealSceneConfig,
) -> list[str]:
    """Put objects on the table, clear of the hand and object; some touch the held object when
    `held` (its points, resting on the table) is given. Returns their families."""
    group_centre = 0.5 * (group.min(0) + group.max(0))
    group_radius = float(np.linalg.norm(group - group_centre, axis=1).max())
    placed: list[tuple[np.ndarray, float]] = []
    families = []
    count = int(rng.integers(config.distractors[0], config.distractors[1] + 1))
    for index in range(count):
        obj = random_object(rng, FAMILIES)
        touching = held is not None and rng.random() < config.touching_probability
        for _ in range(20):
            rotation = resting_rotation(obj, up, rng)
            vertices = obj.vertices @ rotation.T
            if touching:
                # Beside the held object: a random direction along the table, pushed out until clear.
                direction = np.cross(up, rng.normal(size=3))
                direction /= np.linalg.norm(direction)
                held_centre = held.mean(0)
                reach = float(np.max((held - held_centre) @ direction)) + float(
                    np.max(-(vertices - vertices.mean(0)) @ direction)
                )
                spot = held_centre + direction * (reach + rng.uniform(0.0, 0.004))
                hit = spot - ((spot @ up) - table_height) * up
            else:
                hit = table_point(K, size, up, table_height, rng, 0.2)
                if hit is None:
                    continue
            vertices = vertices - vertices.mean(0) + hit
            vertices = vertices - up * ((vertices @ up).min() - table_height) - up * 0.0005
            centre = 0.5 * (vertices.min(0) + vertices.max(0))
            radius = float(np.linalg.norm(vertices - centre, axis=1).max())
            clear_of_group = (
                _min_distance(vertices, group) > 0.003
                if touching
                else (np.linalg.norm(centre - group_centre) > radius + group_radius + 0.01)
            )
            clear = clear_of_group and all(np.linalg.norm(centre - c) > radius + r + 0.005 for c, r in placed)
            if clear:
                placed.append((centre, radius))
                axes = rotation
                base = random_color(rng)
                pattern = patterns.printed_label_pattern(rng, np.array([0.0, 0.0, 1.0]), base)
                to_local = _to_local(centre, axes)
                meshes.append(
                    _patterned(
                        f"clutter{index}",
                        vertices,
                        obj.faces,
                        pattern,
                        to_local,
                        smooth=obj.smooth,
                        roughness=float(rng.uniform(0.2, 0.8)),
                        specular=float(rng.uniform(0.0, 0.35)),
                    )
                )
                families.append(obj.family)
                break
    return families


def _min_distance(points: np.ndarray, others: np.ndarray) -> float:
    """Smallest distance between two point sets (vertex to vertex; fine for a clearance test)."""
    from scipy.spatial import cKDTree

    distances, _ = cKDTree(others).query(points, k=1)
    return float(distances.min())


def _box(centre: np.ndarray, axes: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A box mesh (vertices, faces) with column `axes` and half sizes `half`."""
    import trimesh

    box = trimesh.creation.box(extents=2 * half)
    return box.vertices @ axes.T + centre, np.asarray(box.faces)


def _add_room(
    meshes: list[SceneMesh], far: float, up: np.ndarray, table_height: float, rng: np.random.Generator
) -> None:
    """A wall 1-3.5 m behind the grasp and 1-4 pieces of furniture between them."""
    wall_z = far + rng.uniform(1.0, 3.5)
    tilt = Rotation.from_rotvec(rng.normal(0, 0.25, 3) * [1, 1, 0]).as_matrix()
    normal = tilt @ np.array([0.0, 0.0, -1.0])
    axis_a = tilt @ np.array([1.0, 0.0, 0.0])
    axis_b = np.cross(normal, axis_a)
    centre = np.array([0.0, 0.0, wall_z])
    vertices, faces = grid_plane(centre, axis_a, axis_b, 2.5 + wall_z, 24)
    faces = facing(vertices, faces, np.zeros(3))
    frame = _to_local(centre, np.stack([axis_a, axis_b, normal], 1))
    meshes.append(
        _patterned(
            "wall",
            vertices,
            faces,
            patterns.wall_pattern(rng),
            frame,
            smooth=False,
            roughness=0.9,
            specular=0.0,
        )
    )
    side = np.cross(up, [0.0, 0.0, 1.0])
    side /= max(np.linalg.norm(side), 1e-9)
    for index in range(int(rng.integers(1, 5))):
        half = np.array([rng.uniform(0.15, 0.6), rng.uniform(0.15, 0.6), rng.uniform(0.2, 0.8)])
        depth = rng.uniform(far + 0.4, wall_z - 0.2) if wall_z - far > 0.7 else wall_z - 0.3
        lateral = rng.uniform(-1.5, 1.5)
        base = np.array([0.0, 0.0, depth]) + side * lateral
        base = base - ((base @ up) - (table_height + rng.uniform(-0.8, 0.3))) * up
        spin = Rotation.from_rotvec(up * rng.uniform(0, np.pi)).as_matrix()
        axes = spin @ np.stack([side, np.cross(up, side), up], 1)
        centre_box = base + up * half[2]
        vertices, faces = _box(centre_box, axes, half)
        pattern = patterns.wall_pattern(rng) if rng.random() < 0.5 else patterns.cloth_pattern(rng)
        meshes.append(
            _patterned(
                f"furniture{index}",
                vertices,
                faces,
                pattern,
                _to_local(centre_box, axes),
                smooth=False,
                roughness=0.7,
                specular=0.05,
            )
        )
