"""The training loop: one process, or several under ``torchrun`` (PyTorch DDP).

Repeatability and exact resume come from making every random choice a function of the seed and
the step, never of what ran before:

- the data order is a seeded permutation per epoch, cut into global batches of
  ``train.batch_size`` (``StepBatchSampler``); process r of W takes the r-th slice of each;
- each sample's crop jitter, augmentation and point sampling use a generator seeded by
  (seed, key) (``data.take_dataset.FrameDataset``);
- dropout draws from torch's generator, re-seeded from (seed, step, rank) before every step.

So a run resumed from ``last.pt`` at step s (weights, optimizer, scheduler, step, best validation)
repeats the losses an uninterrupted run has after step s, and W processes with batch B/W each
give the losses of one process with batch B (with ``model.norm: group``; BatchNorm statistics are
per process unless SyncBatchNorm, which needs CUDA).

Launch several processes with ``torchrun --nproc_per_node N -m c2f_core train ...``: rank 0 logs
and writes checkpoints; validation runs on rank 0 while the others wait.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from c2f_core.config import config_to_dict, dump_config, first_difference
from c2f_core.data.take_dataset import FrameDataset, FrameSource, split_indices
from c2f_core.device import resolve_device
from c2f_core.errors import C2FError
from c2f_core.io.atomic import ensure_writable_dir, write_text_atomic
from c2f_core.model.network import C2FNetwork
from c2f_core.train.checkpoint import load_checkpoint, load_state, save_checkpoint
from c2f_core.train.config import C2FConfig, load_c2f_config
from c2f_core.train.logs import CsvLog, plot_curves
from c2f_core.train.losses import TERMS, compute_losses
from c2f_core.train.run_folder import check_new_run_folder, clear_run_folder

MeshValidator = Callable[[C2FNetwork, FrameDataset, str], dict[str, float]]
"""(network in eval mode, validation dataset, device) -> mesh metrics named as ``logs.MESH_COLUMNS``."""
StepCallback = Callable[[int, dict[str, float]], None]
"""Called on every process after each step with (completed steps, global mean losses)."""

_SEED_STEP_STRIDE = 1_000_003
"""Spreads per-step dropout seeds: seed = seed * stride^2 + step * stride + rank."""


@dataclass
class DistContext:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    """Global rank of this process."""
    world_size: int = 1
    """Number of processes."""
    device: str = "cpu"
    """Torch device of this process."""

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes checkpoints."""
        return self.rank == 0


@dataclass
class TrainResult:
    """What a call to ``train`` did."""

    start_step: int
    """Completed steps when this call began (0, or the resumed checkpoint's step)."""
    end_step: int
    """Completed steps when it returned."""
    losses: dict[int, dict[str, float]] = field(default_factory=dict)
    """Global mean losses of every step run by this call, keyed by completed steps."""
    val: dict[str, float] | None = None
    """The last validation's results, if any."""
    seconds_per_step: float = float("nan")
    """Mean wall time per step of this call."""
    out_dir: Path | None = None
    """The run folder."""


def init_distributed(device_choice: str) -> DistContext:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1), else a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_choice)
    if world <= 1:
        return DistContext(0, 1, device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return DistContext(rank, world, device)


class StepBatchSampler(Sampler[list[int]]):
    """Sample keys this process trains on, one list per step, for steps [start_step, end_step).

    The global stream concatenates a seeded permutation of the N frames per epoch; global step s
    takes stream positions [s B, (s + 1) B) and process r its slice [r B/W, (r + 1) B/W). A
    position p of epoch e = p // N holding frame i yields key e N + i.
    """

    def __init__(
        self,
        num_items: int,
        global_batch: int,
        seed: int,
        rank: int,
        world_size: int,
        start_step: int,
        end_step: int,
    ):
        if global_batch % world_size:
            raise C2FError(f"train.batch_size {global_batch} is not divisible by the {world_size} processes")
        self.num_items = num_items
        self.global_batch = global_batch
        self.local_batch = global_batch // world_size
        self.seed = seed
        self.rank = rank
        self.start_step = start_step
        self.end_step = end_step
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self.seed, epoch, 7]).permutation(self.num_items)
        return self._perms[epoch]

    def global_keys(self, step: int) -> list[int]:
        """All keys of global step ``step`` (0-based: the batch that step ``step + 1`` trains on)."""
        keys = []
        for position in range(step * self.global_batch, (step + 1) * self.global_batch):
            epoch, offset = divmod(position, self.num_items)
            keys.append(epoch * self.num_items + int(self._perm(epoch)[offset]))
        return keys

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.end_step):
            keys = self.global_keys(step)
            yield keys[self.rank * self.local_batch : (self.rank + 1) * self.local_batch]

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)


