"""MANO (Romero et al. 2017) as a differentiable torch layer over the arrays of `hands.mano_file`.

Model, in the SMPL notation of the MANO paper (per batch element):
    v_shaped = T + B_S(beta)                      T: v_template, B_S: shapedirs . beta
    J        = J_regressor @ v_shaped             16 joints
    v_posed  = v_shaped + B_P(theta)              B_P: posedirs . concat_k(R_k - I), k = 1..15
    G_k      = G_parent(k) [R_k | J_k - J_parent(k)],   G_0 = [R_0 | J_0]
    v        = sum_k w_k (G_k [I | -J_k]) v_posed + trans      (linear blend skinning)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from c2f_core.errors import C2FError
from c2f_core.hands.base import HandOutput
from c2f_core.hands.mano_file import NUM_HAND_POSE, NUM_MANO_JOINTS, ManoModel, load_mano_model
from c2f_core.hands.rotations import axis_angle_to_matrix

MANO_TIP_VERTEX_IDS = (745, 317, 444, 556, 673)
"""Vertices of the 778-vertex MANO mesh used as fingertips: thumb, index, middle, ring, little."""

MANO_TO_COMMON = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
"""Indices into [16 MANO joints, 5 tips] giving the common order of `hands.base.JOINT_NAMES`.

