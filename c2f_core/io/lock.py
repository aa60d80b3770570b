"""One c2f run per output folder: a lock file holding the owner's pid and host.

```
OUT/.c2f.lock   {"pid": 1234, "host": "name", "command": "reconstruct", "started": "...", "token": "..."}
```
The lock file is created with O_CREAT | O_EXCL, so of two runs starting together exactly one gets
it. A second run on the same folder while the owner is alive is refused, naming the owner. A lock
whose process is gone (killed with SIGKILL, a power cut) is stale and taken over with a warning;
the takeover happens under an advisory lock on the folder, so two runs cannot both take it over.
A lock from another host cannot be checked and is refused; its message says how to remove it.
While the lock is held, the temporary files killed runs left in the folder are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from c2f_core.errors import C2FError
from c2f_core.io.atomic import ensure_writable_dir, no_space_error, remove_stale_temp_files

try:
    import fcntl
except ImportError:  # Windows: no advisory folder lock; O_EXCL still makes one run the owner
    fcntl = None

LOCK_NAME = ".c2f.lock"
UNREADABLE_LOCK_GRACE_S = 30.0
"""A lock file without a readable record is one being written for this long, then a crashed one."""


def _record(command: str, token: str) -> bytes:
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "token": token,
        }
    ).encode()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise C2FError(f"cannot read the lock file {path}: {exc.strerror}") from None


def _owner(data: bytes) -> dict | None:
    try:
        owner = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int) or isinstance(owner["pid"], bool):
        return None
    return owner


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (on Windows: assumed, it cannot be asked
    without a risk of stopping it)."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _folder_guard(folder: Path) -> Iterator[None]:
    """An advisory lock on the folder itself, serialising stale-lock takeovers (where the OS allows it)."""
    fd = None
    if fcntl is not None:
        with contextlib.suppress(OSError):  # a file system without flock: go on unguarded
            fd = os.open(folder, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _refusal(path: Path, owner: dict | None, host: str) -> C2FError:
    folder = path.parent
    if owner is None:
        return C2FError(
            f"{folder} is being locked by another c2f run (its lock file {path} is being written)"
        )
    what = f"c2f {owner['command']}" if owner.get("command") else "another c2f run"
    where = "" if owner.get("host") == host else f" on host {owner.get('host')}"
    return C2FError(
        f"{folder} is in use by {what} (pid {owner['pid']}{where}); wait for it to finish, use another "
        f"output folder, or delete {path} if that run is gone"
    )


def _acquire(path: Path, command: str, token: str) -> None:
    host = socket.gethostname()
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pass
        except OSError as exc:
            raise no_space_error(exc, path) or C2FError(
                f"cannot create the lock file {path}: {exc.strerror}"
            ) from None
        else:
            try:
                os.write(fd, _record(command, token))
            except OSError as exc:
                os.close(fd)
                path.unlink(missing_ok=True)
                raise no_space_error(exc, path) or C2FError(
                    f"cannot write the lock file {path}: {exc.strerror}"
                ) from None
            os.close(fd)
            return
        data = _read(path)
        if data is None:
            continue  # released between our two calls: try again
        owner = _owner(data)
        if owner is None:
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if age < UNREADABLE_LOCK_GRACE_S:
                raise _refusal(path, None, host)
        elif owner.get("host") != host or pid_alive(owner["pid"]):
            raise _refusal(path, owner, host)
        with _folder_guard(path.parent):
            stale = _read(path) == data  # not a newer owner's record
            if stale:
                path.unlink(missing_ok=True)
        if stale:
            who = f"pid {owner['pid']}, no longer running" if owner else "an unreadable lock file"
            print(f"c2f: warning: took over the stale lock of {path.parent} ({who})", file=sys.stderr)
    raise C2FError(f"cannot lock {path.parent}: other c2f runs keep taking its lock file {path}")


@contextlib.contextmanager
def output_lock(folder: str | Path, command: str, clean: Sequence[str] = (".",)) -> Iterator[Path]:
    """Hold the lock of output folder `folder` (created if needed) for the block; yield the folder.

    Args:
        folder: the output folder.
        command: the subcommand, recorded for the refusal message of a second run.
        clean: subfolders (relative to `folder`, "." for itself) whose leftover temporary files are
            removed once the lock is held.

    Raises:
        C2FError: the folder is in use by a live run (or one on another host), or not writable.
    """
    folder = ensure_writable_dir(folder)
    path = folder / LOCK_NAME
    token = secrets.token_hex(8)
    _acquire(path, command, token)
    try:
        for sub in clean:
            remove_stale_temp_files(folder / sub)
        yield folder
    finally:
        data = _read_quietly(path)
        owner = _owner(data) if data is not None else None
        if owner is not None and owner.get("token") == token:
            with contextlib.suppress(OSError):
                path.unlink()


def _read_quietly(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