def _trained_parameters(network: torch.nn.Module, prefixes: list[str]) -> list[torch.nn.Parameter]:
    """The parameters a run trains (all when ``prefixes`` is empty); the others are frozen."""
    if not prefixes:
        return list(network.parameters())
    trained = []
    for name, parameter in network.named_parameters():
        parameter.requires_grad_(name.startswith(tuple(prefixes)))
        if parameter.requires_grad:
            trained.append(parameter)
    if not trained:
        raise C2FError(f"train.trainable {prefixes} names no weight of this network")
    return trained


def _lr_factor(config: C2FConfig) -> Callable[[int], float]:
    decay_step = math.ceil(config.train.lr_decay_at * config.train.steps)
    factor = config.train.lr_decay_factor
    return lambda step: 1.0 if step < decay_step else factor


def _to_device(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
    }


def _autocast(config: C2FConfig, device: str) -> contextlib.AbstractContextManager:
    if config.train.amp and device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _global_mean(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.world_size > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= ctx.world_size
    return values


def validate(
    network: C2FNetwork, dataset: FrameDataset, config: C2FConfig, device: str, batch_size: int
) -> dict[str, float]:
    """Mean losses (unweighted terms and weighted total) over the first ``data.val_frames`` frames.

    Uses the plain GT crop box and no augmentation, with fixed per-frame sampling seeds.
    """
    count = min(len(dataset), config.data.val_frames)
    was_training = network.training
    network.eval()
    sums: dict[str, float] = {}
    with torch.no_grad():
        for start in range(0, count, batch_size):
            keys = list(range(start, min(count, start + batch_size)))
            batch = _to_device(torch.utils.data.default_collate([dataset[k] for k in keys]), device)
            with _autocast(config, device):
                out = network(batch)
            losses = compute_losses(out, batch, config.loss, network.sdf_clamp_nu)
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value) * len(keys)
    network.train(was_training)
    return {name: value / max(1, count) for name, value in sums.items()}


