"""Run logs: ``RUN/log.csv`` (one row per logged step and per validation) and ``RUN/curves.png``."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from c2f_core.io.atomic import atomic_path, no_space_error, write_text_atomic
from c2f_core.train.losses import TERMS

MESH_COLUMNS = ("chamfer_hand_cm2", "fscore_hand_5mm", "chamfer_object_cm2", "fscore_object_10mm")
"""Mesh metrics of a few validation frames (raw: no GT alignment), when a mesh validator is given."""
COLUMNS = ("step", "split", "lr", "sec_per_step", "total", *TERMS, *MESH_COLUMNS)
"""Columns of log.csv; ``split`` is "train" (averaged over the last log interval) or "val"."""


class CsvLog:
    """Appends rows to log.csv; on resume, drops rows logged after the checkpoint's step."""

    def __init__(self, path: str | Path, resume_step: int | None = None):
        self.path = Path(path)
        kept: list[dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            kept = [r for r in read_log(self.path) if int(r["step"]) <= resume_step]
        self._rewrite(kept)

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        lines = [",".join(COLUMNS)] + [",".join(str(r.get(c, "")) for c in COLUMNS) for r in rows]
        write_text_atomic(self.path, "\n".join(lines) + "\n")

    def append(self, row: dict[str, float | int | str]) -> None:
        """Add one row (missing columns stay empty) and flush it to disk."""
        values = []
        for column in COLUMNS:
            value = row.get(column, "")
            values.append(f"{value:.6g}" if isinstance(value, float) else str(value))
        size = self.path.stat().st_size
        try:
            with self.path.open("a") as handle:
                handle.write(",".join(values) + "\n")
        except OSError as exc:
            os.truncate(self.path, size)  # no half row left behind
            full = no_space_error(exc, self.path)
            if full is None:
                raise
            raise full from None


def read_log(path: str | Path) -> list[dict[str, str]]:
    """The rows of a log.csv as dicts of strings."""
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))


def plot_curves(log_path: str | Path, png_path: str | Path) -> None:
    """Plot the loss curves of log.csv (train lines, validation markers, log scale) to a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(log_path)
    panels = (
        ("total", ("total",)),
        ("fine SDF L1 (nu)", ("sdf_hand", "sdf_object")),
        ("coarse SDF L1 (nu)", ("coarse_hand", "coarse_object")),
        ("pose (nu^2)", ("joints", "object_center", "hand_points")),
        ("heatmap MSE", ("heatmap",)),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for ax, (title, keys) in zip(axes, panels):
        for i, key in enumerate(keys):
            for split, style in (("train", "-"), ("val", "o--")):
                points = [
                    (int(r["step"]), float(r[key]))
                    for r in rows
                    if r["split"] == split
                    and r.get(key) not in ("", None)
                    and math.isfinite(float(r[key]))
                    and float(r[key]) > 0
                ]
                if points:
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, style, color=f"C{i}", label=f"{key} ({split})", markersize=3)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
