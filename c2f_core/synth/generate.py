"""Generate synthetic hand-object RGB-D takes with full ground truth (`c2f synth`).

Each frame: a random adult hand shape, an object of one of the families in `synth.objects`, a grasp
(`synth.grasp`), a viewpoint and surroundings (`synth.scene`), a render (`synth.render`), the sensor
model (`synth.sensor`) and SDF samples (`geometry.sdf_samples`), written with `io.take.TakeWriter`. In
sequence mode one grasp is carried along a smooth path (`synth.sequence`) in a fixed scene.

Everything is drawn from `numpy.random.default_rng` seeded by (seed, frame) or (seed, "sequence"),
so a seed gives byte-identical files.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import sees
from c2f_core.geometry.mesh_normals import vertex_normals
from c2f_core.geometry.mesh_sdf import MeshSDF
from c2f_core.geometry.sdf_samples import joint_bounds, make_sdf_samples
from c2f_core.hands.open_hand import OpenHandLayer
from c2f_core.io.intrinsics import Intrinsics
from c2f_core.io.take import TakeWriter
from c2f_core.progress import progress
from c2f_core.synth.grasp import Grasp, GraspConfig, GraspSynthesizer
from c2f_core.synth.objects import FAMILIES, ObjectMesh, random_object
from c2f_core.synth.real_scene import RealSceneConfig, RealSurroundings
from c2f_core.synth.render import LABEL_HAND, LABEL_OBJECT, Renderer, RenderOutput, view_score
from c2f_core.synth.scene import (
    HandAppearance,
    SceneConfig,
    Surroundings,
    build_surroundings,
    forearm_mesh,
    grasp_meshes,
    hand_colors,
    object_colors,
    sample_appearance,
    sample_hand_to_camera,
    wrist_loop,
)
from c2f_core.synth.sensor import SensorConfig, color_gain, color_sensor, depth_sensor
from c2f_core.synth.sequence import Motion, MotionConfig, reach_plan, smooth_motion, turn_axis

LOOKS = ("classic", "real")
SEQUENCE_FPS = 30.0
INTRINSICS_STREAM = 0x1C
REACH_STREAM = 0x4EAC
"""Random stream of a sequence's reach: its own, so a take without one draws as before."""
"""Second seed word of the random stream that draws a take's intrinsics."""
MIN_VISIBLE_FRACTION = 0.3
"""A single frame is redrawn (new viewpoint) when less of the hand or object than this is visible."""
MIN_VISIBLE_PIXELS = 400
"""... or when the hand covers fewer pixels than this."""


@dataclass(frozen=True)
class SynthConfig:
    """Settings of take generation."""

    sdf_samples_per_mesh: int = 8000
    """SDF samples stored per mesh and frame (method A.5 stores up to 20,000)."""
    families: tuple[str, ...] = FAMILIES
    """Object families to draw the held object from."""
    depth_scale: float = 0.001
    """Metres per stored depth unit."""
    grasp: GraspConfig = field(default_factory=GraspConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    look: str = "classic"
    """"classic" (the bundled model's original data) or "real" (`synth.real_frame`: real captures' look)."""
    real: RealSceneConfig = field(default_factory=RealSceneConfig)


def sample_intrinsics(
    rng: np.random.Generator, size: tuple[int, int], depth_scale: float = 0.001
) -> Intrinsics:
    """RealSense-like pinhole intrinsics for an image of `size` (width, height).

    fx ~ 600-640 px at 640 px width (scaled with the width), fy within 0.5% of fx, principal point
    within a few pixels of the image centre (pixel-centre convention: the centre is (W - 1) / 2).
    """
    width, height = size
    fx = rng.uniform(600.0, 640.0) * width / 640.0
    fy = fx * rng.uniform(0.995, 1.005)
    cx = (width - 1) / 2 + rng.normal(0, 4.0) * width / 640.0
    cy = (height - 1) / 2 + rng.normal(0, 4.0) * height / 480.0
    return Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height, depth_scale=depth_scale)


