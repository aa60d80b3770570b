"""Running `c2f` in-process in CLI tests, and checking its one-line errors."""

from __future__ import annotations

from c2f_core.cli.main import main


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `c2f ARGV` run in this process."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """The single `c2f: error:` line of stderr (MediaPipe's W0000 chatter aside); fails otherwise."""
    lines = [line for line in err.strip().splitlines() if not line.startswith("W0000")]
    assert len(lines) == 1 and lines[0].startswith("c2f: error: ") and "Traceback" not in err, err
    return lines[0]
