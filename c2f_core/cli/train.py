"""`c2f train`: train the C2F-SDF network on takes (synthetic or captured, with ground truth)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from c2f_core.errors import C2FError
from c2f_core.io.atomic import write_text_atomic
from c2f_core.io.lock import output_lock
from c2f_core.train.run_folder import check_new_run_folder

if TYPE_CHECKING:
    from c2f_core.train.config import C2FConfig

EPILOG = """\
examples:
  c2f train --config configs/cpu.yaml --data /data/synth_train --val-data /data/synth_val --out runs/cpu1
  c2f train --out runs/cpu1 --resume                 # continue after an interruption
  c2f train --config configs/cpu.yaml --data D --out runs/cpu1 --overwrite   # start runs/cpu1 afresh
  torchrun --nproc_per_node 4 -m c2f_core train --config configs/paper.yaml --data D --out R   # multi-GPU

The run folder holds config.yaml, log.csv, curves.png, last.pt, best.pt (with validation) and
step_NNNNNNN.pt every train.keep_every steps. --max-steps stops early; the learning-rate schedule
still follows train.steps, so a later --resume continues the same run. A new run into a folder
that holds a run is refused unless --resume or --overwrite is given, and one run at a time holds
a run folder (RUN/.c2f.lock).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `c2f train`."""
    parser = subparsers.add_parser(
        "train", help="train the network (writes checkpoints RUN/*.pt)", epilog=EPILOG
    )
    parser.add_argument(
        "--config", type=Path, help="run config YAML (configs/paper.yaml, configs/cpu.yaml, ...)"
    )
    parser.add_argument(
        "--data",
        nargs="+",
        type=Path,
        metavar="TAKE_OR_FOLDER",
        help="training takes, or folders of takes (frames need gt/NNNNNN.npz)",
    )
    parser.add_argument(
        "--val-data",
        nargs="+",
        type=Path,
        metavar="TAKE_OR_FOLDER",
        help="held-out takes for validation (default: data.val_fraction of --data)",
    )
    parser.add_argument("--out", type=Path, help="run folder (default runs/<config name>)")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --out that holds a run (its checkpoints, log and curves are deleted)",
    )
    parser.set_defaults(run=run)


def mesh_validator(frames_count: int, resolution: int):
    """Mesh metrics of the first ``frames_count`` validation frames, dense-reconstructed without GT alignment."""
    from c2f_core.data.crop import gt_box
    from c2f_core.data.inputs import make_input
    from c2f_core.eval.metrics import reconstruction_metrics
    from c2f_core.geometry.grid import GridCube
    from c2f_core.recon.dense import DenseExtractor, DenseExtractorConfig

    def validate(network, dataset, device: str) -> dict[str, float]:
        config = dataset.config
        scores: dict[str, list[float]] = {}
        for position in range(min(frames_count, len(dataset))):
            frame = dataset.frame(position)
            box = gt_box(frame.gt, frame.K, config.data.box_margin_px, config.data.box_scale)
            with torch.no_grad():
                state = network.encode(make_input(frame, box, config, device))
                cube = GridCube.from_center(
                    state.ref_m[0].double().cpu().numpy(), 2 * config.frames.cube_half_m, resolution
                )
                result = DenseExtractor(DenseExtractorConfig(device=device)).extract(
                    network.field_fn(state), cube, names=("hand", "object")
                )
            for name, tau, (chamfer_key, fscore_key) in (
                ("hand", 0.5, ("chamfer_hand_cm2", "fscore_hand_5mm")),
                ("object", 1.0, ("chamfer_object_cm2", "fscore_object_10mm")),
            ):
                mesh = result.meshes[name]
                metrics = reconstruction_metrics(
                    None if mesh.is_empty else mesh.vertices,
                    None if mesh.is_empty else mesh.faces,
                    frame.gt[f"{name}_verts"],
                    frame.gt[f"{name}_faces"],
                    (tau,),
                    num_samples=10000,
                )
                scores.setdefault(chamfer_key, []).append(metrics.chamfer_cm2)
                scores.setdefault(fscore_key, []).append(metrics.fscores[tau] if metrics.valid else 0.0)
        return {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in scores.items()}

    return validate


def run(args: argparse.Namespace) -> int:
    """Train, print where the run is and its last losses."""
    from c2f_core.data.take_dataset import open_sources
    from c2f_core.train.config import load_c2f_config

    if args.out is None:
        if args.config is None:
            raise C2FError("give --out RUN (and --config for a new run)")
        args.out = Path("runs") / args.config.stem
    if args.max_steps is not None and args.max_steps < 1:
        raise C2FError(f"--max-steps must be >= 1, found {args.max_steps}")
    config = load_c2f_config(args.config) if args.config else None
    if config is None and not args.resume:
        raise C2FError("give --config for a new run (or --resume an existing run folder)")
    data_record = args.out / "data.json"
    data, val_data = args.data, args.val_data
    if args.resume and data is None and data_record.is_file():
        data, val_data = _recorded_data(data_record, val_data)
    if not data:
        raise C2FError("give --data with at least one take or folder of takes")
    sources = open_sources(data)
    val_sources = open_sources(val_data) if val_data else None
    main_rank = int(os.environ.get("RANK", "0")) == 0
    with output_lock(args.out, "train") if main_rank else contextlib.nullcontext():
        if main_rank:
            check_new_run_folder(args.out, args.resume, args.overwrite)
        return _train(args, config, data, val_data, sources, val_sources, main_rank)


def _recorded_data(data_record: Path, val_data: list[Path] | None) -> tuple[list[Path], list[Path] | None]:
    """The training and validation data a run recorded in its data.json (--val-data overrides)."""
    try:
        record = json.loads(data_record.read_text())
        data = [Path(p) for p in record["data"]]
        recorded_val = [Path(p) for p in record["val_data"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise C2FError(
            f"{data_record} is not a readable record of the run's data; give --data (and --val-data)"
        ) from None
    return data, val_data or (recorded_val or None)


def _train(
    args: argparse.Namespace,
    config: C2FConfig | None,
    data: list[Path],
    val_data: list[Path] | None,
    sources: list,
    val_sources: list | None,
    main_rank: bool,
) -> int:
    """Train in the locked run folder: record the data in data.json, train, print a summary."""
    from c2f_core.train.config import load_c2f_config
    from c2f_core.train.loop import train

    effective = config
    if args.resume:  # read before anything is written: a broken last.pt changes nothing
        from c2f_core.train.checkpoint import load_checkpoint

        recorded = load_c2f_config(load_checkpoint(args.out / "last.pt")["config"])
        effective = config or recorded
    data_record = args.out / "data.json"
    if main_rank:
        write_text_atomic(
            data_record,
            json.dumps(
                {
                    "data": [str(p.resolve()) for p in data],
                    "val_data": [str(p.resolve()) for p in val_data or []],
                },
                indent=2,
            ),
        )
    validator = None
    if effective.train.val_mesh_frames > 0:
        validator = mesh_validator(effective.train.val_mesh_frames, effective.train.val_mesh_res)
    result = train(
        config,
        sources,
        args.out,
        val_sources=val_sources,
        max_steps=args.max_steps,
        resume=args.resume,
        overwrite=args.overwrite,
        quiet=args.quiet,
        device=args.device,
        mesh_validator=validator,
    )
    if result.end_step > result.start_step and main_rank:
        last = result.losses[result.end_step]
        print(
            f"trained steps {result.start_step}-{result.end_step} ({1.0 / result.seconds_per_step:.2f} steps/s); "
            f"loss {last['total']:.4f} (fine SDF hand {last['sdf_hand']:.4f}, object {last['sdf_object']:.4f} nu)"
        )
        if result.val:
            print(
                f"validation: fine SDF L1 hand {result.val['sdf_hand']:.4f}, object {result.val['sdf_object']:.4f} nu"
            )
        print(f"run folder: {args.out} (last.pt, log.csv, curves.png)")
    return 0