@dataclass
class _Actor:
    """The held object, the grasp and the hand's look: what a sequence keeps fixed."""

    obj: ObjectMesh
    object_sdf: MeshSDF
    grasp: Grasp
    appearance: HandAppearance
    forearm: tuple[np.ndarray, np.ndarray]
    hand_albedo: np.ndarray
    object_albedo: np.ndarray
    forearm_albedo: np.ndarray


class TakeGenerator:
    """Makes frames for one take (one image size and one set of intrinsics)."""

    def __init__(self, seed: int, size: tuple[int, int] = (640, 480), config: SynthConfig | None = None):
        """Load the hand, open the renderer, and draw the take's intrinsics from `seed`."""
        width, height = size
        if width < 32 or height < 32:
            raise C2FError(f"image size {width}x{height} is too small (at least 32x32)")
        self.seed = int(seed)
        self.size = (int(width), int(height))
        self.config = config or SynthConfig()
        if self.config.look not in LOOKS:
            raise C2FError(f"unknown look {self.config.look!r} (choose from {', '.join(LOOKS)})")
        unknown = sorted(set(self.config.families) - set(FAMILIES))
        if unknown or not self.config.families:
            raise C2FError(f"unknown object families {unknown} (choose from {', '.join(FAMILIES)})")
        self.intrinsics = sample_intrinsics(
            np.random.default_rng([self.seed, INTRINSICS_STREAM]), self.size, self.config.depth_scale
        )
        self.K = self.intrinsics.K
        self.layer = OpenHandLayer()
        self.grasper = GraspSynthesizer(self.layer, self.config.grasp)
        rest_vertices, _ = self.layer.rest()
        self.hand_faces = self.layer.faces.cpu().numpy()
        self._rest_vertices = rest_vertices[0].cpu().numpy().astype(np.float64)
        self._rest_normals = vertex_normals(self._rest_vertices, self.hand_faces)
        self._wrist_loop = wrist_loop(self.hand_faces, len(self._rest_vertices) - 1)
        self.renderer = Renderer(width, height, self.K)
        self._sequence: _SequenceState | None = None

    def close(self) -> None:
        """Release the renderer."""
        self.renderer.close()

    # -- pieces -------------------------------------------------------------------------------------

    def _actor(self, rng: np.random.Generator, forearm_length_m: float | None = None) -> _Actor:
        obj = random_object(rng, self.config.families)
        object_sdf = MeshSDF(obj.vertices, obj.faces)
        grasp = self.grasper.grasp(obj, rng, sdf=object_sdf)
        appearance = sample_appearance(rng, self.config.scene)
        length = self.config.scene.forearm_length_m if forearm_length_m is None else forearm_length_m
        forearm = self._forearm(grasp, object_sdf, rng, length)
        hand_albedo = hand_colors(self._rest_normals, self._rest_vertices, appearance)
        object_albedo = object_colors(obj.vertices, appearance.object_color, rng)
        sleeve = appearance.sleeve if appearance.sleeve is not None else appearance.skin
        forearm_albedo = np.clip(sleeve[None] * (1 + 0.05 * rng.normal(size=(len(forearm[0]), 1))), 0, 1)
        return _Actor(obj, object_sdf, grasp, appearance, forearm, hand_albedo, object_albedo, forearm_albedo)

    def _forearm(
        self, grasp: Grasp, object_sdf: MeshSDF, rng: np.random.Generator, length_m: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """A forearm (hand frame) at a random wrist angle that keeps clear of the held object."""
        best = None
        for _ in range(8):
            flexion, deviation = rng.uniform(-0.5, 0.4), rng.uniform(-0.25, 0.25)
            direction = np.array([-np.cos(flexion) * np.cos(deviation), np.sin(deviation), np.sin(flexion)])
            mesh = forearm_mesh(grasp.hand_vertices, self._wrist_loop, direction, length_m)
            local = (mesh[0] - grasp.object_translation) @ grasp.object_rotation
            clearance = float(object_sdf(local).min())
            if best is None or clearance > best[0]:
                best = (clearance, mesh)
            if clearance > 0.003:
                break
        assert best is not None
        return best[1]

    def _pose_hand(self, grasp: Grasp, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hand vertices (B, V, 3) and joints (B, 21, 3) in the hand frame for angles (B, 19, 3)."""
        with torch.no_grad():
            angles_t = torch.as_tensor(angles, dtype=self.layer.dtype)
            betas = torch.as_tensor(grasp.betas, dtype=self.layer.dtype)[None].expand(len(angles_t), -1)
            out = self.layer(finger_rotations=self.layer.angles_to_rotations(angles_t), betas=betas)
        return out.vertices.cpu().numpy().astype(np.float64), out.joints.cpu().numpy().astype(np.float64)

    def _ground_truth(
        self,
        actor: _Actor,
        rotation: np.ndarray,
        translation: np.ndarray,
        hand_hand: np.ndarray,
        joints_hand: np.ndarray,
        angles: np.ndarray,
        render: RenderOutput,
        surroundings: Surroundings | RealSurroundings,
        rng: np.random.Generator,
        hand_offset: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """The GT dict of one frame (camera frame, metres; keys of `io.frames.GT_KEYS` and more).

        `hand_offset` (3,, hand frame): how far the hand was moved from its grasp (reaching frames).
        """
        grasp, obj = actor.grasp, actor.obj
        hand_cam = hand_hand @ rotation.T + translation
        object_rotation = rotation @ grasp.object_rotation
        object_translation = rotation @ grasp.object_translation + translation
        object_cam = obj.vertices @ object_rotation.T + object_translation
        sdf = make_sdf_samples(
            hand_cam, self.hand_faces, object_cam, obj.faces, self.config.sdf_samples_per_mesh, rng
        )
        centre, radius = joint_bounds(hand_cam, object_cam)
        _, rest_heads = self.layer.rest(torch.as_tensor(grasp.betas, dtype=self.layer.dtype)[None])
        wrist = rest_heads[0, 0].cpu().numpy().astype(np.float64)
        # The layer turns about the wrist joint: v = R (v_hand - wrist) + wrist + transl.
        if hand_offset is not None:
            wrist = wrist + hand_offset
        hand_transl = translation + rotation @ wrist - wrist
        if hand_offset is not None:
            hand_transl = hand_transl + hand_offset
        visible = {
            label: float(np.count_nonzero(render.mask == label))
            / max(render.label_pixels_unoccluded[label], 1)
            for label in (LABEL_HAND, LABEL_OBJECT)
        }
        return {
            "hand_verts": hand_cam.astype(np.float32),
            "hand_faces": self.hand_faces.astype(np.int32),
            "object_verts": object_cam.astype(np.float32),
            "object_faces": obj.faces.astype(np.int32),
            "hand_joints": (joints_hand @ rotation.T + translation).astype(np.float32),
            "object_center": object_translation.astype(np.float32),
            "mask": render.mask,
            "K": self.K.astype(np.float64),
            **sdf,
            "sdf_norm_center": centre.astype(np.float32),
            "sdf_norm_scale": np.float32(1.0 / radius),
            "object_family": np.str_(obj.family),
            "object_name": np.str_(obj.name),
            "object_rotation": object_rotation.astype(np.float32),
            "hand_model": np.str_("open_hand"),
            "hand_pose": angles.astype(np.float32),
            "hand_global_orient": rotation.astype(np.float32),
            "hand_transl": hand_transl.astype(np.float32),
            "hand_shape": grasp.betas.astype(np.float32),
            "grasp_type": np.str_(grasp.grasp_type),
            "contacts": np.str_(",".join(grasp.contacts)),
            "penetration_mm": np.float32(1000 * grasp.penetration_m),
            "viewpoint": np.str_(surroundings.viewpoint),
            "hand_mask_visible_fraction": np.float32(visible[LABEL_HAND]),
            "object_mask_visible_fraction": np.float32(visible[LABEL_OBJECT]),
        }

    def _render(
        self,
        actor: _Actor,
        rotation: np.ndarray,
        translation: np.ndarray,
        hand_hand: np.ndarray,
        surroundings: Surroundings,
        forearm: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> RenderOutput:
        meshes = grasp_meshes(
            actor.grasp,
            actor.obj,
            self.hand_faces,
            actor.forearm if forearm is None else forearm,
            actor.hand_albedo,
            actor.object_albedo,
            actor.forearm_albedo,
            rotation,
            translation,
            hand_vertices=hand_hand,
        )
        return self.renderer.render(
            meshes + surroundings.meshes, surroundings.lighting, surroundings.background
        )

    def _finish(
        self, render: RenderOutput, rng: np.random.Generator, gain: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        sensor = self.config.sensor
        return color_sensor(render.color, rng, sensor, gain), depth_sensor(render.depth_m, rng, sensor)

    # -- frames -------------------------------------------------------------------------------------

    def single_frame(self, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Frame `index` of a take of independent frames: colour (H, W, 3) uint8, depth (H, W) m, GT."""
        if self.config.look == "real":
            from c2f_core.synth.real_frame import real_single_frame

            return real_single_frame(self, index)
        rng = np.random.default_rng([self.seed, index])
        actor = self._actor(rng)
        group_hand = np.concatenate(
            [actor.grasp.hand_vertices, actor.grasp.object_to_hand(actor.obj.vertices)]
        )
        forearm_dir = actor.forearm[0][-1] - actor.forearm[0][0]
        best = None
        for _ in range(6):
            viewpoint = (
                "egocentric" if rng.random() < self.config.scene.egocentric_probability else "third_person"
            )
            rotation, translation = sample_hand_to_camera(
                group_hand, forearm_dir, viewpoint, self.K, self.size, rng, self.config.scene
            )
            points = np.concatenate([group_hand, actor.forearm[0]]) @ rotation.T + translation
            surroundings = build_surroundings(points, viewpoint, self.K, self.size, rng, self.config.scene)
            render = self._render(actor, rotation, translation, actor.grasp.hand_vertices, surroundings)
            score, enough = view_score(render, MIN_VISIBLE_FRACTION, MIN_VISIBLE_PIXELS)
            if best is None or score > best[0]:
                best = (score, rotation, translation, surroundings, render)
            if enough:
                break
        assert best is not None
        _, rotation, translation, surroundings, render = best
        color, depth = self._finish(render, rng)
        gt = self._ground_truth(
            actor,
            rotation,
            translation,
            actor.grasp.hand_vertices,
            actor.grasp.hand_joints,
            actor.grasp.angles,
            render,
            surroundings,
            rng,
        )
        return color, depth, gt

    def prepare_sequence(self, frames: int) -> None:
        """Draw the grasp, scene and smooth motion of a `frames`-frame sequence; `sequence_frame` renders it."""
        if self.config.look != "classic":
            raise C2FError("--sequence makes classic-look takes only; --look real makes independent frames")
        rng = np.random.default_rng([self.seed, 0x5E0])
        actor = self._actor(rng)
        grasp = actor.grasp
        viewpoint = (
            "egocentric" if rng.random() < self.config.scene.egocentric_probability else "third_person"
        )
        group_hand = np.concatenate([grasp.hand_vertices, grasp.object_to_hand(actor.obj.vertices)])
        forearm_dir = actor.forearm[0][-1] - actor.forearm[0][0]
        rotation0, translation0 = sample_hand_to_camera(
            group_hand, forearm_dir, viewpoint, self.K, self.size, rng, self.config.scene
        )
        group_cam = np.concatenate([group_hand, actor.forearm[0]]) @ rotation0.T + translation0
        pivot = 0.5 * (group_cam.min(0) + group_cam.max(0))
        grasp_cam = group_cam[: len(group_hand)]
        centre = 0.5 * (grasp_cam.min(0) + grasp_cam.max(0))
        turn = (centre, turn_axis(rotation0 @ forearm_dir, centre))
        motion = smooth_motion(frames, SEQUENCE_FPS, pivot, rng, self.config.motion, turn)
        reach = self.config.motion.reach_frames
        if reach and not 0 < reach < frames:
            raise C2FError(f"a reach of {reach} frames needs a sequence of more frames, not {frames}")
        motion = motion.held_until(reach) if reach else motion
        offsets, flexion = reach_plan(  # the reaching hand's distance from its grasp, hand frame
            frames,
            self.config.motion,
            grasp.hand_vertices.mean(0),
            grasp.object_to_hand(actor.obj.vertices).mean(0),
            forearm_dir,
            np.random.default_rng([self.seed, REACH_STREAM]),
            lambda offset: sees(
                motion.apply(reach, (grasp.hand_vertices + offset) @ rotation0.T + translation0).mean(0),
                self.K,
                self.size,
                margin=0.1,
            ),
        )
        arm = np.concatenate([grasp.hand_vertices, actor.forearm[0]])
        swept = np.concatenate(
            [motion.apply(i, group_cam) for i in range(frames)]
            + [motion.apply(i, (arm + offsets[i]) @ rotation0.T + translation0) for i in range(reach)]
        )
        surroundings = build_surroundings(swept, viewpoint, self.K, self.size, rng, self.config.scene)
        angles = grasp.angles[None] * flexion[:, None, None] + motion.finger_offsets
        hands, joints = self._pose_hand(grasp, angles)
        self._sequence = _SequenceState(
            actor,
            surroundings,
            motion,
            rotation0,
            translation0,
            angles,
            hands + offsets[:, None],
            joints + offsets[:, None],
            color_gain(rng),
            offsets if reach else None,
        )

    def sequence_frame(self, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Frame `index` of the sequence drawn by `prepare_sequence`: colour, depth, GT."""
        state = self._sequence
        if state is None:
            raise RuntimeError("call prepare_sequence before sequence_frame")
        frame_rng = np.random.default_rng([self.seed, 0x5E0, index])
        rotation = state.motion.rotations[index] @ state.rotation0
        translation = state.motion.apply(index, state.translation0[None])[0]
        offset = None if state.reach_offsets is None else state.reach_offsets[index]
        arm, faces = state.actor.forearm
        forearm = (arm if offset is None else arm + offset, faces)
        render = self._render(
            state.actor, rotation, translation, state.hands[index], state.surroundings, forearm
        )
        # One exposure and white balance for the whole sequence, as a camera holds them.
        color, depth = self._finish(render, frame_rng, state.gain)
        gt = self._ground_truth(
            state.actor,
            rotation,
            translation,
            state.hands[index],
            state.joints[index],
            state.angles[index],
            render,
            state.surroundings,
            frame_rng,
            hand_offset=offset,
        )
        if offset is not None:
            gt["reaching"] = np.bool_(index < self.config.motion.reach_frames)
        return color, depth, gt


@dataclass
class _SequenceState:
    """What every frame of a sequence shares."""

    actor: _Actor
    surroundings: Surroundings
    motion: Motion
    rotation0: np.ndarray
    translation0: np.ndarray
    angles: np.ndarray
    hands: np.ndarray
    joints: np.ndarray
    gain: np.ndarray
    """(3,) colour gain of the whole sequence."""
    reach_offsets: np.ndarray | None = None
    """(N, 3) the reaching hand's distance from its grasp per frame, hand frame (None: no reach)."""


_WORKER: TakeGenerator | None = None


def _start_worker(seed: int, size: tuple[int, int], config: SynthConfig, sequence_frames: int) -> None:
    """Process-pool initialiser: one generator per worker process."""
    global _WORKER
    torch.set_num_threads(1)
    _WORKER = TakeGenerator(seed, size, config)
    if sequence_frames:
        _WORKER.prepare_sequence(sequence_frames)


def _worker_frame(index: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    assert _WORKER is not None
    return _WORKER.sequence_frame(index) if _WORKER._sequence is not None else _WORKER.single_frame(index)


def generate_take(
    out: str | Path,
    frames: int,
    seed: int,
    sequence: bool = False,
    size: tuple[int, int] = (640, 480),
    quiet: bool = False,
    config: SynthConfig | None = None,
    workers: int = 1,
) -> dict[str, object]:
    """Write a synthetic take of `frames` frames to folder `out`; returns a summary.

    Args:
        out: take folder (created; existing frame files are overwritten).
        frames: number of frames.
        seed: random seed; the same seed gives identical files (whatever `workers` is).
        sequence: one grasp moving smoothly (30 fps, timestamps written) instead of independent frames.
        size: (width, height) in pixels.
        quiet: no progress bar.
        config: generation settings (defaults: `SynthConfig()`).
        workers: processes rendering frames in parallel (each opens its own renderer).

    Returns:
        dict with frames, seconds, fps, mean/max penetration (mm), grasp types, object families,
        the number of frames whose grasp touches, and the mean visible fraction of the hand.
    """
    if frames < 1:
        raise C2FError(f"--frames must be at least 1, got {frames}")
    if workers < 1:
        raise C2FError(f"--workers must be at least 1, got {workers}")
    config = config or SynthConfig()
    torch.set_num_threads(1)
    start = time.perf_counter()
    intrinsics = sample_intrinsics(
        np.random.default_rng([int(seed), INTRINSICS_STREAM]), size, config.depth_scale
    )
    if sequence:
        intrinsics = Intrinsics(**{**intrinsics.to_dict(), "fps": SEQUENCE_FPS})
    summary = _Summary()
    pending: deque[Future] = deque()
    with TakeWriter(out, intrinsics) as writer, ThreadPoolExecutor(max_workers=1) as disk:
        # Files are encoded and written on a thread (PNG and zlib release the GIL) while the next
        # frame is made; at most two frames wait.
        def consume(index: int, frame: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]) -> None:
            color, depth, gt = frame
            summary.add(gt)
            stamp = index / SEQUENCE_FPS if sequence else None
            pending.append(disk.submit(writer.write, index, color, depth, gt, stamp))
            while len(pending) > 2:
                pending.popleft().result()

        if workers == 1:
            generator = TakeGenerator(seed, size, config)
            try:
                if sequence:
                    generator.prepare_sequence(frames)
                make = generator.sequence_frame if sequence else generator.single_frame
                for index in progress(range(frames), total=frames, desc="synth", quiet=quiet, unit="frame"):
                    consume(index, make(index))
            finally:
                generator.close()
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(
                workers, _start_worker, (seed, size, config, frames if sequence else 0)
            ) as pool:
                results = pool.imap(_worker_frame, range(frames))
                for index, frame in enumerate(
                    progress(results, total=frames, desc="synth", quiet=quiet, unit="frame")
                ):
                    consume(index, frame)
        while pending:
            pending.popleft().result()
    seconds = time.perf_counter() - start
    return summary.report(out, frames, seconds, intrinsics)


class _Summary:
    """Running statistics of the frames written."""

    def __init__(self) -> None:
        self.penetrations: list[float] = []
        self.grasp_types: dict[str, int] = {}
        self.families: dict[str, int] = {}
        self.visible: list[float] = []
        self.touching = 0

    def add(self, gt: dict[str, np.ndarray]) -> None:
        self.penetrations.append(float(gt["penetration_mm"]))
        kind, family = str(gt["grasp_type"]), str(gt["object_family"])
        self.grasp_types[kind] = self.grasp_types.get(kind, 0) + 1
        self.families[family] = self.families.get(family, 0) + 1
        self.visible.append(float(gt["hand_mask_visible_fraction"]))
        self.touching += bool(str(gt["contacts"]))

    def report(
        self, out: str | Path, frames: int, seconds: float, intrinsics: Intrinsics
    ) -> dict[str, object]:
        return {
            "out": str(out),
            "frames": frames,
            "seconds": seconds,
            "fps": frames / seconds,
            "mean_penetration_mm": float(np.mean(self.penetrations)),
            "max_penetration_mm": float(np.max(self.penetrations)),
            "grasp_types": dict(sorted(self.grasp_types.items())),
            "object_families": dict(sorted(self.families.items())),
            "frames_with_contact": self.touching,
            "mean_hand_visible_fraction": float(np.mean(self.visible)),
            "intrinsics": intrinsics.to_dict(),
        }
