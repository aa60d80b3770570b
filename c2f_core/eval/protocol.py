"""Evaluation of a `c2f reconstruct` output folder against a take's ground truth, two protocols.

- `aligned`: the reference protocol (method D.2 step 10, E): the predicted hand is fitted to the
  GT hand by scale + translation ICP, and the same transform is applied to the object, before any
  metric. Comparable to the paper's tables; it uses GT, so it is not what a user gets.
- `raw`: no alignment at all, meshes as reconstructed in metric camera space. What a user gets.

Per protocol: hand Chamfer (cm^2) and F@1/5 mm, object Chamfer and F@5/10 mm, and the contact
metrics (penetration depth, intersection volume, contact ratio) of the predicted meshes.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.eval.align import icp_scale_translation
from c2f_core.eval.contact import ContactMetrics, contact_metrics, summarize_contact
from c2f_core.eval.metrics import (
    HAND_THRESHOLDS_CM,
    OBJECT_THRESHOLDS_CM,
    ReconMetrics,
    TruthSamples,
    mesh_problem,
    reconstruction_metrics,
    summarize,
)
from c2f_core.io.recon_output import Reconstruction, read_frame_meshes, read_reconstruction
from c2f_core.io.take import Take, read_gt
from c2f_core.progress import progress

Protocol = Literal["aligned", "raw"]
PROTOCOLS: tuple[Protocol, ...] = ("aligned", "raw")


@dataclass
class FrameEvaluation:
    """Metrics of one frame under one protocol."""

    frame: int
    hand: ReconMetrics
    object: ReconMetrics
    contact: ContactMetrics
    alignment: dict[str, float] = field(default_factory=dict)
    """ICP scale and translation (aligned protocol)."""


def _missing(reason: str) -> tuple[ReconMetrics, ReconMetrics, ContactMetrics]:
    nan = float("nan")
    return (
        ReconMetrics(nan, {t: nan for t in HAND_THRESHOLDS_CM}, reason),
        ReconMetrics(nan, {t: nan for t in OBJECT_THRESHOLDS_CM}, reason),
        ContactMetrics(False, 0.0, 0.0, reason=reason),
    )


def evaluate_frame(
    pred: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    gt: dict[str, np.ndarray],
    protocol: Protocol,
    frame: int = 0,
    seed: int = 0,
    num_samples: int = 30_000,
    truth: dict[str, TruthSamples] | None = None,
) -> FrameEvaluation:
    """Metrics of predicted (hand_v, hand_f, obj_v, obj_f) against a GT dict, metres, camera frame.

    `truth` ("hand", "object": ``TruthSamples.draw`` of the GT meshes with `num_samples` and `seed`)
    shares the GT samples between the protocols of one frame; None draws them here.
    """
    hand_v, hand_f, obj_v, obj_f = (np.asarray(a) for a in pred)
    alignment: dict[str, float] = {}
    if protocol == "aligned":
        if len(hand_v) == 0 or len(hand_f) == 0:
            hand, obj, contact = _missing("prediction: empty hand mesh, nothing to align")
            return FrameEvaluation(frame, hand, obj, contact)
        transform = icp_scale_translation(
            hand_v, hand_f, gt["hand_verts"], gt["hand_faces"], num_samples=num_samples, seed=seed
        )
        hand_v = transform.apply(hand_v)
        obj_v = transform.apply(obj_v) if len(obj_v) else obj_v
        alignment = {
            "scale": transform.scale,
            **{f"t{a}": float(v) for a, v in zip("xyz", transform.translation)},
        }
    truth = truth or {}
    hand = reconstruction_metrics(
        hand_v,
        hand_f,
        gt["hand_verts"],
        gt["hand_faces"],
        HAND_THRESHOLDS_CM,
        num_samples,
        seed,
        truth.get("hand"),
    )
    obj = reconstruction_metrics(
        obj_v,
        obj_f,
        gt["object_verts"],
        gt["object_faces"],
        OBJECT_THRESHOLDS_CM,
        num_samples,
        seed,
        truth.get("object"),
    )
    contact = contact_metrics(hand_v, hand_f, obj_v, obj_f)
    return FrameEvaluation(frame, hand, obj, contact, alignment)


def _truth_samples(gt: dict[str, np.ndarray], num_samples: int, seed: int) -> dict[str, TruthSamples]:
    """The GT samples of a frame's hand and object (both protocols use them), where the meshes allow."""
    truth = {}
    for part in ("hand", "object"):
        vertices, faces = gt[f"{part}_verts"], gt[f"{part}_faces"]
        if mesh_problem(vertices, faces) is None:
            truth[part] = TruthSamples.draw(vertices, faces, num_samples, seed)
    return truth