Raw MANO joint order: wrist, index1-3, middle1-3, little1-3, ring1-3, thumb1-3; the appended
tips are thumb, index, middle, ring, little.
"""


def _batched(
    value: torch.Tensor | None, batch: int, width: int, name: str, like: torch.Tensor
) -> torch.Tensor:
    """Broadcast an optional (width,), (1, width) or (B, width) input to (B, width)."""
    if value is None:
        return like.new_zeros(batch, width)
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if value.dim() == 1:
        value = value[None]
    if value.dim() != 2 or value.shape[1] != width or value.shape[0] not in (1, batch):
        raise ValueError(
            f"{name} must be ({width},), (1, {width}) or ({batch}, {width}), got {tuple(value.shape)}"
        )
    return value.expand(batch, width)


class ManoLayer(torch.nn.Module):
    """Differentiable MANO: pose (+ shape, translation) to a posed mesh and 21 joints in metres.

    The model's arrays are non-persistent buffers, so a `state_dict` (a checkpoint) never carries
    MANO's licensed data; `.to(device)` moves them.
    """

    def __init__(
        self,
        model: ManoModel | str | Path | None = None,
        *,
        side: str = "right",
        use_pca: bool = False,
        num_pca_comps: int = 45,
        flat_hand_mean: bool = True,
        center_idx: int | None = None,
        tip_vertex_ids: Sequence[int] = MANO_TIP_VERTEX_IDS,
    ) -> None:
        """Build the layer.

        Args:
            model: a loaded `ManoModel`, a .pkl path, a folder holding `MANO_RIGHT.pkl` /
                `MANO_LEFT.pkl`, or None for the folder in `C2F_MANO_DIR`. A left file carries
                its own template and blend shapes; nothing is mirrored here.
            side: which file to pick from a folder.
            use_pca: pose is (B, 3 + num_pca_comps): global axis-angle, then coefficients of the
                first `num_pca_comps` rows of `hands_components`. Otherwise pose is (B, 48)
                axis-angle: global rotation then the 15 finger joints in raw MANO order.
            num_pca_comps: number of PCA components used when `use_pca`.
            flat_hand_mean: True makes the zero finger pose the flat template hand; False adds
                the file's `hands_mean` to the finger pose (as DexYCB's annotations do).
            center_idx: if set, vertices and joints are made relative to this joint (index in
                the common 21-joint order, 0 = wrist) before `trans` is added.
            tip_vertex_ids: vertices used as fingertips (thumb, index, middle, ring, little).
        """
        super().__init__()
        if not isinstance(model, ManoModel):
            model = load_mano_model(model, side)
        num_verts = model.v_template.shape[0]
        tips = tuple(int(i) for i in tip_vertex_ids)
        if len(tips) != 5 or min(tips) < 0 or max(tips) >= num_verts:
            raise C2FError(
                f"{model.path}: fingertip vertex ids {tips} do not fit a mesh of {num_verts} vertices "
                "(the defaults are for the 778-vertex MANO mesh)"
            )
        if use_pca and not 1 <= num_pca_comps <= model.hands_components.shape[0]:
            raise C2FError(
                f"num_pca_comps must be in 1..{model.hands_components.shape[0]}, got {num_pca_comps}"
            )
        if center_idx is not None and not 0 <= center_idx < len(MANO_TO_COMMON):
            raise ValueError(f"center_idx must be in 0..20, got {center_idx}")
        self.use_pca = use_pca
        self.num_pca_comps = num_pca_comps if use_pca else NUM_HAND_POSE
        self.flat_hand_mean = flat_hand_mean
        self.center_idx = center_idx
        self.parents = model.parents
        self.model_path = model.path
        num_shapes = model.shapedirs.shape[2]
        self.num_betas = num_shapes

        def buffer(name: str, array: np.ndarray, dtype: torch.dtype = torch.float32) -> None:
            self.register_buffer(
                name, torch.as_tensor(np.ascontiguousarray(array), dtype=dtype), persistent=False
            )

        buffer("v_template", model.v_template)
        buffer("shapedirs", model.shapedirs.reshape(num_verts * 3, num_shapes))
        buffer("posedirs", model.posedirs.reshape(num_verts * 3, -1))
        buffer("J_regressor", model.J_regressor)
        buffer("weights", model.weights)
        buffer("faces", model.faces, torch.int64)
        buffer("hands_components", model.hands_components[: self.num_pca_comps])
        buffer("hands_mean", np.zeros(NUM_HAND_POSE) if flat_hand_mean else model.hands_mean)
        buffer("tip_vertex_ids", np.asarray(tips), torch.int64)
        buffer("joint_order", np.asarray(MANO_TO_COMMON), torch.int64)

    @property
    def pose_dim(self) -> int:
        """Width of the `pose` input: 3 + num_pca_comps with PCA, else 48."""
        return 3 + self.num_pca_comps

    def full_pose(self, pose: torch.Tensor) -> torch.Tensor:
        """Return the (B, 16, 3) axis-angle of all joints (hands mean included) for `pose`."""
        if pose.dim() != 2 or pose.shape[1] != self.pose_dim:
            raise ValueError(f"pose must be (B, {self.pose_dim}), got {tuple(pose.shape)}")
        fingers = pose[:, 3:] @ self.hands_components if self.use_pca else pose[:, 3:]
        return torch.cat([pose[:, :3], fingers + self.hands_mean], dim=1).reshape(-1, NUM_MANO_JOINTS, 3)

    def forward(
        self,
        pose: torch.Tensor,
        betas: torch.Tensor | None = None,
        trans: torch.Tensor | None = None,
    ) -> HandOutput:
        """Pose the hand.

        Args:
            pose: (B, 48) axis-angle, or (B, 3 + num_pca_comps) with `use_pca` (see __init__).
            betas: (B, S), (1, S) or (S,) shape coefficients; None for the mean shape.
            trans: (B, 3), (1, 3) or (3,) metres added to every vertex and joint; None for zero.

        Returns:
            HandOutput with vertices (B, V, 3) and joints (B, 21, 3) in metres, joints in the
            common order of `hands.base.JOINT_NAMES`.
        """
        pose = pose.to(self.v_template.dtype)
        batch = pose.shape[0]
        rotations = axis_angle_to_matrix(self.full_pose(pose))  # (B, 16, 3, 3)
        betas = _batched(betas, batch, self.num_betas, "betas", pose)
        trans = _batched(trans, batch, 3, "trans", pose)

        num_verts = self.v_template.shape[0]
        v_shaped = self.v_template + (betas @ self.shapedirs.T).reshape(batch, num_verts, 3)
        joints = torch.einsum("jv,bvc->bjc", self.J_regressor, v_shaped)
        eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
        pose_features = (rotations[:, 1:] - eye).reshape(batch, -1)
        v_posed = v_shaped + (pose_features @ self.posedirs.T).reshape(batch, num_verts, 3)

        # Forward kinematics; MANO's kintree lists every parent before its children.
        rot_world: list[torch.Tensor] = []
        pos_world: list[torch.Tensor] = []
        for k, parent in enumerate(self.parents):
            if parent < 0:
                rot_world.append(rotations[:, k])
                pos_world.append(joints[:, k])
            else:
                rot_world.append(rot_world[parent] @ rotations[:, k])
                offset = (joints[:, k] - joints[:, parent])[..., None]
                pos_world.append(pos_world[parent] + (rot_world[parent] @ offset)[..., 0])
        rot = torch.stack(rot_world, dim=1)  # (B, 16, 3, 3)
        posed_joints = torch.stack(pos_world, dim=1)  # (B, 16, 3)
        # Skinning transform of joint k maps a rest-pose point p to R_k (p - J_k) + posed J_k.
        shift = posed_joints - (rot @ joints[..., None])[..., 0]
        blend_rot = torch.einsum("vk,bkij->bvij", self.weights, rot)
        blend_shift = torch.einsum("vk,bki->bvi", self.weights, shift)
        vertices = (blend_rot @ v_posed[..., None])[..., 0] + blend_shift

        tips = vertices[:, self.tip_vertex_ids]
        joints21 = torch.cat([posed_joints, tips], dim=1)[:, self.joint_order]
        if self.center_idx is not None:
            center = joints21[:, self.center_idx : self.center_idx + 1]
            vertices = vertices - center
            joints21 = joints21 - center
        offset = trans[:, None]
        return HandOutput(vertices=vertices + offset, joints=joints21 + offset, faces=self.faces)
