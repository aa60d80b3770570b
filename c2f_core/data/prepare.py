"""DexYCB and ObMan converted into takes with ground truth and SDF samples, for training and evaluation.

Layout written under CACHE (one folder per split, each a folder of takes):
```
CACHE/<split>/<subject>__<sequence>__<serial>/    DexYCB: one take per sequence and camera,
                                                 frame number = the dataset's frame index
CACHE/<split>/obman_000/, obman_001/, ...         ObMan: 1000 frames of the split list per take,
                                                 frame number = the ObMan id
TAKE/intrinsics.json                              written once, by the take's first frame
TAKE/color/NNNNNN.jpg                             the dataset's own JPEG, copied byte for byte
TAKE/depth/NNNNNN.png                             16-bit, depth_scale 0.001 (DexYCB, exact) or
                                                 0.0001 (ObMan, finer than its 8-bit levels)
TAKE/gt/NNNNNN.npz                                io.frames.GT_KEYS (hand_faces closed at the wrist)
                                                 + SDF samples (geometry.sdf_samples), written last
```
Every file is written atomically and `gt/NNNNNN.npz` last, so its presence marks a complete frame:
a rerun after a kill skips those frames and redoes the rest. Each frame's random SDF samples are
seeded from its stable name, so the output does not depend on the number of worker processes.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from c2f_core.data.dexycb import DexYCBReader
from c2f_core.data.obman import ObManReader
from c2f_core.errors import C2FError, NoSpaceError
from c2f_core.geometry.camera import metres_to_depth_units
from c2f_core.geometry.sdf_samples import make_sdf_samples
from c2f_core.hands.mano import ManoLayer
from c2f_core.hands.mano_file import ManoModel, resolve_mano_path
from c2f_core.io.atomic import ensure_writable_dir, write_bytes_atomic
from c2f_core.io.frames import RGBDFrame
from c2f_core.io.images import write_depth_raw
from c2f_core.io.intrinsics import Intrinsics, read_intrinsics, write_intrinsics
from c2f_core.io.take import check_depth, write_npz
from c2f_core.progress import progress

Dataset = Literal["dexycb", "obman"]
DATASETS: tuple[str, ...] = ("dexycb", "obman")

DEFAULT_SDF_SAMPLES = 20_000
"""SDF samples per mesh and frame (the reference's files hold at most 20,000 rows per mesh)."""
OBMAN_TAKE_FRAMES = 1000
"""ObMan frames per take (ObMan's images are independent; takes only keep folders small)."""
DEXYCB_DEPTH_SCALE = 0.001
"""Metres per depth unit of DexYCB takes: its own millimetres, so the copy is exact."""
OBMAN_DEPTH_SCALE = 0.0001
"""Metres per depth unit of ObMan takes: 0.1 mm, well below one of its 8-bit depth levels."""
DEXYCB_FPS = 30.0
"""DexYCB's capture rate; frame numbers are capture indices, so every 5th frame leaves gaps."""

WRITTEN, NO_HAND, FAILED = "written", "no_hand", "failed"


@dataclass(frozen=True)
class FrameJob:
    """One dataset frame to convert: where it comes from and where it goes."""

    index: int
    """Index in the reader (`DexYCBReader.read` / `ObManReader.read`)."""
    take: str
    """Take folder name under CACHE/<split>/."""
    frame_id: int
    """Frame number within the take."""
    name: str
    """Stable name of the frame; seeds its SDF samples."""


@dataclass
class PrepareSummary:
    """What a `prepare_dataset` run did."""

    out: Path
    """The split's folder of takes (CACHE/<split>)."""
    frames: int = 0
    """Frames selected (after --limit)."""
    written: int = 0
    """Frames converted by this run."""
    skipped_existing: int = 0
    """Frames whose gt/NNNNNN.npz was already there (an earlier run did them)."""
    skipped_no_hand: int = 0
    """Frames without a hand mesh (no hand annotation, or removed by the dataset's filter)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Frame name -> error message, for frames that could not be converted."""
    takes: int = 0
    """Takes holding at least one complete frame of the selection."""
    no_hand_reason: str = ""
    """Why frames of this dataset can lack a hand mesh, for the summary's warning."""


class FrameSource(Protocol):
    """A dataset reader wrapped with what conversion needs; picklable for worker processes."""

    depth_scale: float
    fps: float | None
    no_hand_reason: str

    def jobs(self) -> list[FrameJob]: ...

    def read(self, index: int) -> RGBDFrame | None: ...

    def color_path(self, job: FrameJob) -> Path: ...


class DexYCBSource:
    """DexYCB s0 frames (right hands, every 5th frame) as jobs, one take per sequence and camera."""

    depth_scale = DEXYCB_DEPTH_SCALE
    fps: float | None = DEXYCB_FPS
    no_hand_reason = (
        "no hand or object annotation (joint_3d = -1 or no pose), or outside the test split's contact filter"
    )

    def __init__(self, root: str | Path, split: str, mano: ManoLayer | str | Path):
        self.reader = DexYCBReader(root, split, mano=mano)

    def jobs(self) -> list[FrameJob]:
        """Every indexed frame, in the toolkit's order."""
        return [
            FrameJob(index, f"{s.subject}__{s.sequence}__{s.serial}", s.frame, f"dexycb/{s.name}")
            for index, s in enumerate(self.reader.samples)
        ]

    def read(self, index: int) -> RGBDFrame | None:
        """The frame with ground truth, or None when the reader drops it."""
        return self.reader.read(index)

    def color_path(self, job: FrameJob) -> Path:
        """The frame's JPEG in the dataset."""
        s = self.reader.samples[job.index]
        return self.reader.root / s.subject / s.sequence / s.serial / f"color_{s.frame:06d}.jpg"


class ObManSource:
    """ObMan frames of a split list as jobs, 1000 to a take, numbered by their ObMan id."""

    depth_scale = OBMAN_DEPTH_SCALE
    fps: float | None = None
    no_hand_reason = "no hand mesh"

    def __init__(
        self,
        root: str | Path,
        split: str,
        mano: ManoModel | str | Path,
        shapenet: str | Path,
        split_file: str | Path | None = None,
    ):
        self.reader = ObManReader(root, split, shapenet_root=shapenet, mano=mano, split_file=split_file)

    def jobs(self) -> list[FrameJob]:
        """Every frame of the split, in the split list's order."""
        split = self.reader.split
        return [
            FrameJob(
                position,
                f"obman_{position // OBMAN_TAKE_FRAMES:03d}",
                int(frame_id),
                f"obman/{split}/{frame_id}",
            )
            for position, frame_id in enumerate(self.reader.ids)
        ]

    def read(self, index: int) -> RGBDFrame | None:
        """The frame with ground truth."""
        return self.reader.read(index)

    def color_path(self, job: FrameJob) -> Path:
        """The frame's JPEG in the dataset."""
        return self.reader.split_dir / "rgb" / f"{self.reader.ids[job.index]}.jpg"


def close_boundary_loops(faces: np.ndarray) -> np.ndarray:
    """The faces of a mesh with every simple boundary loop closed by a fan of new triangles.

    MANO's hand is open at the wrist; the reference evaluates against MANO closed there
    (`closed_fmano`), and closed meshes give SDF samples a well-defined inside. The fan starts at
    a loop vertex (no vertex is added) and is wound against the loop's edges, so it keeps the
    mesh's orientation. Loops through a vertex with several outgoing boundary edges are left open.

    Args:
        faces: (F, 3) triangles.

    Returns:
        (F + k, 3) int64: the original faces first, then the k closing triangles.
    """
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0:
        return faces
    directed = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    base = int(faces.max()) + 1
    keys = directed[:, 0] * base + directed[:, 1]
    border = directed[~np.isin(directed[:, 1] * base + directed[:, 0], keys)]
    following: dict[int, list[int]] = {}
    for a, b in border.tolist():
        following.setdefault(a, []).append(b)
    caps: list[list[int]] = []
    visited: set[int] = set()
    for start, ends in following.items():
        if start in visited or len(ends) != 1:
            continue
        loop = [start]
        current = ends[0]
        while current != start and current not in visited and len(following.get(current, ())) == 1:
            loop.append(current)
            current = following[current][0]
            if len(loop) > len(border):
                break
        visited.update(loop)
        if current != start or len(loop) < 3:
            continue
        # Existing faces traverse the loop as loop[i] -> loop[i + 1]; the caps traverse it backwards.
        caps += [[loop[0], loop[i + 1], loop[i]] for i in range(1, len(loop) - 1)]
    if not caps:
        return faces
    return np.concatenate([faces, np.asarray(caps, dtype=np.int64)])


def frame_rng(name: str) -> np.random.Generator:
    """A random generator seeded from a frame's stable name (independent of process and run)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def gt_path(out_dir: Path, job: FrameJob) -> Path:
    """Where `job`'s ground truth goes; its presence marks the frame as done."""
    return out_dir / job.take / "gt" / f"{job.frame_id:06d}.npz"


def _frame_intrinsics(frame: RGBDFrame, source: FrameSource) -> Intrinsics:
    K = frame.K
    return Intrinsics(
        fx=float(K[0, 0]),
        fy=float(K[1, 1]),
        cx=float(K[0, 2]),
        cy=float(K[1, 2]),
        width=frame.width,
        height=frame.height,
        depth_scale=source.depth_scale,
        fps=source.fps,
    )


def _ensure_intrinsics(take_dir: Path, intrinsics: Intrinsics, frame_name: str) -> None:
    """Write the take's intrinsics.json once; fail if an existing one disagrees with this frame."""
    path = take_dir / "intrinsics.json"
    if not path.is_file():
        write_intrinsics(path, intrinsics)  # concurrent workers write the same bytes atomically
        return
    existing = read_intrinsics(path)
    if existing != intrinsics:
        raise C2FError(
            f"{frame_name}: {path} holds other intrinsics ({existing}) than this frame ({intrinsics}); "
            "is --out a cache of another dataset?"
        )


def convert_frame(source: FrameSource, job: FrameJob, out_dir: Path, samples: int) -> str:
    """Convert one dataset frame into `out_dir/<take>/`; returns WRITTEN or NO_HAND.

    Raises:
        C2FError: the frame cannot be converted (missing object mesh, unusable depth, bad files).
    """
    frame = source.read(job.index)
    if frame is None or frame.gt is None or "hand_verts" not in frame.gt or "hand_faces" not in frame.gt:
        return NO_HAND
    gt = frame.gt
    if "object_verts" not in gt or "object_faces" not in gt:
        raise C2FError(f"{job.name}: no object mesh")
    check_depth(frame.depth_m, job.name)
    hand_faces = close_boundary_loops(gt["hand_faces"])
    sdf = make_sdf_samples(
        gt["hand_verts"], hand_faces, gt["object_verts"], gt["object_faces"], samples, frame_rng(job.name)
    )
    record = dict(gt)
    record["hand_faces"] = hand_faces.astype(np.int32)
    record["object_faces"] = np.asarray(gt["object_faces"]).astype(np.int32)
    record.update(sdf)

    take_dir = out_dir / job.take
    intrinsics = _frame_intrinsics(frame, source)
    _ensure_intrinsics(take_dir, intrinsics, job.name)
    color_src = source.color_path(job)
    write_bytes_atomic(
        take_dir / "color" / f"{job.frame_id:06d}{color_src.suffix.lower()}", color_src.read_bytes()
    )
    write_depth_raw(
        take_dir / "depth" / f"{job.frame_id:06d}.png",
        metres_to_depth_units(frame.depth_m, intrinsics.depth_scale),
    )
    write_npz(gt_path(out_dir, job), record)  # last: marks the frame complete
    return WRITTEN


_WORKER: dict[str, Any] = {}
"""Per-process state of the conversion workers (set by `_init_worker`)."""


def _init_worker(source: FrameSource, out_dir: Path, samples: int, single_thread: bool) -> None:
    if single_thread:
        import torch

        torch.set_num_threads(1)  # the pool already uses the cores
    _WORKER.update(source=source, out_dir=out_dir, samples=samples)


def _convert(job: FrameJob) -> tuple[FrameJob, str, str]:
    try:
        status = convert_frame(_WORKER["source"], job, _WORKER["out_dir"], _WORKER["samples"])
    except NoSpaceError:
        raise  # no frame's fault: the run stops
    except (C2FError, ValueError, OSError) as exc:
        return job, FAILED, str(exc)
    return job, status, ""


def _run_jobs(
    source: FrameSource, out_dir: Path, samples: int, jobs: list[FrameJob], workers: int
) -> Iterator[tuple[FrameJob, str, str]]:
    """Convert `jobs` in this process (workers <= 1) or in a pool, yielding results as they finish."""
    if workers <= 1 or len(jobs) <= 1:
        _init_worker(source, out_dir, samples, single_thread=False)
        try:
            yield from map(_convert, jobs)
        finally:
            _WORKER.clear()
        return
    # fork shares the already-built reader (MANO layer, indexed samples) with the workers for free.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with context.Pool(
        min(workers, len(jobs)), initializer=_init_worker, initargs=(source, out_dir, samples, True)
    ) as pool:
        yield from pool.imap_unordered(_convert, jobs, chunksize=1)


