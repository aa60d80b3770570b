"""The contact sheet and the `c2f synth` command."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from c2f_core.cli import synth as synth_cli
from c2f_core.errors import C2FError
from c2f_core.synth.sheet import contact_sheet


def test_contact_sheet_of_a_take(clean_take: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = clean_take
    out = contact_sheet(root, tmp_path / "sheet.png", panel_width=160)
    image = np.asarray(Image.open(out))
    # Three frames, two per row: two rows of two tiles, each tile three 160x120 panels.
    assert image.shape == (2 * 120, 2 * 3 * 160, 3)
    assert image[:120, 320:480].std() > 0  # the overlay panel is not empty


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="c2f")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true")
    subparsers = root.add_subparsers(dest="command")

    class Adder:
        def add_parser(self, name: str, **kwargs: object) -> argparse.ArgumentParser:
            return subparsers.add_parser(name, parents=[common], **kwargs)

    synth_cli.add_parser(Adder())
    return root


def test_cli_writes_a_take_and_a_sheet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(
        [
            "synth",
            str(tmp_path / "take"),
            "--frames",
            "1",
            "--seed",
            "2",
            "--size",
            "96x72",
            "--sdf-samples",
            "200",
            "--contact-sheet",
            str(tmp_path / "s.png"),
        ]
    )
    assert args.run(args) == 0
    assert (tmp_path / "take" / "gt" / "000000.npz").is_file() and (tmp_path / "s.png").is_file()
    assert "1 frame(s)" in capsys.readouterr().out


@pytest.mark.parametrize("size", ["640", "10x10", "axb"])
def test_cli_rejects_bad_sizes(size: str) -> None:
    with pytest.raises(C2FError, match="size"):
        synth_cli.parse_size(size)
