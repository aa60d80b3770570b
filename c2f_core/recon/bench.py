"""The speed benchmark: dense vs surface-aware extraction on the same frames with the same network.

Reports, per method: SDF queries, seconds per stage (encoder, coarse SDF, kNN, pixel features,
fine decoders, the extractor's own bookkeeping (block selection, octree or surface walk), marching
cubes, total), peak memory, and the Chamfer distance between the two methods' meshes (and to the
ground truth when the frames have it). Stage times come from forward hooks on the network's
components and a timing wrapper around the kNN; they nest (kNN runs inside the point-aligned
features), so they do not add up to the total.

Two Chamfer distances compare SER with dense: the sampled one (10,000 points on each mesh against
the other's points, as the evaluation measures meshes against the truth), which is about 0.02 cm^2
for two identical hand meshes from the sampling alone, and the surface one (the points against the
other mesh's surface, exact point-to-triangle distances), which is 0 for identical meshes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Self

import numpy as np
import torch

from c2f_core.eval.metrics import (
    HAND_THRESHOLDS_CM,
    METRES_TO_CM,
    OBJECT_THRESHOLDS_CM,
    reconstruction_metrics,
)
from c2f_core.geometry.mesh_sdf import point_mesh_distance, sample_surface
from c2f_core.io.take import Take
from c2f_core.model.network import C2FNetwork
from c2f_core.progress import progress
from c2f_core.recon.extract import Mesh
from c2f_core.recon.locate import locate_hand
from c2f_core.recon.runner import ReconstructionSettings, make_detector, reconstruct_frame
from c2f_core.train.config import C2FConfig

STAGES = ("encoder", "coarse", "knn", "pixel", "decoders", "walk", "marching_cubes", "total")


class StageClock:
    """Accumulates seconds spent in named network components (forward hooks) and in kNN calls."""

    def __init__(self, network: C2FNetwork, device: str):
        self.seconds: dict[str, float] = defaultdict(float)
        self._sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        self._handles = []
        self._starts: dict[str, float] = {}
        components = {
            "encoder": network.encoder,
            "coarse": network.coarse,
            "pixel": network.pixel,
            "decoders": network.fine,
        }
        for name, module in components.items():
            if module is None:
                continue
            self._handles.append(module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(module.register_forward_hook(self._post(name)))

    def _pre(self, name: str):
        def hook(module, args):
            self._sync()
            self._starts[name] = time.perf_counter()

        return hook

    def _post(self, name: str):
        def hook(module, args, output):
            self._sync()
            self.seconds[name] += time.perf_counter() - self._starts.pop(name)

        return hook

    @contextlib.contextmanager
    def timing_knn(self) -> Iterator[None]:
        """Time every kNN call of the network's modules while inside the block."""
        from c2f_core.model import lifting, pifu3d

        original = pifu3d.knn

        def timed(*args, **kwargs):
            self._sync()
            start = time.perf_counter()
            out = original(*args, **kwargs)
            self._sync()
            self.seconds["knn"] += time.perf_counter() - start
            return out

        pifu3d.knn = lifting.knn = timed
        try:
            yield
        finally:
            pifu3d.knn = lifting.knn = original

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()


class PeakMemory:
    """Peak memory while inside the block: CUDA allocator peak, else resident set size sampled every 5 ms."""

    def __init__(self, device: str):
        self.device = device
        self.peak_mb = 0.0

    @staticmethod
    def _rss_mb() -> float:
        with open(f"/proc/{os.getpid()}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self) -> Self:
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            return self
        self._stop = threading.Event()
        self._base = self._rss_mb()
        self._peak = self._base

        def sample() -> None:
            while not self._stop.wait(0.005):
                self._peak = max(self._peak, self._rss_mb())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.startswith("cuda"):
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss_mb())
        self.peak_mb = self._peak  # absolute RSS of the process at its peak


def _chamfer(a: Mesh, b: Mesh, thresholds: tuple[float, ...]) -> float:
    if a.is_empty or b.is_empty:
        return float("nan")
    return reconstruction_metrics(
        a.vertices, a.faces, b.vertices, b.faces, thresholds, num_samples=10_000
    ).chamfer_cm2