def resolve_mano(
    mano: ManoLayer | ManoModel | str | Path | None, dataset: str
) -> ManoLayer | ManoModel | Path:
    """The MANO model to build hand meshes with: as given, or its file (from a folder or `C2F_MANO_DIR`)."""
    if isinstance(mano, (ManoLayer, ManoModel)):
        return mano
    try:
        return resolve_mano_path(mano, "right")
    except C2FError as exc:
        raise C2FError(f"{dataset} hand meshes need the MANO model: {exc}") from None


def open_source(
    dataset: str,
    root: str | Path,
    split: str,
    mano: ManoLayer | ManoModel | str | Path | None = None,
    shapenet: str | Path | None = None,
    split_file: str | Path | None = None,
) -> FrameSource:
    """The dataset reader for `dataset` (dexycb or obman) wrapped as a `FrameSource`."""
    if dataset not in DATASETS:
        raise C2FError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise C2FError(f"{dataset} root not found: {root}")
    if dataset == "dexycb":
        if shapenet is not None or split_file is not None:
            raise C2FError("--shapenet and --split-file are for ObMan only")
        return DexYCBSource(root, split, resolve_mano(mano, "DexYCB"))
    if shapenet is None:
        raise C2FError(
            "ObMan's objects are ShapeNetCore.v2 models: pass --shapenet DIR (the ShapeNetCore.v2 folder "
            "from https://shapenet.org, holding <class_id>/<sample_id>/models/model_normalized.obj)"
        )
    if isinstance(mano, ManoLayer):  # ObMan only needs the model's faces
        mano = mano.model_path
    return ObManSource(root, split, resolve_mano(mano, "ObMan"), shapenet, split_file)


