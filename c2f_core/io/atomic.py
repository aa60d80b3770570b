"""Atomic file writes: write to a temporary file beside the target, then rename.

An interrupted run therefore never leaves a half-written file under the final name, and a rerun
can trust that every file it finds is complete. A full disk (or quota) while writing is a
`NoSpaceError` naming the file; the temporary file is removed and the files written before stay.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from c2f_core.errors import C2FError, NoSpaceError

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
"""OSError numbers that mean the disk or the user's quota is full."""
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^.]*)?$", re.ASCII)
"""Names `atomic_path` gives its temporary files: ".NAME.XXXXXXXX.tmp" plus NAME's suffix."""


def no_space_error(exc: OSError, target: str | Path) -> NoSpaceError | None:
    """The `NoSpaceError` to raise for `exc` while writing `target`, or None when it is another error."""
    if exc.errno not in NO_SPACE_ERRNOS:
        return None
    quota = " (disk quota exceeded)" if exc.errno == errno.EDQUOT else ""
    return NoSpaceError(f"no space left on device{quota} while writing {target}")


def ensure_writable_dir(path: str | Path) -> Path:
    """Create `path` if needed and check that files can be written in it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise C2FError(f"output path {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        full = no_space_error(exc, path)
        if full is not None:
            raise full from None
        raise C2FError(f"cannot create output folder {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise C2FError(f"output folder {path} is not writable")
    return path


def check_output_file(path: Path, option: str) -> None:
    """Refuse, before any long work, an output file option (e.g. --json) that names a folder."""
    if path.is_dir():
        raise C2FError(f"{option} {path} is a folder; give a file name")


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `target` if the block succeeds."""
    target = Path(target)
    if target.is_dir():
        raise C2FError(f"cannot write {target}: it is a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent
        )
    except OSError as exc:
        raise no_space_error(exc, target) or C2FError(f"cannot write {target}: {exc.strerror}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); give it the permissions an ordinary write would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        full = no_space_error(exc, target)
        if full is None:
            raise
        raise full from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `target` atomically."""
    write_bytes_atomic(target, text.encode("utf-8"))


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files killed runs left in `folder` (not in its subfolders); return them.

    Only names `atomic_path` makes are touched. Call it only while holding the folder's lock
    (`io.lock.output_lock`), when no other run can be writing there.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed  # no folder yet: nothing left over
    for entry in entries:
        if TEMP_NAME.match(entry.name) and entry.is_file():
            with contextlib.suppress(OSError):  # gone already, or not ours to delete: harmless
                entry.unlink()
                removed.append(entry)
    return removed
