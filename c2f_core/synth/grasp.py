"""Grasps of an object by the open hand: place the object at the palm (or between the fingertips),
then close the fingers joint by joint until they touch its surface.

Everything here works in the canonical hand frame (see `hands.open_hand`: x from the wrist to the
middle finger, y towards the thumb, z out of the back of the hand, metres).

Closing a finger (a simplified GraspIt-style auto-grasp): each finger follows a straight path in
joint-angle space from its pre-shape (t = 0) to a closed fist (t = 1). Along it, the first t where
any moving phalanx comes within `contact_m` of the object is found (a sweep, then bisection); the
joints up to that phalanx freeze there, and the joints beyond it keep closing from that t until
their own phalanx touches, or the fist is reached. So the fingers wrap the object without deep
penetration. Signed distances of hand vertices to the object come from libigl (`MeshSDF`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from c2f_core.geometry.mesh_sdf import MeshSDF
from c2f_core.hands.open_hand import FINGER_BONES, METACARPAL_BONES, OpenHandLayer
from c2f_core.synth.objects import ObjectMesh

GRASP_TYPES = ("power", "precision")
"""Power: the object rests on the palm and all fingers wrap it. Precision: held between the thumb
and the index (and middle) fingertips, the other fingers curled away."""

NUM_ANGLES = 19
"""Angle triples (flexion, abduction, twist) of bones 1..19 of the open hand."""

CLOSED_FINGER = np.array([[1.3, 0.0, 0.0], [1.45, 0.0, 0.0], [1.0, 0.0, 0.0]])
"""Joint angles of a closed fist finger (MCP, PIP, DIP; radians from the relaxed rest pose, which
is already flexed by about 0.3, 0.15 and 0.05)."""

CLOSED_THUMB = np.array([[0.9, -0.5, 0.0], [0.55, 0.0, 0.0], [0.7, 0.0, 0.0]])
"""Thumb CMC, MCP and IP angles when folded over the fist."""

PINCH_FINGERS = (0, 1, 2)
"""Fingers that close onto the object in a precision grasp (thumb, index, middle)."""


@dataclass(frozen=True)
class GraspConfig:
    """Settings of the grasp synthesis."""

    contact_m: float = 0.0005
    """A phalanx touches the object when its nearest vertex is closer than this (metres)."""
    palm_gap_m: float = 0.0003
    """Distance left between the palm (or first hand part met) and the object when placing it."""
    sweep_steps: int = 8
    """Candidate closures tested per finger and stage before bisection."""
    bisection_steps: int = 5
    """Halvings of the step that first touches."""
    max_attempts: int = 8
    """Random grasps tried before keeping the best one found."""
    precision_max_extent_m: float = 0.085
    """Objects whose second-longest side is below this may get a precision grasp."""
    precision_probability: float = 0.35
    """Chance of a precision grasp when the object allows one."""


@dataclass
class Grasp:
    """A hand pose holding an object, in the canonical hand frame."""

    grasp_type: str
    """One of `GRASP_TYPES`."""
    betas: np.ndarray
    """(K,) hand shape coefficients."""
    angles: np.ndarray
    """(19, 3) radians: flexion, abduction, twist of bones 1..19."""
    object_rotation: np.ndarray
    """(3, 3) rotation from the object's frame to the hand frame."""
    object_translation: np.ndarray
    """(3,) metres: the object frame's origin in the hand frame."""
    hand_vertices: np.ndarray
    """(V, 3) posed hand, hand frame."""
    hand_joints: np.ndarray
    """(21, 3) joints, hand frame."""
    penetration_m: float
    """Deepest hand vertex inside the object (0 when none is inside)."""
    contacts: tuple[str, ...] = field(default_factory=tuple)
    """Hand parts within 2 mm of the object: 'palm' and finger names."""

    def object_to_hand(self, points_object: np.ndarray) -> np.ndarray:
        """Map object-frame points (N, 3) to the hand frame."""
        return points_object @ self.object_rotation.T + self.object_translation


