"""Export the open hand asset (`c2f_core/assets/open_hand.npz`) from anny's hand-only model.

Run once by a maintainer (`python -m c2f_core.hands.build_open_hand`); the output is committed, so
users never need anny or warp. anny's code is Apache-2.0 and its MakeHuman-derived assets are CC0.

What the asset holds (every array in the canonical hand frame, metres, float32 unless noted):

- ``template_vertices (V, 3)``: rest mesh of the mean adult hand, V = 1,609 anny vertices plus one
  wrist-cap centre vertex (anny's mesh is open at the wrist; we close it with a fan).
- ``faces (F, 3) int32``: anny's triangles plus the cap fan, consistently oriented (outward normals).
- ``template_bone_heads (20, 3)``: rest position of each bone's head (its joint).
- ``tip_vertex_ids (5,) int32``: the vertex used as each fingertip (thumb .. little).
- ``shape_basis (K, V + 20, 3)``: PCA directions of rest vertices and bone heads over random adult
  anny phenotypes, scaled so the coefficients have unit variance over those phenotypes.
- ``shape_samples (N, K)``: the coefficients of those phenotypes (draw from these for realistic shapes).
- ``skinning_weights (V, 20)``: linear blend skinning weights (rows sum to 1).
- ``bone_parents (20,) int32``, ``bone_names (20,)``, ``bone_frames (20, 3, 3)``: each bone's
  anatomical axes as columns (x: flexion axis, y: along the bone, z: abduction axis), from anny's rig.
- ``anny_to_canonical (4, 4) float64``: the rigid map from anny's coordinates to the canonical frame
  for the mean phenotype (each phenotype is canonicalised by its own map, `canonical_transform`).
- ``anny_bone_ids (20,) int32``: for each of our bones, the anny bone it comes from.

Convention of the canonical hand frame (right hand): origin at the mean wrist joint; x points from
the wrist to the middle finger's MCP joint, y towards the thumb side (radial), z = x × y points
out of the back of the hand (dorsal); the palm faces -z.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.hands.open_hand import BONE_NAMES, OPEN_HAND_ASSET

ANNY_CACHE_ENV = "ANNY_CACHE_DIR"
DEFAULT_ANNY_CACHE = Path.home() / ".cache" / "c2f" / "anny"

ANNY_BONE_NAMES = (
    "wrist.R",
    "finger1-1.R",
    "finger1-2.R",
    "finger1-3.R",
    "metacarpal1.R",
    "finger2-1.R",
    "finger2-2.R",
    "finger2-3.R",
    "metacarpal2.R",
    "finger3-1.R",
    "finger3-2.R",
    "finger3-3.R",
    "metacarpal3.R",
    "finger4-1.R",
    "finger4-2.R",
    "finger4-3.R",
    "metacarpal4.R",
    "finger5-1.R",
    "finger5-2.R",
    "finger5-3.R",
)
"""The anny bone behind each entry of `BONE_NAMES`; anny's extra `root` bone (same head as the
wrist) is merged into the wrist."""

BONE_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 6, 0, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18)

PHENOTYPE_RANGES = {
    "gender": (0.0, 1.0),
    "age": (0.6, 1.0),
    "muscle": (0.0, 1.0),
    "weight": (0.0, 1.0),
    "height": (0.1, 0.6),
    "proportions": (0.0, 1.0),
}
"""Uniform sampling ranges of anny's phenotypes, chosen for adult hands: anny's age 0.5 is a teenager,
2/3 a young adult and 1 old; its height scales the hand too, and 0.1-0.6 keeps the wrist-to-middle-
fingertip length within about 15-22 cm (a 25-year-old of height 0.5 measures 20 cm, 0 gives 15 cm,
1 gives 25 cm)."""


def anny_cache_dir() -> Path:
    """The folder anny caches its built model in: `$ANNY_CACHE_DIR`, else ~/.cache/c2f/anny."""
    return Path(os.environ.get(ANNY_CACHE_ENV, str(DEFAULT_ANNY_CACHE))).expanduser()


def load_anny_hand():
    """Build (or load from the cache) anny's right hand-only model.

    The first build takes about 1.5 minutes on two CPU cores and fills `anny_cache_dir()`.
    """
    try:
        import anny
        import anny.paths
    except ImportError as exc:
        raise C2FError(
            f"anny is not installed ({exc}); install the synth extra: pip install 'c2f-handobject[synth]'"
        ) from None
    cache = anny_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    anny.paths.set_anny_cache_path(cache)
    return anny.Anny(rig="anny-hand.R", topology="hand.R")


def anny_rest_states(model, phenotypes: np.ndarray) -> dict[str, np.ndarray]:
    """Rest vertices (N, 1609, 3), bone heads (N, 21, 3) and bone poses (N, 21, 4, 4) for phenotypes (N, 6)."""
    import torch

    with torch.no_grad():
        params = torch.as_tensor(phenotypes, dtype=model.dtype)
        zeros = params.new_zeros((params.shape[0], 0))
        coeffs = model._get_phenotype_blendshape_coefficients(params, zeros, zeros)
        rest = model.get_rest_model(coeffs)
    return {
        "vertices": rest["rest_vertices"].cpu().numpy(),
        "heads": rest["rest_bone_heads"].cpu().numpy(),
        "poses": rest["rest_bone_poses"].cpu().numpy(),
    }


def sample_phenotypes(model, count: int, rng: np.random.Generator) -> np.ndarray:
    """Draw (count, P) phenotype vectors in the model's label order from `PHENOTYPE_RANGES`."""
    labels = list(model.phenotype_labels)
    missing = set(labels) - set(PHENOTYPE_RANGES)
    if missing:
        raise C2FError(f"anny hand has phenotypes {sorted(missing)} that build_open_hand does not know")
    lo = np.array([PHENOTYPE_RANGES[k][0] for k in labels])
    hi = np.array([PHENOTYPE_RANGES[k][1] for k in labels])
    return lo + (hi - lo) * rng.random((count, len(labels)))