def _evaluate_frame_of(
    recon: Reconstruction, take: Take, frame: int, protocols: list[Protocol], seed: int, num_samples: int
) -> dict[str, FrameEvaluation]:
    """Every protocol's metrics of one reconstructed frame; its meshes and GT are read once for all."""
    gt = _read_gt_meshes(take, frame)
    meshes = read_frame_meshes(recon, frame)
    pred = (meshes.hand_vertices, meshes.hand_faces, meshes.object_vertices, meshes.object_faces)
    truth = _truth_samples(gt, num_samples, seed)
    return {p: evaluate_frame(pred, gt, p, frame, seed, num_samples, truth) for p in protocols}


def _evaluate_stored_frame(
    pred_dir: str, gt_take: str, frame: int, protocols: list[Protocol], seed: int, num_samples: int
) -> dict[str, FrameEvaluation]:
    """``_evaluate_frame_of`` from the folders' paths, for a worker process (which opens each once)."""
    return _evaluate_frame_of(*_open_folders(pred_dir, gt_take), frame, protocols, seed, num_samples)


MIN_FRAMES_PER_WORKER = 4
"""A worker pays its start (about a second of imports) only with this many frames to evaluate."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def default_workers(frames: int) -> int:
    """Worker processes for evaluating `frames` frames: one per core, each with at least
    ``MIN_FRAMES_PER_WORKER`` frames (1: all in this process).

    The nearest-neighbour queries run on every core of one process already, but the rest of a
    frame (sampling, winding numbers) on one: two single-threaded workers on two cores evaluate a
    frame in 0.49 s against 0.66 s for one process."""
    return max(1, min(usable_cores(), frames // MIN_FRAMES_PER_WORKER))


@contextlib.contextmanager
def _threads_of_spawned_workers(threads: int) -> Iterator[None]:
    """Processes spawned inside the block run `threads` OpenMP threads (the k-d tree's), so that
    workers do not fight over the cores; this process's own setting is left as it was."""
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        if before is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = before


def _read_gt_meshes(take: Take, frame: int) -> dict[str, np.ndarray]:
    """A frame's GT (its meshes: the images are not read), checked for the four mesh arrays."""
    gt = read_gt(take.paths(frame).gt)
    for key in ("hand_verts", "hand_faces", "object_verts", "object_faces"):
        if key not in gt:
            raise C2FError(f"ground truth of frame {frame} in {take.root} lacks '{key}'")
    return gt


@functools.lru_cache(maxsize=2)
def _open_folders(pred_dir: str, gt_take: str) -> tuple[Reconstruction, Take]:
    """The reconstruction and the take, opened once per worker process."""
    return read_reconstruction(pred_dir), Take.open(gt_take)


def _summary(evaluations: list[FrameEvaluation]) -> dict[str, dict[str, float]]:
    return {
        "hand": summarize([e.hand for e in evaluations]),
        "object": summarize([e.object for e in evaluations]),
        "contact": summarize_contact([e.contact for e in evaluations]),
    }


def evaluate_folder(
    pred_dir: str,
    gt_take: str,
    protocols: Iterable[Protocol] = PROTOCOLS,
    seed: int = 0,
    num_samples: int = 30_000,
    quiet: bool = False,
    frames: Iterable[int] | None = None,
    workers: int | None = 1,
) -> dict:
    """Evaluate the GT frames of a take (all, or `frames`) against a reconstruction folder; missing results count as failures.

    `workers` > 1 evaluates that many frames at once in spawned processes, each with its share of
    the cores: the same numbers (each frame's evaluation depends on nothing else), sooner. None
    chooses (``default_workers``). As with any spawned pool, a script calling this needs the
    ``if __name__ == "__main__":`` guard.
    """
    if workers is not None and workers < 1:
        raise C2FError(f"workers must be >= 1, got {workers}")
    recon = read_reconstruction(pred_dir)
    take = Take.open(gt_take)
    gt_frames = [i for i in take.frame_ids if take.paths(i).gt is not None]
    if frames is not None:
        wanted = set(frames)
        gt_frames = [i for i in gt_frames if i in wanted]
    if not gt_frames:
        raise C2FError(f"take {gt_take} has no ground truth (gt/NNNNNN.npz) for the frames asked")
    protocols = list(protocols)
    per_protocol: dict[str, list[FrameEvaluation]] = {p: [] for p in protocols}
    missing: dict[int, str] = {}
    meshed = [i for i in gt_frames if i in recon.frames]
    workers = default_workers(len(meshed)) if workers is None else min(workers, len(meshed))
    if workers > 1:
        # Spawned, not forked: a forked child would inherit the parent's OpenMP and torch state.
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        task = partial(
            _evaluate_stored_frame, pred_dir, gt_take, protocols=protocols, seed=seed, num_samples=num_samples
        )
        with _threads_of_spawned_workers(max(1, usable_cores() // workers)):
            results = pool.map(task, meshed)  # submits every frame, which starts the workers
    else:
        pool = None
        results = (_evaluate_frame_of(recon, take, i, protocols, seed, num_samples) for i in meshed)
    results = iter(results)  # in the order of `meshed`, lazily: the progress bar follows the work
    try:
        for frame in progress(gt_frames, total=len(gt_frames), desc="evaluating", quiet=quiet, unit="frame"):
            if frame in recon.frames:
                evaluations = next(results)
                for protocol in protocols:
                    per_protocol[protocol].append(evaluations[protocol])
            else:
                _read_gt_meshes(take, frame)  # a broken GT file is an error, reconstructed or not
                reason = recon.failed.get(frame, "no reconstruction for this frame")
                missing[frame] = reason
                for protocol in protocols:
                    per_protocol[protocol].append(FrameEvaluation(frame, *_missing(f"prediction: {reason}")))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return {
        "prediction": str(recon.root),
        "ground_truth": str(take.root),
        "frames": len(gt_frames),
        "missing": {str(k): v for k, v in missing.items()},
        "seed": seed,
        "protocols": {p: _summary(evs) for p, evs in per_protocol.items()},
        "per_frame": {
            p: [
                {
                    "frame": e.frame,
                    "hand_chamfer_cm2": e.hand.chamfer_cm2,
                    "hand_fscore": {f"{t:g}cm": v for t, v in e.hand.fscores.items()},
                    "object_chamfer_cm2": e.object.chamfer_cm2,
                    "object_fscore": {f"{t:g}cm": v for t, v in e.object.fscores.items()},
                    "penetration_cm": e.contact.penetration_depth_cm,
                    "intersection_cm3": e.contact.intersection_volume_cm3,
                    "contact": e.contact.in_contact,
                    "alignment": e.alignment,
                    "problem": e.hand.reason or e.object.reason or e.contact.reason,
                }
                for e in evs
            ]
            for p, evs in per_protocol.items()
        },
    }


TABLE_COLUMNS = (
    ("CD_h", "hand", "chamfer_cm2_mean"),
    ("F_h@1", "hand", "fscore@0.1cm"),
    ("F_h@5", "hand", "fscore@0.5cm"),
    ("CD_o", "object", "chamfer_cm2_mean"),
    ("F_o@5", "object", "fscore@0.5cm"),
    ("F_o@10", "object", "fscore@1cm"),
    ("PD cm", "contact", "penetration_depth_cm_mean"),
    ("IV cm3", "contact", "intersection_volume_cm3_mean"),
    ("CR %", "contact", "contact_ratio_percent"),
)


def format_table(report: dict) -> str:
    """The paper-style table (one row per protocol) of an `evaluate_folder` report, as Markdown."""
    header = "| protocol | " + " | ".join(c[0] for c in TABLE_COLUMNS) + " | frames |"
    lines = [header, "|" + "---|" * (len(TABLE_COLUMNS) + 2)]
    for protocol, summary in report["protocols"].items():
        cells = []
        for _, part, key in TABLE_COLUMNS:
            value = summary[part].get(key, float("nan"))
            cells.append("n/a" if not np.isfinite(value) else f"{value:.3f}")
        count = int(summary["hand"]["count"])
        lines.append(f"| {protocol} | " + " | ".join(cells) + f" | {count}/{report['frames']} |")
    return "\n".join(lines)
