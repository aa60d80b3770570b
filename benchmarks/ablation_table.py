"""The paper's Table 1 on our data: reconstruct and evaluate several checkpoints on one benchmark take.

Each row is NAME=CHECKPOINT[:METHOD] (METHOD dense or ser, default dense). For every row this
runs the two documented commands, skipping work already done (both resume):

    c2f reconstruct BENCH --checkpoint CKPT --method METHOD --resolution R --frames F --out OUT/<row>
    c2f evaluate OUT/<row> BENCH --frames F --json OUT/<row>.eval.json

then writes OUT/table.md (one Markdown table per protocol, with the mean SDF queries and seconds
per frame) and OUT/table.json. Example (the README's table):

    python benchmarks/ablation_table.py --bench BENCH/frames --frames 0:19 --resolution 64 --overlap --out results/table1 \\
        --row "Pixel (RGB)=runs/abl_pixel_rgb/last.pt" --row "3D Point + Ref + SER=runs/cpu1/step_0001000.pt:ser"
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

COLUMNS = (
    ("CD_h", "hand", "chamfer_cm2_mean", 3),
    ("F_h@1", "hand", "fscore@0.1cm", 3),
    ("F_h@5", "hand", "fscore@0.5cm", 3),
    ("CD_o", "object", "chamfer_cm2_mean", 2),
    ("F_o@5", "object", "fscore@0.5cm", 3),
    ("F_o@10", "object", "fscore@1cm", 3),
    # Medians too: without alignment a few misplaced meshes dominate the mean Chamfer distance.
    ("CD_h med", "hand", "chamfer_cm2_median", 2),
    ("CD_o med", "object", "chamfer_cm2_median", 2),
)


def parse_row(text: str) -> tuple[str, Path, str]:
    """Split NAME=CHECKPOINT[:METHOD] into its parts."""
    if "=" not in text:
        raise SystemExit(f"--row must be NAME=CHECKPOINT[:METHOD], found {text!r}")
    name, rest = text.split("=", 1)
    checkpoint, _, method = rest.partition(":")
    method = method or "dense"
    if method not in ("dense", "ser"):
        raise SystemExit(f"--row {name}: method must be dense or ser, found {method!r}")
    if not Path(checkpoint).is_file():
        raise SystemExit(f"--row {name}: checkpoint not found: {checkpoint}")
    return name.strip(), Path(checkpoint), method


def slug(name: str) -> str:
    """A folder name for a row."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def c2f(*args: str) -> None:
    """Run one `c2f` subcommand in this interpreter's environment; stop on an error."""
    command = [sys.executable, "-m", "c2f_core", *args]
    print("$ c2f " + " ".join(args), flush=True)
    if subprocess.run(command, check=False).returncode not in (0, 1):
        raise SystemExit(f"c2f {args[0]} failed")


def frame_costs(recon_dir: Path) -> tuple[float, float]:
    """Mean SDF queries and seconds per reconstructed frame, from the per-frame JSON files."""
    queries, seconds = [], []
    for path in sorted(recon_dir.glob("[0-9]*.json")):
        info = json.loads(path.read_text())
        queries.append(info["queries"])
        seconds.append(info["timings"]["total"])
    return float(np.mean(queries)) if queries else np.nan, float(np.mean(seconds)) if seconds else np.nan


def main() -> None:
    """Build the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", type=Path, required=True, help="benchmark take with gt/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--row", action="append", required=True, help="NAME=CHECKPOINT[:dense|ser]")
    parser.add_argument("--frames", default=None, help="frames A:B or A,B,C (default all)")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument(
        "--overlap",
        action="store_true",
        help="pass --overlap to c2f reconstruct (mesh each field on its own, as the paper)",
    )
    args = parser.parse_args()
    rows = [parse_row(r) for r in args.row]
    args.out.mkdir(parents=True, exist_ok=True)
    frame_args = ["--frames", args.frames] if args.frames else []
    results = []
    for name, checkpoint, method in rows:
        recon = args.out / slug(name)
        report_path = args.out / f"{slug(name)}.eval.json"
        c2f(
            "reconstruct",
            str(args.bench),
            "--checkpoint",
            str(checkpoint),
            "--method",
            method,
            "--resolution",
            str(args.resolution),
            *frame_args,
            "--out",
            str(recon),
            "--no-usd",
            "-q",
            *(["--overlap"] if args.overlap else []),
        )
        if not report_path.is_file():
            c2f("evaluate", str(recon), str(args.bench), *frame_args, "--json", str(report_path), "-q")
        report = json.loads(report_path.read_text())
        queries, seconds = frame_costs(recon)
        results.append(
            {
                "row": name,
                "checkpoint": str(checkpoint),
                "method": method,
                "queries": queries,
                "seconds": seconds,
                "frames": report["frames"],
                "missing": len(report["missing"]),
                "protocols": report["protocols"],
            }
        )
    lines = []
    for protocol in results[0]["protocols"]:
        lines += [f"**{protocol} protocol** ({results[0]['frames']} frames, {args.resolution}^3 grid)", ""]
        lines.append("| setting | " + " | ".join(c[0] for c in COLUMNS) + " | SDF queries/frame | s/frame |")
        lines.append("|---" * (len(COLUMNS) + 3) + "|")
        for result in results:
            summary = result["protocols"][protocol]
            cells = [f"{summary[part].get(key, float('nan')):.{digits}f}" for _, part, key, digits in COLUMNS]
            lines.append(
                f"| {result['row']} | "
                + " | ".join(cells)
                + f" | {result['queries']:,.0f} | {result['seconds']:.1f} |"
            )
        lines.append("")
    (args.out / "table.md").write_text("\n".join(lines))
    (args.out / "table.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
