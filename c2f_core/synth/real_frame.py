"""Frames of the "real" look (`c2f synth --look real`): what a real tabletop or egocentric capture shows.

Against the classic look: the camera sits farther (DexYCB-like 0.5-1.2 m) and the hand lands
anywhere in the image; a longer forearm, bare or sleeved, labelled as its own class in the mask
(`LABEL_FOREARM`) while the ground truth stays the hand up to the wrist; some frames reach for the
object on the table with opened fingers, some grasp it where it stands, with other objects beside
it; cloths, labels, skin and walls get per-pixel patterns; several lights cast shadows; colour gets
noise, blur and white balance of a real camera, depth an active-stereo or LiDAR model
(`synth.stereo`, `synth.lidar`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from c2f_core.synth import patterns
from c2f_core.synth.lidar import lidar_depth_filtered
from c2f_core.synth.lighting import LightRig, shade, visibility
from c2f_core.synth.real_scene import RealSceneConfig, build_real_surroundings, sample_up
from c2f_core.synth.render import (
    LABEL_FOREARM,
    LABEL_HAND,
    LABEL_OBJECT,
    Renderer,
    RenderOutput,
    SceneMesh,
    coverage,
    view_score,
)
from c2f_core.synth.scene import SceneConfig, grasp_meshes, sample_hand_to_camera
from c2f_core.synth.sensor import SensorConfig, color_sensor, depth_sensor
from c2f_core.synth.stereo import active_stereo_depth

if TYPE_CHECKING:
    from c2f_core.synth.generate import TakeGenerator, _Actor

MIN_VISIBLE_FRACTION = 0.3
MIN_VISIBLE_PIXELS = 150
"""Real-look hands are smaller (farther away): a frame needs at least this many hand pixels."""


def deferred_render(
    renderer: Renderer, meshes: list[SceneMesh], rig: LightRig, background: np.ndarray, centre: np.ndarray
) -> tuple[RenderOutput, np.ndarray]:
    """Render with per-pixel patterns and shadows; returns the render and the albedo luminance (H, W)."""
    gbuffer = renderer.gbuffer(meshes)
    points = renderer.points(gbuffer.depth_m)
    albedo = gbuffer.albedo.copy()
    for index, item in enumerate(meshes):
        if item.pattern is None or item.to_local is None:
            continue
        where = gbuffer.index == index
        if not where.any():
            continue
        local = points[where].astype(np.float64) @ item.to_local[:, :3].T + item.to_local[:, 3]
        values = np.clip(item.pattern(local), 0.0, 1.0)
        albedo[where] = albedo[where] * values if item.pattern_multiplies else values
    materials = np.array([[m.roughness, m.specular, m.wrap] for m in meshes], dtype=np.float64)
    hit = gbuffer.index >= 0
    visibilities = []
    for light in rig.lights:
        vis = np.ones(gbuffer.depth_m.shape)
        if light.shadow:
            vis[hit] = visibility(points[hit].astype(np.float64), light, renderer, meshes, centre, 0.9)
        visibilities.append(vis)
    color = shade(gbuffer, albedo, points, materials, rig, visibilities, background)
    labels = np.array([m.label for m in meshes] + [0], dtype=np.uint8)
    mask = labels[gbuffer.index.astype(np.int64)]  # index -1 picks the trailing background label
    unoccluded = {
        label: sum(
            coverage(m.vertices, m.faces, renderer.K, (renderer.width, renderer.height))
            for m in meshes
            if m.label == label
        )
        for label in (LABEL_HAND, LABEL_OBJECT)
    }
    luminance = albedo @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    return RenderOutput(color, gbuffer.depth_m, mask, unoccluded), luminance


def camera_color(color: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real camera's colour: exposure and white balance, defocus or motion blur, noise, vignetting."""
    image = color_sensor(color, rng, SensorConfig(color_noise=float(rng.uniform(1.5, 6.0))))
    if rng.random() < 0.3:
        length = int(rng.integers(3, 10))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1.0 / length
        rotation = cv2.getRotationMatrix2D(
            ((length - 1) / 2, (length - 1) / 2), float(rng.uniform(0, 180)), 1.0
        )
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        image = cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))
    height, width = image.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((x - width / 2) / width) ** 2 + ((y - height / 2) / height) ** 2
    vignette = 1.0 - rng.uniform(0.0, 0.6) * r2
    return np.clip(image * vignette[..., None], 0, 255).astype(np.uint8)


def sensor_depth(
    depth_m: np.ndarray,
    luminance: np.ndarray,
    K: np.ndarray,
    rng: np.random.Generator,
    config: RealSceneConfig,
) -> np.ndarray:
    """Depth as an active-stereo camera (most frames) or a phone LiDAR would report it."""
    if rng.random() < config.stereo_probability:
        return active_stereo_depth(depth_m, K, rng, albedo=luminance)
    return lidar_depth_filtered(depth_m, K, rng)


