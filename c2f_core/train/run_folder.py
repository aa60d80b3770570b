"""The run folder of `c2f train`: a new run never silently replaces an earlier run's files."""

from __future__ import annotations

from pathlib import Path

from c2f_core.errors import C2FError

RUN_MARKERS = ("last.pt", "log.csv")
"""Files whose presence means a folder already holds a run."""
RUN_FILES = ("last.pt", "best.pt", "log.csv", "curves.png", "config.yaml")
"""What a run writes (besides step_NNNNNNN.pt); --overwrite removes these before a new run."""


def check_new_run_folder(out: str | Path, resume: bool, overwrite: bool) -> None:
    """Refuse a new run in a folder holding a run, unless resuming it or told to overwrite it."""
    if resume and overwrite:
        raise C2FError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    if resume or overwrite:
        return
    found = [name for name in RUN_MARKERS if (Path(out) / name).is_file()]
    if found:
        raise C2FError(
            f"{out} already holds a training run ({found[0]}); pass --resume to continue it, "
            "--overwrite to start afresh, or choose another --out"
        )


def clear_run_folder(out: str | Path) -> list[Path]:
    """Delete an earlier run's files from `out` (only the files a run writes); return them."""
    out = Path(out)
    old = [out / name for name in RUN_FILES] + sorted(out.glob("step_[0-9]*.pt"))
    removed = [path for path in old if path.is_file()]
    for path in removed:
        path.unlink()
    return removed
