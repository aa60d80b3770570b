"""GPU check: the CUDA paths give the CPU's results (reconstruction, training steps, kNN, the bench).

    python benchmarks/gpu_check.py [--frames 2] [--steps 3] [--resolution 128] [--json FILE]
    python benchmarks/gpu_check.py --device cpu --resolution 64   # the comparisons, CPU against itself

On a machine with CUDA it runs each part on the CPU and on CUDA and compares:

- kNN (``geometry.knn``: cKDTree on CPU, cdist + top-k on CUDA): the same neighbours;
- reconstruction of a few synthetic frames with the bundled model (SER, the default settings):
  the same query counts (within 2%) and meshes whose surface Chamfer to the CPU's is below
  1e-3 cm^2 (float32 on both, so only rounding differs);
- a few training steps of the tiny model from the same start, amp off: the same losses
  (relative 1e-3 at the first step, 2e-2 after the optimiser has moved the weights);
- ``c2f bench`` on CUDA, one frame: SER at most 2% of the dense queries (at 128^3) and SER's mesh
  the dense one (surface Chamfer below 1e-3 cm^2); its per-stage seconds are printed.

It exits 1 when a comparison fails, 0 otherwise. Without CUDA it runs the CPU parts (so the script
itself is checked anywhere), says that the CUDA parts are skipped, and exits 0; ``--device cpu``
runs every comparison of the CPU against itself (a test of the script; the bench's dense pass is
slow there, use ``--resolution 64``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from c2f_core.cli.reconstruct import default_checkpoint
from c2f_core.data.take_dataset import open_sources
from c2f_core.geometry.knn import knn
from c2f_core.io.take import Take
from c2f_core.recon.bench import format_bench, run_bench, surface_chamfer
from c2f_core.recon.locate import locate_hand
from c2f_core.recon.runner import ReconstructionSettings, make_detector, reconstruct_frame
from c2f_core.synth.generate import generate_take
from c2f_core.train.checkpoint import load_model
from c2f_core.train.config import load_c2f_config
from c2f_core.train.loop import train

MESH_CHAMFER_CM2 = 1e-3
"""Largest surface Chamfer (cm^2) between a CUDA mesh and the CPU mesh of the same frame."""
QUERY_RELATIVE = 0.02
"""Largest relative difference of SER query counts between CUDA and CPU."""
FIRST_LOSS_RELATIVE = 1e-3
"""Largest relative difference of the first training step's losses (same weights, same batch)."""
LATER_LOSS_RELATIVE = 2e-2
"""The same after the optimiser has taken steps (rounding differences grow)."""
SER_QUERY_FRACTION = 0.02
"""Most SER queries, as a fraction of dense, in the CUDA bench at 128^3 (the surface's share of the
grid grows as 1 / resolution, so the limit scales with 128 / resolution)."""
TINY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"


class Checks:
    """Collects named pass/fail results and prints them as they come."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.rows.append({"check": name, "ok": bool(ok), "detail": detail})
        print(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}", flush=True)

    @property
    def failed(self) -> list[str]:
        return [str(r["check"]) for r in self.rows if not r["ok"]]


def check_knn(checks: Checks, device: str) -> None:
    """The same 16 neighbours from the kd-tree (CPU) and from cdist + top-k (`device`)."""
    gen = torch.Generator().manual_seed(0)
    queries = torch.rand(2, 20_000, 3, generator=gen)
    points = torch.rand(2, 1024, 3, generator=gen)
    dist_cpu, idx_cpu = knn(queries, points, 16)
    dist_dev, idx_dev = knn(queries.to(device), points.to(device), 16)
    same = (idx_dev.cpu() == idx_cpu).float().mean().item()
    error = (dist_dev.cpu() - dist_cpu).abs().max().item()
    # a swap of two equally distant neighbours is no error: compare the distances too
    checks.add(
        f"knn {device}",
        same > 0.999 and error < 1e-5,
        f"{100 * same:.3f}% same indices, max |d^2| diff {error:.1e}",
    )


def reconstruct_frames(take: Take, frames: int, device: str, resolution: int) -> list[dict[str, object]]:
    """SER meshes, query counts and seconds of the first `frames` frames on `device`."""
    network, config = load_model(default_checkpoint(), device)
    settings = ReconstructionSettings(resolution=resolution)
    detector, _ = make_detector(settings.detector)
    results = []
    for frame_id in take.frame_ids[:frames]:
        frame = take.read_frame(frame_id)
        seen, crop = locate_hand(frame, settings.locate, detector)
        start = time.perf_counter()
        result = reconstruct_frame(network, config, seen, crop, settings, device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        results.append(
            {
                "frame": frame_id,
                "hand": result.hand,
                "object": result.object,
                "queries": result.queries,
                "seconds": time.perf_counter() - start,
            }
        )
    return results


def check_reconstruction(checks: Checks, cpu: list[dict], cuda: list[dict]) -> None:
    """CUDA meshes and query counts against the CPU's, frame by frame."""
    for a, b in zip(cpu, cuda, strict=True):
        queries = abs(a["queries"] - b["queries"]) / max(a["queries"], 1)
        checks.add(
            f"reconstruction frame {a['frame']} queries",
            queries <= QUERY_RELATIVE,
            f"CPU {a['queries']}, CUDA {b['queries']} ({100 * queries:.2f}%); "
            f"seconds CPU {a['seconds']:.2f}, CUDA {b['seconds']:.2f}",
        )
        for part in ("hand", "object"):
            mesh_a, mesh_b = a[part], b[part]
            if mesh_a.is_empty or mesh_b.is_empty:
                ok = mesh_a.is_empty == mesh_b.is_empty
                checks.add(
                    f"reconstruction frame {a['frame']} {part}", ok, "empty on " + ("both" if ok else "one")
                )
                continue
            chamfer = surface_chamfer(mesh_a, mesh_b)
            checks.add(
                f"reconstruction frame {a['frame']} {part}",
                chamfer < MESH_CHAMFER_CM2,
                f"surface Chamfer CPU vs CUDA {chamfer:.2e} cm^2, faces {len(mesh_a.faces)} vs {len(mesh_b.faces)}",
            )