def canonical_transform(heads: np.ndarray, bone_ids: dict[str, int]) -> np.ndarray:
    """The (4, 4) rigid map from anny coordinates to the canonical hand frame, from rest heads (21, 3)."""
    wrist = heads[bone_ids["wrist.R"]]
    index_mcp = heads[bone_ids["finger2-1.R"]]
    middle_mcp = heads[bone_ids["finger3-1.R"]]
    little_mcp = heads[bone_ids["finger5-1.R"]]
    x = middle_mcp - wrist
    x /= np.linalg.norm(x)
    y = index_mcp - little_mcp
    y -= (y @ x) * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    rotation = np.stack([x, y, z])  # rows: canonical axes in anny coordinates
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = -rotation @ wrist
    return transform


def boundary_loop(faces: np.ndarray) -> np.ndarray:
    """The single boundary loop of a triangle mesh as ordered vertex ids, following the faces' winding."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edge_set = {tuple(e) for e in directed.tolist()}
    border = [e for e in directed.tolist() if (e[1], e[0]) not in edge_set]
    if not border:
        raise C2FError("the anny hand mesh has no boundary; expected an opening at the wrist")
    following = {a: b for a, b in border}
    if len(following) != len(border):
        raise C2FError("the anny hand mesh boundary is not a simple loop")
    start = border[0][0]
    loop = [start]
    while following[loop[-1]] != start:
        loop.append(following[loop[-1]])
        if len(loop) > len(border):
            raise C2FError("the anny hand mesh boundary is not a single loop")
    if len(loop) != len(border):
        raise C2FError(
            f"the anny hand mesh has several boundary loops ({len(border)} edges, first loop {len(loop)})"
        )
    return np.array(loop)


def cap_faces(loop: np.ndarray, centre_id: int) -> np.ndarray:
    """A triangle fan closing `loop` around vertex `centre_id`, wound opposite to the loop's edges.

    Each boundary edge a->b belongs to one existing face that traverses it as a->b, so the cap
    triangle must traverse it as b->a to keep the orientation consistent.
    """
    nxt = np.roll(loop, -1)
    return np.stack([nxt, loop, np.full_like(loop, centre_id)], axis=1)


def tip_vertex(
    vertices: np.ndarray, weights: np.ndarray, bone: int, head: np.ndarray, axis: np.ndarray
) -> int:
    """The vertex mostly skinned to `bone` that lies farthest along the bone's `axis` from its `head`."""
    own = np.nonzero(weights.argmax(1) == bone)[0]
    reach = (vertices[own] - head) @ axis
    return int(own[np.argmax(reach)])