def _build_datasets(
    config: C2FConfig, sources: Sequence[FrameSource], val_sources: Sequence[FrameSource] | None
) -> tuple[FrameDataset, FrameDataset | None]:
    seed = config.train.seed
    if val_sources:
        return FrameDataset(sources, config, train=True, seed=seed), FrameDataset(
            val_sources, config, train=False, seed=seed
        )
    total = sum(len(s) for s in sources)
    train_idx, val_idx = split_indices(total, config.data.val_fraction, seed)
    train_ds = FrameDataset(sources, config, train=True, seed=seed, indices=train_idx)
    val_ds = FrameDataset(sources, config, train=False, seed=seed, indices=val_idx) if val_idx else None
    return train_ds, val_ds


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt (so a killed run saves last.pt), when in the main thread."""
    try:
        previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train(
    config: C2FConfig | None,
    sources: Sequence[FrameSource],
    out_dir: str | Path,
    *,
    val_sources: Sequence[FrameSource] | None = None,
    max_steps: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    device: str = "auto",
    mesh_validator: MeshValidator | None = None,
    step_callback: StepCallback | None = None,
) -> TrainResult:
    """Train (or resume training) a C2F-SDF network and write the run folder.

    Args:
        config: the run config; with ``resume`` it may be None (the checkpoint's is used) and
            otherwise must agree with the checkpoint on frames, data, augment, model and loss.
        sources: training frame sources (``data.take_dataset.open_sources`` for takes).
        out_dir: the run folder: config.yaml, log.csv, curves.png, last.pt, best.pt, step_*.pt.
        val_sources: held-out frames; without them ``data.val_fraction`` of the training frames.
        max_steps: stop after this many completed steps (the schedule still follows ``train.steps``).
        resume: continue from ``out_dir/last.pt``.
        overwrite: a new run in a folder holding one deletes the old run's files first (without it,
            and without ``resume``, such a folder is refused).
        quiet: no config print-out and no progress bar.
        device: "auto", "cpu" or "cuda".
        mesh_validator: optional mesh metrics at each validation (the CLI passes one).
        step_callback: called after every step (tests use it).

    Returns:
        A ``TrainResult``.
    """
    ctx = init_distributed(device)
    out = ensure_writable_dir(out_dir) if ctx.is_main else Path(out_dir)
    if ctx.is_main:
        check_new_run_folder(out, resume, overwrite)
    checkpoint = None
    if resume:
        checkpoint = load_checkpoint(Path(out_dir) / "last.pt")
        saved = load_c2f_config(checkpoint["config"])
        if config is not None:
            old, new = config_to_dict(saved), config_to_dict(config)
            for section in ("frames", "data", "augment", "model", "loss"):
                diff = first_difference(old[section], new[section], f"{section}.")
                if diff:
                    raise C2FError(
                        f"--resume: the config differs from the checkpoint's at '{diff}' "
                        "(resume without --config, or start a new run folder)"
                    )
        else:
            config = saved
    if config is None:
        raise C2FError("no config: give --config (or --resume an existing run)")
    config.validate()
    if ctx.is_main and overwrite:
        clear_run_folder(out)
    tcfg = config.train
    if tcfg.threads > 0:
        torch.set_num_threads(tcfg.threads)
    if ctx.is_main:
        write_text_atomic(out / "config.yaml", dump_config(config))
        if not quiet:
            print(f"# c2f train: run config ({ctx.world_size} process(es), device {ctx.device})")
            print(dump_config(config), end="", flush=True)

    train_ds, val_ds = _build_datasets(config, sources, val_sources)
    torch.manual_seed(tcfg.seed)
    network = C2FNetwork(config.model, config.frames, config.data.crop_size).to(ctx.device)
    if ctx.world_size > 1 and config.model.norm == "batch" and ctx.device.startswith("cuda"):
        network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)
    trained = _trained_parameters(network, tcfg.trainable)
    optimizer = torch.optim.AdamW(trained, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config))
    start_step, best_val = 0, None
    if checkpoint is not None:
        load_state(network, checkpoint["model"], str(Path(out_dir) / "last.pt"))
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        start_step, best_val = int(checkpoint["step"]), checkpoint.get("best_val")
    elif tcfg.init_weights:
        init_path = Path(tcfg.init_weights).expanduser()
        fresh = load_state(
            network, load_checkpoint(init_path)["model"], str(init_path), tuple(tcfg.trainable)
        )
        if fresh and ctx.is_main and not quiet:
            print(f"c2f train: {len(fresh)} weights are new (not in {init_path}): {fresh[0]} ...")
    model: torch.nn.Module = network
    if ctx.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            network,
            device_ids=[ctx.device] if ctx.device.startswith("cuda") else None,
            # the pixel joint head leaves the regressed joints' layer without a gradient
            find_unused_parameters=config.model.heads.joints != "regress",
        )

    end_step = tcfg.steps if max_steps is None else min(tcfg.steps, max_steps)
    sampler = StepBatchSampler(
        len(train_ds), tcfg.batch_size, tcfg.seed, ctx.rank, ctx.world_size, start_step, end_step
    )
    loader = DataLoader(
        train_ds,
        batch_sampler=sampler,
        num_workers=tcfg.num_workers,
        pin_memory=ctx.device.startswith("cuda"),
    )
    log = CsvLog(out / "log.csv", resume_step=start_step if resume else None) if ctx.is_main else None
    result = TrainResult(start_step=start_step, end_step=start_step, out_dir=out)
    if ctx.is_main and val_ds is None and not quiet:
        print(
            "c2f train: no validation frames (give --val-data or data.val_fraction); best.pt is not written",
            file=sys.stderr,
        )

    def save(step: int, name: str) -> None:
        save_checkpoint(
            out / name,
            {
                "config": config_to_dict(config),
                "step": step,
                "model": network.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "best_val": best_val,
                "world_size": ctx.world_size,
            },
        )

    from tqdm import tqdm

    bar = tqdm(
        total=end_step - start_step,
        desc="train",
        unit="step",
        file=sys.stderr,
        dynamic_ncols=True,
        disable=quiet or not ctx.is_main,
        leave=False,
    )
    interval_sums = torch.zeros(len(TERMS) + 1)
    interval_steps, interval_start, run_start = 0, time.perf_counter(), time.perf_counter()
    step = start_step
    network.train()
    try:
        with _sigterm_as_interrupt():
            for batch in loader:
                torch.manual_seed((tcfg.seed * _SEED_STEP_STRIDE + step) * _SEED_STEP_STRIDE + ctx.rank)
                batch = _to_device(batch, ctx.device)
                with _autocast(config, ctx.device):
                    outputs = model(batch)
                losses = compute_losses(outputs, batch, config.loss, network.sdf_clamp_nu)
                optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                if tcfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(trained, tcfg.grad_clip)
                lr = optimizer.param_groups[0]["lr"]
                optimizer.step()
                scheduler.step()
                step += 1
                values = _global_mean(
                    torch.stack([losses[k].detach().float().cpu() for k in ("total", *TERMS)]), ctx
                )
                step_losses = dict(zip(("total", *TERMS), values.tolist()))
                result.losses[step] = step_losses
                result.end_step = step
                if not math.isfinite(step_losses["total"]):
                    raise C2FError(
                        f"the training loss became {step_losses['total']} at step {step} "
                        "(lower train.lr or check the data)"
                    )
                interval_sums += values
                interval_steps += 1
                bar.update(1)
                bar.set_postfix(
                    loss=f"{step_losses['total']:.4f}",
                    sdf=f"{step_losses['sdf_hand']:.4f}/{step_losses['sdf_object']:.4f}",
                    refresh=False,
                )
                if ctx.is_main and (step % tcfg.log_every == 0 or step == end_step):
                    now = time.perf_counter()
                    means = (interval_sums / interval_steps).tolist()
                    log.append(
                        {
                            "step": step,
                            "split": "train",
                            "lr": lr,
                            "sec_per_step": (now - interval_start) / interval_steps,
                            **dict(zip(("total", *TERMS), means)),
                        }
                    )
                    interval_sums.zero_()
                    interval_steps, interval_start = 0, now
                validate_now = (
                    val_ds is not None
                    and tcfg.val_every > 0
                    and (step % tcfg.val_every == 0 or step == end_step)
                )
                if validate_now:
                    if ctx.is_main:
                        result.val = validate(network, val_ds, config, ctx.device, sampler.local_batch)
                        row = {"step": step, "split": "val", **result.val}
                        if mesh_validator is not None:
                            network.eval()
                            row.update(mesh_validator(network, val_ds, ctx.device))
                            network.train()
                        log.append(row)
                        score = result.val["sdf_hand"] + result.val["sdf_object"]
                        if best_val is None or score < best_val:
                            best_val = score
                            save(step, "best.pt")
                    if ctx.world_size > 1:
                        dist.barrier()
                if ctx.is_main:
                    if step % tcfg.ckpt_every == 0 or step == end_step:
                        save(step, "last.pt")
                    if tcfg.keep_every > 0 and step % tcfg.keep_every == 0:
                        save(step, f"step_{step:07d}.pt")
                    if validate_now or step % tcfg.ckpt_every == 0 or step == end_step:
                        plot_curves(out / "log.csv", out / "curves.png")
                if step_callback is not None:
                    step_callback(step, step_losses)
    except KeyboardInterrupt:
        if ctx.is_main and ctx.world_size == 1 and step > start_step:
            save(step, "last.pt")
            plot_curves(out / "log.csv", out / "curves.png")
        raise
    finally:
        bar.close()
    if step > start_step:
        result.seconds_per_step = (time.perf_counter() - run_start) / (step - start_step)
    if ctx.world_size > 1:
        dist.barrier()
    return result