def train_steps(take_dir: Path, out: Path, steps: int, device: str) -> dict[int, dict[str, float]]:
    """Per-step losses of `steps` steps of the tiny model on the take (amp off, no validation)."""
    config = load_c2f_config(TINY_CONFIG)
    config.train.amp = False
    config.train.val_every = 0
    config.data.val_fraction = 0.0
    result = train(config, open_sources([take_dir]), out, max_steps=steps, quiet=True, device=device)
    return result.losses


def check_training(
    checks: Checks, cpu: dict[int, dict[str, float]], cuda: dict[int, dict[str, float]]
) -> None:
    """CUDA losses against the CPU's, step by step."""
    for step in sorted(cpu):
        tolerance = FIRST_LOSS_RELATIVE if step == min(cpu) else LATER_LOSS_RELATIVE
        worst, worst_term = 0.0, "total"
        for term, value in cpu[step].items():
            other = cuda.get(step, {}).get(term, float("nan"))
            relative = abs(other - value) / max(abs(value), 1e-8)
            if not relative <= worst:  # NaN counts as the worst
                worst, worst_term = relative, term
        checks.add(
            f"training step {step}",
            worst <= tolerance,
            f"total CPU {cpu[step]['total']:.6f}, CUDA {cuda.get(step, {}).get('total', float('nan')):.6f}; "
            f"largest relative difference {worst:.1e} ({worst_term}), tolerance {tolerance:g}",
        )


def check_bench(checks: Checks, take: Take, device: str, resolution: int) -> dict:
    """``c2f bench`` on one frame on `device`: SER's query share and its mesh against dense."""
    network, config = load_model(default_checkpoint(), device)
    report = run_bench(take, network, config, 1, resolution, device, quiet=True)
    print(format_bench(report), flush=True)
    limit = SER_QUERY_FRACTION * 128 / resolution
    checks.add(
        f"bench {device} queries",
        report["ser_query_fraction"] <= limit,
        f"SER {100 * report['ser_query_fraction']:.2f}% of dense (limit {100 * limit:.2f}%), "
        f"{report['speedup']:.1f}x faster",
    )
    for part in ("hand", "object"):
        value = report[f"{part}_ser_vs_dense_surface_cm2"]
        checks.add(
            f"bench {device} {part} SER vs dense",
            bool(np.isnan(value) or value < MESH_CHAMFER_CM2),
            f"surface Chamfer {value:.2e} cm^2",
        )
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the checks; 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2, help="synthetic frames reconstructed (default 2)")
    parser.add_argument("--steps", type=int, default=3, help="training steps compared (default 3)")
    parser.add_argument("--resolution", type=int, default=128, help="grid samples per axis (default 128)")
    parser.add_argument("--seed", type=int, default=90_000, help="seed of the synthetic take (default 90000)")
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default="cuda", help="compared with the CPU (default cuda)"
    )
    args = parser.parse_args(argv)

    device = args.device
    cuda = device == "cpu" or torch.cuda.is_available()
    if not cuda:
        print("CUDA is not available: the CUDA parts are skipped; running the CPU parts only.", flush=True)
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="c2f-gpu-check-") as tmp:
        take_dir = Path(tmp) / "take"
        generate_take(take_dir, frames=max(args.frames, 2), seed=args.seed, quiet=True)
        take = Take.open(take_dir)

        cpu_meshes = reconstruct_frames(take, args.frames, "cpu", args.resolution)
        cpu_losses = train_steps(take_dir, Path(tmp) / "train_cpu", args.steps, "cpu")
        checks.add(
            "CPU reference",
            all(np.isfinite(v["total"]) for v in cpu_losses.values()) and len(cpu_meshes) == args.frames,
            f"{args.frames} frame(s) reconstructed ({', '.join(str(r['queries']) for r in cpu_meshes)} queries), "
            f"{len(cpu_losses)} training step(s), last loss {cpu_losses[max(cpu_losses)]['total']:.6f}",
        )
        if cuda:
            if device == "cuda":
                print(f"CUDA device: {torch.cuda.get_device_name(0)}", flush=True)
            check_knn(checks, device)
            check_reconstruction(
                checks, cpu_meshes, reconstruct_frames(take, args.frames, device, args.resolution)
            )
            check_training(
                checks, cpu_losses, train_steps(take_dir, Path(tmp) / "train_cuda", args.steps, device)
            )
            check_bench(checks, take, device, args.resolution)

    if args.json:
        args.json.write_text(
            json.dumps({"compared": device if cuda else None, "checks": checks.rows}, indent=1) + "\n"
        )
    if checks.failed:
        print(f"{len(checks.failed)} check(s) failed: {', '.join(checks.failed)}", file=sys.stderr)
        return 1
    print("all checks passed" + (f" (CPU against {device})" if cuda else " (CPU only; CUDA parts skipped)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