def surface_chamfer(a: Mesh, b: Mesh, num_samples: int = 10_000, seed: int = 0) -> float:
    """Chamfer (cm^2) of seeded points on each mesh against the other mesh's surface; 0 when equal.

    Args:
        a, b: meshes in metres.
        num_samples: points on each mesh.
        seed: seeds the points.

    Returns:
        mean d(a points, b)^2 + mean d(b points, a)^2 in cm^2, NaN if either mesh is empty.
    """
    if a.is_empty or b.is_empty:
        return float("nan")
    rng = np.random.default_rng(seed)
    total = 0.0
    for source, target in ((a, b), (b, a)):
        points, _ = sample_surface(source.vertices, source.faces, num_samples, rng)
        distances = point_mesh_distance(points, target.vertices, target.faces) * METRES_TO_CM
        total += float(np.mean(distances**2))
    return total


def run_bench(
    take: Take,
    network: C2FNetwork,
    config: C2FConfig,
    frames: int = 4,
    resolution: int = 128,
    device: str = "cpu",
    quiet: bool = False,
) -> dict:
    """Dense vs surface-aware (SER + octree) on the first `frames` frames of a take; returns the report."""
    methods = {
        "dense": ReconstructionSettings(resolution=resolution, method="dense"),
        "ser": ReconstructionSettings(resolution=resolution, method="ser"),
    }
    ids = take.frame_ids[:frames]
    per_method: dict[str, list[dict]] = {name: [] for name in methods}
    comparison: list[dict] = []
    clock = StageClock(network, device)
    detector, _ = make_detector(methods["ser"].detector)
    try:
        for frame_id in progress(ids, total=len(ids), desc="bench", quiet=quiet, unit="frame"):
            frame = take.read_frame(frame_id)
            seen, crop = locate_hand(frame, methods["ser"].locate, detector)
            meshes: dict[str, dict[str, Mesh]] = {}
            for name, settings in methods.items():
                clock.seconds.clear()
                with PeakMemory(device) as memory, clock.timing_knn():
                    result = reconstruct_frame(network, config, seen, crop, settings, device)
                    if crop.mirrored:
                        result = result.mirrored(frame.width)
                stages = {
                    stage: clock.seconds.get(stage, 0.0)
                    for stage in ("encoder", "coarse", "knn", "pixel", "decoders")
                }
                stages["walk"] = result.timings.get("extract_select", 0.0) + result.timings.get(
                    "extract_octree", 0.0
                )
                stages["marching_cubes"] = result.timings.get("extract_marching_cubes", 0.0)
                stages["total"] = result.timings["total"]
                per_method[name].append(
                    {
                        "frame": frame_id,
                        "queries": result.queries,
                        "stages": stages,
                        "peak_memory_mb": memory.peak_mb,
                    }
                )
                meshes[name] = {"hand": result.hand, "object": result.object}
            row = {
                "frame": frame_id,
                "hand_ser_vs_dense_cm2": _chamfer(
                    meshes["ser"]["hand"], meshes["dense"]["hand"], HAND_THRESHOLDS_CM
                ),
                "object_ser_vs_dense_cm2": _chamfer(
                    meshes["ser"]["object"], meshes["dense"]["object"], OBJECT_THRESHOLDS_CM
                ),
                **{
                    f"{part}_ser_vs_dense_surface_cm2": surface_chamfer(
                        meshes["ser"][part], meshes["dense"][part]
                    )
                    for part in ("hand", "object")
                },
            }
            gt = frame.gt
            if gt is not None and "hand_verts" in gt:
                for name in methods:
                    for part, key, taus in (
                        ("hand", "hand", HAND_THRESHOLDS_CM),
                        ("object", "object", OBJECT_THRESHOLDS_CM),
                    ):
                        mesh = meshes[name][part]
                        metrics = reconstruction_metrics(
                            mesh.vertices if not mesh.is_empty else None,
                            mesh.faces if not mesh.is_empty else None,
                            gt[f"{key}_verts"],
                            gt[f"{key}_faces"],
                            taus,
                            num_samples=10_000,
                        )
                        row[f"{part}_{name}_vs_gt_cm2"] = metrics.chamfer_cm2
            comparison.append(row)
    finally:
        clock.close()

    def mean(values: list[float]) -> float:
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    report: dict = {
        "frames": len(ids),
        "resolution": resolution,
        "device": device,
        "dense_grid": resolution**3,
    }
    for name, rows in per_method.items():
        report[name] = {
            "queries": mean([r["queries"] for r in rows]),
            "total_s": mean([r["stages"]["total"] for r in rows]),
            "stages_s": {stage: mean([r["stages"][stage] for r in rows]) for stage in STAGES},
            "peak_memory_mb": max(r["peak_memory_mb"] for r in rows),
            "per_frame": rows,
        }
    for name in methods:
        report[name]["median_total_s"] = float(np.median([r["stages"]["total"] for r in per_method[name]]))
    report["ser_query_fraction"] = report["ser"]["queries"] / max(report["dense"]["queries"], 1)
    report["speedup"] = report["dense"]["total_s"] / max(report["ser"]["total_s"], 1e-9)
    report["comparison"] = comparison
    for part in ("hand", "object"):
        report[f"{part}_ser_vs_dense_cm2"] = mean([c[f"{part}_ser_vs_dense_cm2"] for c in comparison])
        report[f"{part}_ser_vs_dense_surface_cm2"] = mean(
            [c[f"{part}_ser_vs_dense_surface_cm2"] for c in comparison]
        )
        if comparison and f"{part}_dense_vs_gt_cm2" in comparison[0]:
            dense = mean([c[f"{part}_dense_vs_gt_cm2"] for c in comparison])
            ser = mean([c[f"{part}_ser_vs_gt_cm2"] for c in comparison])
            report[f"{part}_chamfer_vs_gt_cm2"] = {
                "dense": dense,
                "ser": ser,
                "relative_difference": (ser - dense) / dense if dense else None,
            }
    return report


