"""The `c2f` command: parses arguments, dispatches to a subcommand, turns user errors into one line."""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import traceback
from collections.abc import Sequence

from c2f_core import __version__
from c2f_core.errors import C2FError

# Subcommand modules in the order `c2f --help` lists them; each has add_parser(subparsers) and run(args).
SUBCOMMANDS = (
    "demo",
    "animate",
    "bench",
    "benchmark-data",
    "evaluate",
    "import-capture",
    "info",
    "points",
    "prepare",
    "reconstruct",
    "synth",
    "train",
)


class _SubcommandAdder:
    """Adds the common options (--quiet, --device) to every subcommand's parser."""

    def __init__(self, subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser):
        self._subparsers = subparsers
        self._common = common

    def add_parser(self, name: str, **kwargs: object) -> argparse.ArgumentParser:
        parents = list(kwargs.pop("parents", []))  # type: ignore[arg-type]
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        if "description" not in kwargs and "help" in kwargs:
            kwargs["description"] = kwargs["help"]
        return self._subparsers.add_parser(name, parents=[self._common, *parents], **kwargs)


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bars or chatter, only results/errors"
    )
    group.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="compute device (auto: CUDA when present, else CPU)",
    )
    return common


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the `c2f` argument parser with every subcommand, or with `only` that one (a subcommand
    imports only what it needs: `c2f evaluate` starts without torch)."""
    parser = argparse.ArgumentParser(
        prog="c2f",
        description="Hand and object meshes from RGB-D frames and sequences (C2F-SDF).",
        epilog="Run 'c2f SUBCOMMAND --help' for the options of each subcommand.",
    )
    parser.add_argument("--version", action="version", version=f"c2f {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    adder = _SubcommandAdder(subparsers, _common_options())
    for name in SUBCOMMANDS if only is None else (only,):
        module = importlib.import_module(f"c2f_core.cli.{name.replace('-', '_')}")
        module.add_parser(adder)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `c2f` with `argv`; return the process exit code (0 ok, 1 partial failure, 2 error)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except C2FError as exc:
        print(f"c2f: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("c2f: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug or unforeseen failure: one line, traceback to a file
        print(f"c2f: error: {_unexpected(exc)}", file=sys.stderr)
        return 2


def _unexpected(exc: BaseException) -> str:
    """Describe an unexpected exception in one line and save its traceback to a log file."""
    lines = str(exc).strip().splitlines()
    message = f"unexpected {type(exc).__name__}" + (f": {lines[0]}" if lines else "")
    try:
        with tempfile.NamedTemporaryFile("w", prefix="c2f-traceback-", suffix=".log", delete=False) as log:
            traceback.print_exception(exc, file=log)
    except OSError:
        return f"{message} (please report this bug to the c2f developers)"
    return f"{message} (please report this bug; traceback in {log.name})"


if __name__ == "__main__":
    sys.exit(main())
