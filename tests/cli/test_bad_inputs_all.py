"""Every `c2f` subcommand, given bad inputs: exit code 2, exactly one line on stderr, no traceback,
and no file left under a final name that fails to parse (issue 18). Nothing here trains or
reconstructs real data: each case fails before the long work starts."""

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from c2f_core.cli.main import SUBCOMMANDS, main
from c2f_core.io.atomic import TEMP_NAME
from c2f_core.io.lock import LOCK_NAME
from c2f_core.io.take import TakeWriter
from c2f_core.train.checkpoint import load_checkpoint
from tests.conftest import TINY_INTRINSICS, tiny_frame

REPO = Path(__file__).resolve().parents[2]

# (subcommand, arguments); names in braces are the fixtures made by `inputs` below.
CASES = [
    ("animate", ["{missing}"]),
    ("animate", ["{a_file}"]),
    ("animate", ["{corrupt_recon}"]),
    ("animate", ["{folder}"]),
    ("demo", ["--out", "{a_file}"]),
    ("demo", ["--out", "{new}", "--checkpoint", "{missing}"]),
    ("demo", ["--out", "{new}", "--checkpoint", "{corrupt_pt}"]),
    ("bench", ["--checkpoint", "{missing}"]),
    ("bench", ["--checkpoint", "{corrupt_pt}"]),
    ("bench", ["--take", "{missing}"]),
    ("bench", ["--take", "{a_file}"]),
    ("bench", ["--take", "{take}", "--json", "{folder}"]),
    ("benchmark-data", ["{a_file}"]),
    ("benchmark-data", ["{new}", "--frames", "0"]),
    ("benchmark-data", ["{new}", "--reach-take-frames", "10"]),
    ("evaluate", ["{missing}", "{take}"]),
    ("evaluate", ["{a_file}", "{take}"]),
    ("evaluate", ["{corrupt_recon}", "{take}"]),
    ("evaluate", ["{corrupt_recon}", "{take}", "--json", "{folder}"]),
    ("import-capture", ["{missing}", "{new}"]),
    ("import-capture", ["{a_file}", "{new}"]),
    ("import-capture", ["{corrupt_r3d}", "{new}"]),
    ("import-capture", ["{take}", "{new}"]),
    ("info", ["{missing}"]),
    ("info", ["{a_file}"]),
    ("info", ["{corrupt_take}"]),
    ("info", ["--color", "{a_file}", "--depth", "{a_file}", "--intrinsics", "{a_file}"]),
    ("points", ["{missing}", "--out", "{new}"]),
    ("points", ["{take}", "--out", "{a_file}"]),
    ("points", ["{corrupt_take}", "--out", "{new}"]),
    ("prepare", ["dexycb", "{missing}", "--out", "{new}"]),
    ("prepare", ["dexycb", "{a_file}", "--out", "{new}"]),
    ("reconstruct", ["{missing}", "--out", "{new}"]),
    ("reconstruct", ["{take}", "--out", "{a_file}"]),
    ("reconstruct", ["{take}", "--out", "{new}", "--checkpoint", "{missing}"]),
    ("reconstruct", ["{take}", "--out", "{new}", "--checkpoint", "{corrupt_pt}"]),
    ("reconstruct", ["{corrupt_take}", "--out", "{new}"]),
    ("synth", ["{a_file}"]),
    ("synth", ["{new}", "--frames", "0"]),
    ("synth", ["{new}", "--turn", "180"]),
    ("synth", ["{new}", "--reach", "5"]),
    ("synth", ["{new}", "--sequence", "--frames", "4", "--reach", "4"]),
    ("train", ["--config", "{missing}", "--out", "{new}"]),
    ("train", ["--config", "{corrupt_yaml}", "--out", "{new}"]),
    ("train", ["--config", "{tiny_yaml}", "--data", "{missing}", "--out", "{new}"]),
    ("train", ["--config", "{tiny_yaml}", "--data", "{a_file}", "--out", "{new}"]),
    ("train", ["--config", "{tiny_yaml}", "--data", "{take}", "--out", "{a_file}"]),
    ("train", ["--data", "{take}", "--out", "{corrupt_run}", "--resume"]),
]


def test_every_subcommand_has_bad_input_cases():
    assert {command for command, _ in CASES} == set(SUBCOMMANDS)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A good tiny take and one broken thing of each kind."""
    root = tmp_path_factory.mktemp("inputs")
    with TakeWriter(root / "take", TINY_INTRINSICS) as writer:
        for i in range(2):
            writer.write(i, *tiny_frame(i))
    with TakeWriter(root / "corrupt_take", TINY_INTRINSICS) as writer:
        writer.write(0, *tiny_frame(0))
    (root / "corrupt_take/intrinsics.json").write_text('{"fx": 60, ')
    (root / "a_file.txt").write_text("a file, not a folder")
    (root / "folder").mkdir()
    (root / "corrupt.pt").write_bytes(b"PK\x03\x04 half a checkpoint")
    (root / "corrupt.yaml").write_text("model:\n  latent: [1, 2\n")
    (root / "corrupt.r3d").write_bytes(b"not a zip archive")
    (root / "corrupt_recon").mkdir()
    (root / "corrupt_recon/reconstruction.json").write_text('{"version": 1, ')
    (root / "corrupt_run").mkdir()
    (root / "corrupt_run/last.pt").write_bytes(b"PK\x03\x04 truncated")
    return {
        "take": root / "take",
        "corrupt_take": root / "corrupt_take",
        "a_file": root / "a_file.txt",
        "folder": root / "folder",
        "missing": root / "missing",
        "corrupt_pt": root / "corrupt.pt",
        "corrupt_yaml": root / "corrupt.yaml",
        "corrupt_r3d": root / "corrupt.r3d",
        "corrupt_recon": root / "corrupt_recon",
        "corrupt_run": root / "corrupt_run",
        "tiny_yaml": REPO / "configs/tiny.yaml",
    }


def files_under(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def check_parses(path: Path) -> None:
    """A file under its final name is whole: it parses as what its name says."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        json.loads(path.read_text())
    elif suffix in (".ply", ".obj", ".glb"):
        trimesh.load(path, process=False)
    elif suffix in (".png", ".jpg", ".jpeg"):
        with Image.open(path) as image:
            image.load()
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            [data[k] for k in data.files]
    elif suffix == ".pt":
        load_checkpoint(path)


@pytest.mark.parametrize(("command", "arguments"), CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CASES)])
def test_bad_input_is_one_line_and_exit_2(command, arguments, inputs, tmp_path, capfd):
    names = {**inputs, "new": tmp_path / "new"}
    argv = [command, *(a.format(**{k: str(v) for k, v in names.items()}) for a in arguments), "--quiet"]
    before = files_under(inputs["take"].parent)
    code = main(argv)
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (argv, out, err)
    assert len(lines) == 1 and lines[0].startswith("c2f: error: "), (argv, err)
    assert "Traceback" not in err + out
    changed = [p for p, t in files_under(inputs["take"].parent).items() if before.get(p) != t]
    assert changed == [], f"{argv} changed {changed}"
    for path in tmp_path.rglob("*"):
        assert not TEMP_NAME.match(path.name) and path.name != LOCK_NAME, path
        if path.is_file():
            check_parses(path)