def format_bench(report: dict) -> str:
    """A Markdown table of a bench report."""
    lines = [
        f"{report['frames']} frame(s), {report['resolution']}^3 grid, device {report['device']}",
        "",
        "| method | queries | % dense | " + " | ".join(f"{s} s" for s in STAGES) + " | peak MB |",
        "|---|---|---|" + "---|" * len(STAGES) + "---|",
    ]
    for name in ("dense", "ser"):
        r = report[name]
        share = 100 * r["queries"] / report["dense_grid"]
        stages = " | ".join(f"{r['stages_s'][s]:.3f}" for s in STAGES)
        lines.append(f"| {name} | {r['queries']:.0f} | {share:.2f}% | {stages} | {r['peak_memory_mb']:.0f} |")
    lines += ["", "| frame | SER queries | % dense | SER s | dense s |", "|---|---|---|---|---|"]
    for ser, dense in zip(report["ser"]["per_frame"], report["dense"]["per_frame"], strict=True):
        lines.append(
            f"| {ser['frame']} | {ser['queries']} | {100 * ser['queries'] / report['dense_grid']:.2f}% | "
            f"{ser['stages']['total']:.3f} | {dense['stages']['total']:.3f} |"
        )
    lines.append("")
    lines.append(
        f"SER queries {100 * report['ser_query_fraction']:.2f}% of dense, {report['speedup']:.1f}x faster, "
        f"median {report['ser']['median_total_s']:.3f} s per frame; "
        f"SER vs dense Chamfer: hand {report['hand_ser_vs_dense_cm2']:.4f} cm^2, "
        f"object {report['object_ser_vs_dense_cm2']:.4f} cm^2 (sampled); "
        f"hand {report['hand_ser_vs_dense_surface_cm2']:.2e}, "
        f"object {report['object_ser_vs_dense_surface_cm2']:.2e} cm^2 (to the surface; 0 = same mesh)"
    )
    for part in ("hand", "object"):
        vs_gt = report.get(f"{part}_chamfer_vs_gt_cm2")
        if vs_gt and vs_gt["relative_difference"] is not None:
            lines.append(
                f"{part} Chamfer to GT: dense {vs_gt['dense']:.4f}, SER {vs_gt['ser']:.4f} cm^2 "
                f"({100 * vs_gt['relative_difference']:+.2f}%)"
            )
    return "\n".join(lines)