def _reach(
    gen: TakeGenerator, actor: _Actor, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Opened fingers and an offset away from the object: (hand (V, 3), joints (21, 3), angles, offset (3,))."""
    grasp = actor.grasp
    angles = grasp.angles * rng.uniform(0.15, 0.7)
    hands, joints = gen._pose_hand(grasp, angles[None])
    object_centre = grasp.object_to_hand(actor.obj.vertices).mean(0)
    away = grasp.hand_vertices.mean(0) - object_centre
    away = away / max(np.linalg.norm(away), 1e-9) + rng.normal(0, 0.3, 3)
    offset = away / np.linalg.norm(away) * rng.uniform(0.03, 0.2)
    return hands[0] + offset, joints[0] + offset, angles, offset


def real_single_frame(gen: TakeGenerator, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Frame `index` of a real-look take of independent frames: colour, depth (m), GT."""
    config = gen.config.real
    rng = np.random.default_rng([gen.seed, index])
    actor = gen._actor(rng, forearm_length_m=float(rng.uniform(*config.forearm_length_m)))
    grasp = actor.grasp
    hand, joints, angles, offset = grasp.hand_vertices, grasp.hand_joints, grasp.angles, None
    reaching = rng.random() < config.reach_probability
    if reaching:
        hand, joints, angles, offset = _reach(gen, actor, rng)
    forearm = (actor.forearm[0] + (0 if offset is None else offset), actor.forearm[1])
    object_hand = grasp.object_to_hand(actor.obj.vertices)
    forearm_dir = forearm[0][-1] - forearm[0][0]
    scene = SceneConfig(
        third_person_distance_m=config.third_person_distance_m,
        egocentric_distance_m=config.egocentric_distance_m,
    )
    skin = patterns.skin_detail(rng, actor.appearance.skin)
    skin_scale = 1.0 / np.maximum(actor.appearance.skin, 1e-3)
    label = patterns.printed_label_pattern(rng, actor.obj.grasp_axis, actor.appearance.object_color)
    sleeve = patterns.cloth_pattern(rng) if actor.appearance.sleeve is not None else None
    resting = reaching or rng.random() < config.rest_probability
    best = None
    for _ in range(6):
        viewpoint = "egocentric" if rng.random() < gen.config.scene.egocentric_probability else "third_person"
        rotation, translation = sample_hand_to_camera(
            np.concatenate([hand, object_hand]), forearm_dir, viewpoint, gen.K, gen.size, rng, scene
        )
        # The whole image, not the classic look's middle: shift the grasp by up to `image_offset`.
        shift = rng.uniform(-1, 1, 2) * config.image_offset * np.array(gen.size) / gen.K[[0, 1], [0, 1]]
        translation = translation + np.array([shift[0], shift[1], 0.0]) * translation[2]
        to_camera = lambda p, r=rotation, t=translation: p @ r.T + t
        up = sample_up(viewpoint, rng)
        surroundings = build_real_surroundings(
            np.concatenate([to_camera(hand), to_camera(forearm[0])]),
            to_camera(object_hand),
            viewpoint,
            up,
            gen.K,
            gen.size,
            rng,
            config,
            resting,
        )
        meshes = grasp_meshes(
            grasp,
            actor.obj,
            gen.hand_faces,
            forearm,
            actor.hand_albedo,
            actor.object_albedo,
            actor.forearm_albedo,
            rotation,
            translation,
            hand_vertices=hand,
        )
        inverse = np.concatenate([rotation.T, -(rotation.T @ translation)[:, None]], 1)
        object_frame = np.concatenate(
            [grasp.object_rotation.T, -(grasp.object_rotation.T @ grasp.object_translation)[:, None]], 1
        )
        object_to_local = object_frame @ np.vstack([inverse, [0, 0, 0, 1]])
        meshes[0].pattern, meshes[0].to_local, meshes[0].pattern_multiplies = (
            lambda p: skin(p) * skin_scale,
            inverse,
            True,
        )
        meshes[1].pattern, meshes[1].to_local = label, object_to_local
        meshes[2].label = LABEL_FOREARM
        if sleeve is not None:
            meshes[2].pattern, meshes[2].to_local = sleeve, inverse
        else:
            meshes[2].pattern, meshes[2].to_local, meshes[2].pattern_multiplies = (
                lambda p: skin(p) * skin_scale,
                inverse,
                True,
            )
        centre = to_camera(np.concatenate([hand, object_hand])).mean(0)
        render, luminance = deferred_render(
            gen.renderer, meshes + surroundings.meshes, surroundings.rig, surroundings.background, centre
        )
        score, enough = view_score(render, MIN_VISIBLE_FRACTION, MIN_VISIBLE_PIXELS)
        if best is None or score > best[0]:
            best = (score, rotation, translation, surroundings, render, luminance)
        if enough:
            break
    assert best is not None
    _, rotation, translation, surroundings, render, luminance = best
    if gen.config.sensor.enabled:
        color = camera_color(render.color, rng)
        depth = sensor_depth(render.depth_m, luminance, gen.K, rng, config)
    else:
        color, depth = render.color, depth_sensor(render.depth_m, rng, gen.config.sensor)
    gt = gen._ground_truth(
        actor, rotation, translation, hand, joints, angles, render, surroundings, rng, hand_offset=offset
    )
    gt["look"] = np.str_("real")
    gt["reaching"] = np.bool_(reaching)
    return color, depth, gt