FINGER_NAMES = ("thumb", "index", "middle", "ring", "little")
PREFILTER_M = 0.004
"""Hand points farther than this from the object's bounding box skip the exact distance query."""
CONTACT_REPORT_M = 0.002
"""A part counts as touching (for `Grasp.contacts` and acceptance) within this distance."""


class GraspSynthesizer:
    """Makes grasps with one hand model; keeps per-bone vertex groups between calls."""

    def __init__(self, layer: OpenHandLayer, config: GraspConfig | None = None):
        """Prepare vertex groups of `layer` (the palm and each phalanx)."""
        self.layer = layer
        self.config = config or GraspConfig()
        weights = layer.skinning_weights.cpu().numpy()
        owner = weights.argmax(1)
        self.segment_vertices = [[np.nonzero(owner == bone)[0] for bone in bones] for bones in FINGER_BONES]
        groups = [ids for finger in self.segment_vertices for ids in finger]
        self._segment_ids = np.concatenate(groups)
        self._segment_starts = np.cumsum([0] + [len(ids) for ids in groups[:-1]])
        rest_vertices, _rest_heads = layer.rest()
        rest = rest_vertices[0].cpu().numpy()
        palm_bones = (0,) + METACARPAL_BONES
        palm = np.nonzero(np.isin(owner, palm_bones))[0]
        # Palmar side: the lower half (the palm faces -z).
        self.palm_vertices = palm[rest[palm, 2] < np.median(rest[palm, 2])]

    # -- hand evaluation -------------------------------------------------------------------------

    def _pose(self, angles: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posed vertices (B, V, 3) and joints (B, 21, 3) for angles (B, 19, 3), in the hand frame."""
        with torch.no_grad():
            angles_t = torch.as_tensor(angles, dtype=self.layer.dtype)
            betas_t = torch.as_tensor(betas, dtype=self.layer.dtype)[None].expand(len(angles_t), -1)
            out = self.layer(finger_rotations=self.layer.angles_to_rotations(angles_t), betas=betas_t)
        return out.vertices.cpu().numpy().astype(np.float64), out.joints.cpu().numpy().astype(np.float64)

    @staticmethod
    def _object_sdf(
        sdf: MeshSDF, rotation: np.ndarray, translation: np.ndarray, points: np.ndarray
    ) -> np.ndarray:
        """Signed distances of hand-frame `points` (..., 3) to the placed object; far points are bounded cheaply."""
        flat = points.reshape(-1, 3)
        local = (flat - translation) @ rotation
        lo, hi = sdf.vertices.min(0), sdf.vertices.max(0)
        # Outside the bounding box grown by PREFILTER_M, the distance to the box bounds the true
        # distance from below, which is all that contact tests and safe placement steps need.
        box_distance = np.linalg.norm(np.maximum(np.maximum(lo - local, local - hi), 0.0), axis=1)
        result = box_distance.copy()
        near = box_distance < PREFILTER_M
        if near.any():
            result[near] = sdf(local[near])
        return result.reshape(points.shape[:-1])

    # -- pose sampling -----------------------------------------------------------------------------

    def _preshape(self, grasp_type: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Random open pre-shape angles (19, 3) and per-finger closing targets (5, 3, 3)."""
        angles = np.zeros((NUM_ANGLES, 3))
        targets = np.zeros((5, 3, 3))
        spread = rng.uniform(0.0, 0.15)
        # Positive abduction moves a finger towards the little finger.
        for finger, abduction in zip(range(1, 5), (-spread, -0.3 * spread, 0.4 * spread, spread)):
            bones = FINGER_BONES[finger]
            # Open and straight (the rest pose is curled by ~0.3, 0.15 and 0.05 rad at MCP, PIP and
            # DIP), so the object reaches the palm before it meets a fingertip.
            angles[bones[0] - 1] = [
                rng.uniform(-0.4, -0.15),
                abduction + rng.normal(0, 0.03),
                rng.normal(0, 0.03),
            ]
            angles[bones[1] - 1, 0] = rng.uniform(-0.15, 0.0)
            angles[bones[2] - 1, 0] = rng.uniform(-0.05, 0.05)
            targets[finger] = CLOSED_FINGER + rng.normal(0, 0.05, size=(3, 3)) * [1, 0, 0]
            targets[finger, 0, 1] = 0.3 * abduction
        for finger, meta in zip(range(1, 5), METACARPAL_BONES):
            # Ring and little metacarpals flex a little, cupping the palm.
            angles[meta - 1, 0] = rng.uniform(0.0, (0.0, 0.03, 0.1, 0.18)[finger - 1])
        thumb = [bone - 1 for bone in FINGER_BONES[0]]
        if grasp_type == "power":
            # Thumb extended in the plane of the palm, out of the object's way until it closes.
            angles[thumb] = [
                [rng.uniform(-0.4, -0.25), rng.uniform(0.2, 0.4), rng.uniform(0.0, 0.6)],
                [rng.uniform(-0.2, 0.0), 0.0, 0.0],
                [rng.uniform(-0.15, 0.0), 0.0, 0.0],
            ]
            targets[0] = CLOSED_THUMB + rng.normal(0, 0.05, size=(3, 3)) * [1, 1, 0]
        else:
            angles[thumb] = [
                [rng.uniform(0.3, 0.5), rng.uniform(-0.9, -0.7), rng.uniform(-0.1, 0.1)],
                [rng.uniform(0.0, 0.15), 0.0, 0.0],
                [rng.uniform(-0.1, 0.1), 0.0, 0.0],
            ]
            targets[0] = [[0.9, -0.6, 0.0], [0.5, 0.0, 0.0], [0.5, 0.0, 0.0]]
            for finger in (1, 2):
                bones = FINGER_BONES[finger]
                angles[bones[0] - 1, 0] = rng.uniform(0.2, 0.4)
                angles[bones[1] - 1, 0] = rng.uniform(0.1, 0.3)
                angles[bones[2] - 1, 0] = rng.uniform(0.0, 0.15)
            for finger in (3, 4):
                # Curled out of the way, not closing onto the object.
                bones = FINGER_BONES[finger]
                curl = rng.uniform(0.6, 1.0)
                angles[[b - 1 for b in bones], 0] = curl * CLOSED_FINGER[:, 0]
                targets[finger] = angles[[b - 1 for b in bones]]
        return angles, targets

    def _object_rotation(self, obj: ObjectMesh, grasp_type: str, rng: np.random.Generator) -> np.ndarray:
        """A rotation object -> hand that lays the object's grasp axis across the palm, tilted at random."""
        from scipy.spatial.transform import Rotation

        if grasp_type == "power":
            tilt = rng.uniform(-0.45, 0.3)
            across = np.array([np.sin(tilt), np.cos(tilt), 0.0])
        else:
            across = Rotation.from_rotvec(rng.normal(0, 0.6, 3)).apply([0.0, 1.0, 0.0])
        align = Rotation.align_vectors(across[None], obj.grasp_axis[None])[0]
        spin = Rotation.from_rotvec(obj.grasp_axis * rng.uniform(0, 2 * np.pi))
        return (align * spin).as_matrix()

    # -- the synthesis ------------------------------------------------------------------------------

    def _place(
        self,
        sdf: MeshSDF,
        rotation: np.ndarray,
        start: np.ndarray,
        direction: np.ndarray,
        hand_vertices: np.ndarray,
    ) -> np.ndarray:
        """Slide the object from `start` along `direction` until it just meets the hand; returns its translation.

        A rigid move no longer than the smallest hand-object distance cannot make anything
        penetrate, so each step moves by that distance minus the gap.
        """
        gap = self.config.palm_gap_m
        translation = start.copy()
        for _ in range(40):
            distance = self._object_sdf(sdf, rotation, translation, hand_vertices).min()
            if distance < 0:
                translation = translation - direction * (0.01 - distance)
                continue
            if distance - gap < 1e-4:
                break
            translation = translation + direction * (distance - gap)
        return translation

    def _segment_distances(
        self,
        sdf: MeshSDF,
        rotation: np.ndarray,
        translation: np.ndarray,
        angles: np.ndarray,
        betas: np.ndarray,
    ) -> np.ndarray:
        """Nearest object distance (B, 5, 3) of each phalanx (finger, proximal..distal) for angles (B, 19, 3).

        Values above `PREFILTER_M` are lower bounds (see `_object_sdf`), enough to tell "not touching".
        """
        vertices, _ = self._pose(angles, betas)
        distances = self._object_sdf(sdf, rotation, translation, vertices[:, self._segment_ids])
        return np.minimum.reduceat(distances, self._segment_starts, axis=1).reshape(len(angles), 5, 3)

    def _close(
        self,
        sdf: MeshSDF,
        rotation: np.ndarray,
        translation: np.ndarray,
        angles: np.ndarray,
        targets: np.ndarray,
        fingers: tuple[int, ...],
        betas: np.ndarray,
    ) -> np.ndarray:
        """Close `fingers` from `angles` towards `targets` until each phalanx touches; returns the angles."""
        cfg = self.config
        angles = angles.copy()
        rows = {f: [b - 1 for b in FINGER_BONES[f]] for f in range(5)}
        start = {f: angles[rows[f]].copy() for f in fingers}
        frozen = dict.fromkeys(fingers, 0)
        t_from = dict.fromkeys(fingers, 0.0)

        def with_fingers(base: np.ndarray, ts: dict[int, float]) -> np.ndarray:
            """Copy of `base` angles with each finger f of `ts` at closure ts[f] (frozen joints kept)."""
            out = base.copy()
            for f, t in ts.items():
                blended = start[f] + t * (targets[f] - start[f])
                blended[: frozen[f]] = base[rows[f][: frozen[f]]]
                out[rows[f]] = blended
            return out

        def moving(distances: np.ndarray, f: int) -> np.ndarray:
            """(B,) nearest distance over the phalanges of finger f that still move."""
            return distances[:, f, frozen[f] :].min(axis=1)

        active = list(fingers)
        while active:
            steps = cfg.sweep_steps
            grid = {f: t_from[f] + (1.0 - t_from[f]) * np.arange(1, steps + 1) / steps for f in active}
            batch = np.stack([with_fingers(angles, {f: grid[f][k] for f in active}) for k in range(steps)])
            distances = self._segment_distances(sdf, rotation, translation, batch, betas)
            brackets: dict[int, tuple[float, float]] = {}
            for f in list(active):
                touching = moving(distances, f) < cfg.contact_m
                if not touching.any():
                    angles = with_fingers(angles, {f: 1.0})
                    active.remove(f)
                    continue
                k = int(np.argmax(touching))
                brackets[f] = (t_from[f] if k == 0 else grid[f][k - 1], grid[f][k])
            if not brackets:
                break
            for _ in range(cfg.bisection_steps):
                mids = {f: 0.5 * (lo + hi) for f, (lo, hi) in brackets.items()}
                distances = self._segment_distances(
                    sdf, rotation, translation, with_fingers(angles, mids)[None], betas
                )
                for f, t in mids.items():
                    lo, hi = brackets[f]
                    brackets[f] = (lo, t) if moving(distances, f)[0] < cfg.contact_m else (t, hi)
            # The phalanx nearest the object at the touching end freezes, with every joint before it.
            upper = with_fingers(angles, {f: hi for f, (_, hi) in brackets.items()})
            distances = self._segment_distances(sdf, rotation, translation, upper[None], betas)[0]
            angles = with_fingers(angles, {f: lo for f, (lo, _) in brackets.items()})
            for f, (lo, _) in brackets.items():
                frozen[f] += int(np.argmin(distances[f, frozen[f] :])) + 1
                t_from[f] = lo
                if frozen[f] >= 3:
                    active.remove(f)
        return angles

    def _attempt(
        self, obj: ObjectMesh, sdf: MeshSDF, grasp_type: str, betas: np.ndarray, rng: np.random.Generator
    ) -> Grasp:
        angles, targets = self._preshape(grasp_type, rng)
        rotation = self._object_rotation(obj, grasp_type, rng)
        vertices, joints = self._pose(angles[None], betas)
        vertices, joints = vertices[0], joints[0]
        reach = float(np.linalg.norm(obj.extents)) / 2 + 0.03
        if grasp_type == "power":
            palm = vertices[self.palm_vertices]
            centre = palm.mean(0)
            # Slide along the fingers from the palm centre towards the finger bases.
            mcp_x = joints[[5, 9, 13, 17], 0].mean()
            centre[0] += rng.uniform(0.2, 0.5) * (mcp_x - centre[0])
            centre[1] += rng.uniform(-0.01, 0.01)
            direction = np.array([0.0, 0.0, 1.0])
            translation = self._place(sdf, rotation, centre - direction * reach, direction, vertices)
            fingers: tuple[int, ...] = (0, 1, 2, 3, 4)
        else:
            pinch = 0.5 * (joints[4] + 0.5 * (joints[8] + joints[12]))
            direction = np.array([-0.4, 0.0, 1.0]) / np.linalg.norm([-0.4, 0.0, 1.0])
            translation = self._place(sdf, rotation, pinch - direction * reach, direction, vertices)
            fingers = PINCH_FINGERS
        angles = self._close(sdf, rotation, translation, angles, targets, fingers, betas)
        vertices, joints = self._pose(angles[None], betas)
        vertices, joints = vertices[0], joints[0]
        distances = self._object_sdf(sdf, rotation, translation, vertices)
        contacts = []
        if distances[self.palm_vertices].min() < CONTACT_REPORT_M:
            contacts.append("palm")
        for f, name in enumerate(FINGER_NAMES):
            ids = np.concatenate(self.segment_vertices[f])
            if distances[ids].min() < CONTACT_REPORT_M:
                contacts.append(name)
        return Grasp(
            grasp_type=grasp_type,
            betas=betas.copy(),
            angles=angles,
            object_rotation=rotation,
            object_translation=translation,
            hand_vertices=vertices,
            hand_joints=joints,
            penetration_m=float(max(0.0, -distances.min())),
            contacts=tuple(contacts),
        )

    def choose_type(self, obj: ObjectMesh, rng: np.random.Generator) -> str:
        """Power for most objects; precision, sometimes, for objects small enough to pinch."""
        sides = np.sort(obj.extents)
        if sides[1] < self.config.precision_max_extent_m and rng.random() < self.config.precision_probability:
            return "precision"
        return "power"

    def grasp(
        self,
        obj: ObjectMesh,
        rng: np.random.Generator,
        betas: np.ndarray | None = None,
        grasp_type: str | None = None,
        sdf: MeshSDF | None = None,
    ) -> Grasp:
        """A grasp of `obj`: the first attempt that touches with enough fingers, else the best attempt.

        A power grasp is accepted when the thumb and at least two other fingers touch; a precision
        grasp when the thumb and the index or middle finger do.
        """
        if betas is None:
            samples = self.layer.shape_samples.cpu().numpy()
            betas = samples[rng.integers(len(samples))].astype(np.float64)
        grasp_type = grasp_type or self.choose_type(obj, rng)
        sdf = sdf or MeshSDF(obj.vertices, obj.faces)
        best: Grasp | None = None
        best_score = -1.0
        for _ in range(self.config.max_attempts):
            candidate = self._attempt(obj, sdf, grasp_type, betas, rng)
            fingers = [c for c in candidate.contacts if c not in ("palm", "thumb")]
            thumb = "thumb" in candidate.contacts
            score = len(fingers) + 2 * thumb + 0.5 * ("palm" in candidate.contacts)
            if score > best_score:
                best, best_score = candidate, score
            needed = 2 if grasp_type == "power" else 1
            if thumb and len(fingers) >= needed:
                return candidate
        assert best is not None
        return best