def prepare_dataset(
    dataset: str,
    root: str | Path,
    out: str | Path,
    split: str = "train",
    *,
    workers: int | None = None,
    samples: int = DEFAULT_SDF_SAMPLES,
    limit: int | None = None,
    mano: ManoLayer | ManoModel | str | Path | None = None,
    shapenet: str | Path | None = None,
    split_file: str | Path | None = None,
    quiet: bool = False,
) -> PrepareSummary:
    """Convert one split of DexYCB or ObMan into takes under `out/<split>/` (see the module docstring).

    Args:
        dataset: "dexycb" or "obman".
        root: the dataset folder (DexYCB: holding the subject folders, calibration/, models/;
            ObMan: holding train/, test/ and optionally splits/).
        out: the cache folder; takes go to `out/<split>/`.
        split: DexYCB s0 or ObMan split name (train, val, test).
        workers: conversion processes (default min(4, CPU count)); 1 converts in this process.
        samples: SDF samples per mesh and frame.
        limit: convert only the first `limit` frames of the split (in the dataset's order).
        mano: MANO model, its file, or a folder holding MANO_RIGHT.pkl; None reads `C2F_MANO_DIR`.
        shapenet: ShapeNetCore.v2 folder (ObMan only, required).
        split_file: ObMan only: a JSON list of ids instead of ROOT/splits/<split>_*.json.
        quiet: no progress bar.

    Returns:
        counts of written, already present, skipped and failed frames.
    """
    if samples < 1:
        raise C2FError(f"--samples must be >= 1, got {samples}")
    if limit is not None and limit < 1:
        raise C2FError(f"--limit must be >= 1, got {limit}")
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise C2FError(f"--workers must be >= 1, got {workers}")
    source = open_source(dataset, root, split, mano, shapenet, split_file)
    jobs = source.jobs()
    if limit is not None:
        jobs = jobs[:limit]
    if not jobs:
        raise C2FError(f"nothing to convert: the {dataset} {split} split under {root} lists no frames")
    out_dir = ensure_writable_dir(Path(out).expanduser() / split)
    todo = [job for job in jobs if not gt_path(out_dir, job).is_file()]
    summary = PrepareSummary(
        out=out_dir,
        frames=len(jobs),
        skipped_existing=len(jobs) - len(todo),
        no_hand_reason=source.no_hand_reason,
    )
    results: Iterable[tuple[FrameJob, str, str]] = _run_jobs(source, out_dir, samples, todo, workers)
    for job, status, message in progress(
        results, total=len(todo), desc=f"{dataset} {split}", quiet=quiet, unit="frame"
    ):
        if status == WRITTEN:
            summary.written += 1
        elif status == NO_HAND:
            summary.skipped_no_hand += 1
        else:
            summary.failed[job.name] = message
    summary.takes = len({job.take for job in jobs if gt_path(out_dir, job).is_file()})
    return summary