def build(samples: int = 2048, components: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Build the open hand arrays (see the module docstring) from `samples` random adult phenotypes."""
    import torch

    start = time.perf_counter()
    model = load_anny_hand()
    load_s = time.perf_counter() - start
    labels = list(model.bone_labels)
    bone_ids = {name: i for i, name in enumerate(labels)}
    anny_ids = np.array([bone_ids[name] for name in ANNY_BONE_NAMES])

    rng = np.random.default_rng(seed)
    phenotypes = sample_phenotypes(model, samples, rng)
    rest = anny_rest_states(model, phenotypes)
    mean_phenotype = np.array([[np.mean(PHENOTYPE_RANGES[k]) for k in model.phenotype_labels]])
    mean_rest = anny_rest_states(model, mean_phenotype)

    to_canonical = canonical_transform(mean_rest["heads"][0], bone_ids)
    rot = to_canonical[:3, :3]
    # Each phenotype in its own canonical frame: anny places the hand where that body's arm puts it,
    # which moves with height; the shape space should hold the hand's shape only.
    per_sample = np.stack([canonical_transform(heads, bone_ids) for heads in rest["heads"]])

    faces = model.get_triangular_faces().cpu().numpy().astype(np.int64)
    n_anny = rest["vertices"].shape[1]
    loop = boundary_loop(faces)
    faces = np.concatenate([faces, cap_faces(loop, n_anny)])

    def with_cap(vertices: np.ndarray) -> np.ndarray:
        centre = vertices[:, loop].mean(axis=1, keepdims=True)
        return np.concatenate([vertices, centre], axis=1)

    shifts = per_sample[:, None, :3, 3]
    verts = np.einsum("nij,nvj->nvi", per_sample[:, :3, :3], with_cap(rest["vertices"])) + shifts
    heads = np.einsum("nij,nvj->nvi", per_sample[:, :3, :3], rest["heads"][:, anny_ids]) + shifts
    stacked = np.concatenate([verts, heads], axis=1).reshape(samples, -1)
    mean = stacked.mean(axis=0)
    _, sing, vt = np.linalg.svd(stacked - mean, full_matrices=False)
    std = sing / np.sqrt(samples - 1)
    explained = np.cumsum(std**2) / np.sum(std**2)
    basis = vt[:components] * std[:components, None]
    coeffs = (stacked - mean) @ vt[:components].T / std[:components]
    residual = stacked - mean - coeffs @ basis
    max_residual_m = float(np.linalg.norm(residual.reshape(samples, -1, 3), axis=-1).max())

    n_verts = n_anny + 1
    template = mean.reshape(-1, 3)

    dense = torch.zeros(n_anny, len(labels), dtype=model.vertex_bone_weights.dtype)
    dense.scatter_add_(1, model.vertex_bone_indices.long(), model.vertex_bone_weights)
    dense = dense.numpy()
    dense[:, bone_ids["wrist.R"]] += dense[:, bone_ids["root"]]
    weights = dense[:, anny_ids]
    cap_weights = np.zeros((1, len(BONE_NAMES)))
    cap_weights[0, 0] = 1.0
    weights = np.concatenate([weights, cap_weights])
    weights /= weights.sum(axis=1, keepdims=True)

    mean_poses = mean_rest["poses"][0, anny_ids]
    frames = rot[None] @ mean_poses[:, :3, :3]

    template_vertices = template[:n_verts]
    template_heads = template[n_verts:]
    tips = []
    for distal in (3, 7, 11, 15, 19):
        tips.append(
            tip_vertex(template_vertices, weights, distal, template_heads[distal], frames[distal][:, 1])
        )

    print(
        f"anny hand loaded in {load_s:.1f} s; {samples} phenotypes; {components} shape components explain "
        f"{100 * explained[components - 1]:.3f}% of the variance (max residual {1000 * max_residual_m:.2f} mm)"
    )
    return {
        "template_vertices": template_vertices.astype(np.float32),
        "faces": faces.astype(np.int32),
        "template_bone_heads": template_heads.astype(np.float32),
        "tip_vertex_ids": np.array(tips, dtype=np.int32),
        "shape_basis": basis.reshape(components, -1, 3).astype(np.float32),
        "shape_samples": coeffs.astype(np.float32),
        "shape_explained_variance": explained[:components].astype(np.float32),
        "skinning_weights": weights.astype(np.float32),
        "bone_parents": np.array(BONE_PARENTS, dtype=np.int32),
        "bone_names": np.array(BONE_NAMES),
        "bone_frames": frames.astype(np.float32),
        "anny_to_canonical": to_canonical,
        "anny_bone_ids": anny_ids.astype(np.int32),
        "phenotype_labels": np.array(list(model.phenotype_labels)),
        "phenotype_samples": phenotypes.astype(np.float32),
    }


def main(argv: list[str] | None = None) -> int:
    """Build the asset and write it (compressed npz)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=OPEN_HAND_ASSET, help=f"output npz (default {OPEN_HAND_ASSET})"
    )
    parser.add_argument("--samples", type=int, default=2048, help="random phenotypes for the shape PCA")
    parser.add_argument("--components", type=int, default=20, help="shape components kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    arrays = build(args.samples, args.components, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
