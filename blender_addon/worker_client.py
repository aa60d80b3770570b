"""Client for the reconstruction worker: a `c2f reconstruct --jsonl` subprocess of a Python environment with torch.

Standard library only (no bpy, no c2f_core), so it runs in any Python and is tested on its own.

The worker prints one JSON object per line on stdout:
```
{"event": "start", "total": N}
{"event": "progress", "done": i, "total": N}
{"event": "frame", "frame": f, "hand": path, "object": path, "json": path}
{"event": "warning", "message": m[, "frame": f]}   a notice (no hand detector, a jump of the hand)
{"event": "error", "frame": f, "message": m}       one frame failed, the others go on
{"event": "fatal", "message": m}                   the run stopped
{"event": "done", "out": OUT}
{"event": "animate", "stage": s}                   with --animate: the take-level fit's stage, after "done"
{"event": "animation", "glb": path}                with --animate: OUT/animation/ is written (the end)
{"event": "animation", "error": m}                 with --animate: the fit failed; the frames stand
```
Anything else on stdout is kept as a log line; stderr is kept (its tail) for error messages.

Nothing here blocks without a bound: lines are read by threads into a queue that is only ever
read with a timeout; a worker that prints nothing for `stall_timeout` seconds is stopped and
reported, and one that exits without `done` is reported with its exit code and stderr tail.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

EVENTS = ("start", "progress", "frame", "error", "fatal", "done", "animate", "animation")
STDERR_TAIL_LINES = 40
EXIT_WAIT_S = 10.0
"""How long to wait for the worker to exit after its stdout closed, or after being asked to stop."""

PROBE_SCRIPT = """
import json, sys
report = {"python": sys.version.split()[0], "executable": sys.executable}
for name in ("numpy", "torch", "c2f_core"):
    try:
        module = __import__(name)
        report[name] = getattr(module, "__version__", "?")
    except Exception as exc:
        report[name + "_error"] = f"{type(exc).__name__}: {exc}"
if "torch" in report:
    import torch
    report["cuda"] = bool(torch.cuda.is_available())
if "c2f_core" in report:
    try:
        import c2f_core.cli.reconstruct
        report["reconstruct"] = True
    except Exception as exc:
        report["reconstruct_error"] = f"{type(exc).__name__}: {exc}"
print("C2F-PROBE " + json.dumps(report))
"""


class WorkerError(Exception):
    """The worker could not start, stopped with an error, died, or stalled; the message is for the user."""


@dataclass
class ReconstructRequest:
    """What to reconstruct and with which worker; builds the worker's command line."""

    python: str
    """Python executable of an environment with c2f_core and torch."""
    out_dir: str
    """Output folder of `c2f reconstruct`."""
    take_dir: str | None = None
    """A take folder, or None for a single frame given by the three files below."""
    color: str | None = None
    depth: str | None = None
    intrinsics: str | None = None
    checkpoint: str | None = None
    """None: the worker's default checkpoint."""
    frames: tuple[int, int] | None = None
    """(first, last) frame numbers, both included; None: every frame."""
    bbox: tuple[int, int, int, int] | None = None
    """Crop box (x0, y0, x1, y1) in pixels; None: found automatically."""
    device: str = "auto"
    hand: str = "sdf"
    """Hand mesh: "sdf" (the network's surface) or "fit" (the fitted open hand)."""
    animate: bool = False
    """A take: also fit one rigged hand and one rigid object over it (`--animate`, OUT/animation/)."""

    def command(self) -> list[str]:
        """The worker's argv: `<python> -m c2f_core reconstruct INPUT --out OUT --jsonl [options]`."""
        if not self.python:
            raise WorkerError("no worker Python set (add-on preferences: Worker Python)")
        cmd = [self.python, "-m", "c2f_core", "reconstruct"]
        if self.take_dir:
            cmd.append(self.take_dir)
        else:
            missing = [
                n
                for n, v in (("colour", self.color), ("depth", self.depth), ("intrinsics", self.intrinsics))
                if not v
            ]
            if missing:
                raise WorkerError(
                    f"a single frame needs colour, depth and intrinsics files; missing {', '.join(missing)}"
                )
            cmd += [
                "--color",
                str(self.color),
                "--depth",
                str(self.depth),
                "--intrinsics",
                str(self.intrinsics),
            ]
        cmd += ["--out", self.out_dir, "--jsonl", "--device", self.device]
        if self.animate and self.take_dir:
            cmd.append("--animate")
        if self.hand != "sdf":
            cmd += ["--hand", self.hand]
        if self.checkpoint:
            cmd += ["--checkpoint", self.checkpoint]
        if self.frames is not None:
            first, last = self.frames
            if last < first:
                raise WorkerError(f"frame range {first}..{last} is empty")
            cmd += ["--frames", f"{first}:{last}"]
        if self.bbox is not None:
            x0, y0, x1, y1 = self.bbox
            if x1 <= x0 or y1 <= y0:
                raise WorkerError(f"crop box {self.bbox} is empty (needs x1 > x0 and y1 > y0)")
            cmd += ["--bbox", f"{x0},{y0},{x1},{y1}"]
        return cmd


@dataclass
class WorkerState:
    """What the worker has reported so far."""

    total: int | None = None
    done: int = 0
    frames: list[dict] = field(default_factory=list)
    """The `frame` events, in arrival order."""
    errors: dict[int, str] = field(default_factory=dict)
    """Failed frame -> message."""
    out: str | None = None
    finished: bool = False
    expects_animation: bool = False
    """The command has --animate: the run ends with the "animation" event, not with "done"."""
    stage: str | None = None
    """The take-level fit's current stage, once the frames are done."""
    animation_error: str | None = None
    """Why the take-level fit failed (the frames are still there), else None."""
    log: collections.deque = field(default_factory=lambda: collections.deque(maxlen=STDERR_TAIL_LINES))
    """Non-JSON stdout lines and stderr lines, newest last."""

    @property
    def fraction(self) -> float:
        """Progress in [0, 1]."""
        return min(1.0, self.done / self.total) if self.total else 0.0


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # one line per event, as it happens
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class WorkerClient:
    """Runs one worker process and turns its output into events and a `WorkerState`."""

    def __init__(self, command: Sequence[str], stall_timeout: float, cwd: str | None = None):
        if stall_timeout <= 0:
            raise ValueError(f"stall_timeout must be positive, got {stall_timeout}")
        self.command = list(command)
        self.stall_timeout = float(stall_timeout)
        self.cwd = cwd
        self.state = WorkerState(expects_animation="--animate" in self.command)
        self._queue: queue.Queue = queue.Queue()
        self._process: subprocess.Popen | None = None
        self._last_line = time.monotonic()
        self._stdout_closed = False

    def start(self) -> None:
        """Start the worker process and its two reader threads."""
        try:
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                env=_worker_env(),
                cwd=self.cwd,
                # Its own process group, so stopping it also stops anything it started.
                start_new_session=(os.name == "posix"),
            )
        except FileNotFoundError:
            raise WorkerError(
                f"worker Python not found: {self.command[0]} (set Worker Python in the add-on preferences)"
            ) from None
        except OSError as exc:
            raise WorkerError(f"cannot start the worker {self.command[0]}: {exc}") from None
        self._last_line = time.monotonic()
        for stream, name in ((self._process.stdout, "stdout"), (self._process.stderr, "stderr")):
            threading.Thread(
                target=self._read, args=(stream, name), daemon=True, name=f"c2f-worker-{name}"
            ).start()

    def _read(self, stream, name: str) -> None:
        for line in stream:
            self._queue.put((name, line.rstrip("\r\n")))
        self._queue.put((name, None))

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def poll(self, wait: float = 0.0) -> list[dict]:
        """Collect the events that arrived, waiting at most `wait` seconds for the first one.

        Returns:
            The new events (also folded into `self.state`).

        Raises:
            WorkerError: on a `fatal` event, a stall, or a worker that exited without `done`.
        """
        if self._process is None:
            raise RuntimeError("start() the worker first")
        events = []
        deadline = time.monotonic() + max(0.0, wait)
        while not self.state.finished:
            item = self._get(deadline - time.monotonic())
            if item is None:
                break
            deadline = time.monotonic()  # after the first item, only drain what is already there
            event = self._parse(*item)
            if event is not None:
                events.append(event)
                self._apply(event)
        if not self.state.finished:
            self._check_alive()
        return events

    def _get(self, timeout: float) -> tuple[str, str] | None:
        """The next output line as (stream, line), or None when none came within `timeout` seconds."""
        while True:
            try:
                source, line = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                return None
            self._last_line = time.monotonic()
            if line is not None:
                return source, line
            if source == "stdout":
                self._stdout_closed = True
            timeout = 0.0

    def _parse(self, source: str, line: str) -> dict | None:
        if source == "stdout" and line.startswith("{"):
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = None
            if isinstance(event, dict) and event.get("event") in EVENTS:
                return event
        if line.strip():
            self.state.log.append(line)
        return None

    def _apply(self, event: dict) -> None:
        kind = event["event"]
        state = self.state
        if kind == "start":
            state.total = int(event.get("total") or 0) or None
        elif kind == "progress":
            state.done = int(event.get("done", state.done))
            state.total = int(event.get("total") or 0) or state.total
        elif kind == "frame":
            state.frames.append(event)
        elif kind == "error":
            state.errors[int(event.get("frame", -1))] = str(event.get("message", "unknown error"))
        elif kind == "fatal":
            self.stop()
            raise WorkerError(f"reconstruction failed: {event.get('message', 'unknown error')}")
        elif kind == "done":
            state.out = event.get("out")
            state.finished = not state.expects_animation
        elif kind == "animate":
            state.stage = str(event.get("stage", ""))
        elif kind == "animation":
            state.animation_error = str(event["error"]) if event.get("error") else None
            state.finished = True

    def _check_alive(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        silent = time.monotonic() - self._last_line
        # A dead worker normally closes stdout; a child it left behind may keep it open, hence the second test.
        if self._stdout_closed or (code is not None and silent > EXIT_WAIT_S):
            try:
                code = self._process.wait(timeout=EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                self.stop()
                raise WorkerError("the worker closed its output but did not exit; stopped it") from None
            self._drain_log(timeout=1.0)
            raise WorkerError(self._death_message(code))
        if silent > self.stall_timeout:
            self.stop()
            raise WorkerError(
                f"the worker printed nothing for {silent:.0f} s (stall timeout {self.stall_timeout:g} s, "
                "set in the add-on preferences); stopped it"
            )

    def _drain_log(self, timeout: float) -> None:
        """Move output still in the queue (the end of stderr, usually a traceback) into the log."""
        deadline = time.monotonic() + timeout
        while (item := self._get(deadline - time.monotonic())) is not None:
            self._parse(*item)

    def _death_message(self, code: int) -> str:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        tail = " | ".join(list(self.state.log)[-5:])
        return f"the worker {how} before finishing" + (f": {tail}" if tail else "")

    def stop(self) -> None:
        """Stop the worker (terminate, then kill after a grace period). Safe to call twice."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            process.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL if os.name == "posix" else signal.SIGTERM)
            process.wait(timeout=EXIT_WAIT_S)

    def _signal(self, sig: int) -> None:
        assert self._process is not None
        try:
            if os.name == "posix":
                os.killpg(self._process.pid, sig)  # the group this client created for the worker
            else:
                self._process.terminate()
        except ProcessLookupError:
            pass

    def run(self, on_event: Callable[[dict], None] | None = None, interval: float = 0.2) -> WorkerState:
        """Start (if needed) and wait for the worker to finish, calling `on_event` per event.

        Bounded: returns or raises within `stall_timeout` of the worker's last line.
        """
        if self._process is None:
            self.start()
        try:
            while not self.state.finished:
                for event in self.poll(wait=interval):
                    if on_event is not None:
                        on_event(event)
        except BaseException:
            self.stop()
            raise
        self._wait_exit()
        return self.state

    def _wait_exit(self) -> None:
        assert self._process is not None
        try:
            self._process.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.stop()


def probe_worker(python: str, timeout: float = 120.0) -> dict:
    """Ask a Python environment what it has: versions of numpy, torch and c2f_core, CUDA, `c2f reconstruct`.

    Raises:
        WorkerError: when the executable cannot run or does not answer within `timeout` seconds.
    """
    if not python:
        raise WorkerError("no worker Python set (add-on preferences: Worker Python)")
    try:
        result = subprocess.run(
            [python, "-c", PROBE_SCRIPT],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_worker_env(),
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise WorkerError(f"worker Python not found: {python}") from None
    except PermissionError:
        raise WorkerError(f"worker Python is not executable: {python}") from None
    except subprocess.TimeoutExpired:
        raise WorkerError(f"{python} did not answer within {timeout:g} s") from None
    for line in result.stdout.splitlines():
        if line.startswith("C2F-PROBE "):
            return json.loads(line[len("C2F-PROBE ") :])
    tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
    raise WorkerError(f"{python} is not a working Python ({tail})")


def describe_probe(report: dict) -> tuple[bool, str]:
    """Turn a `probe_worker` report into (ready, one-line message naming what is missing)."""
    missing = []
    if "c2f_core" not in report:
        missing.append("c2f_core (pip install c2f-handobject)")
    if "torch" not in report:
        missing.append("torch (pip install torch)")
    if "c2f_core" in report and "reconstruct" not in report:
        missing.append("the 'c2f reconstruct' command (update c2f-handobject)")
    python = f"Python {report.get('python', '?')} at {report.get('executable', '?')}"
    if missing:
        return False, f"{python} lacks {', '.join(missing)}"
    device = "CUDA available" if report.get("cuda") else "CPU only"
    return True, f"{python}: c2f_core {report['c2f_core']}, torch {report['torch']}, {device}"


def default_python() -> str:
    """The Python running this code: right for the `bpy` module in a c2f environment, not for Blender's own."""
    return sys.executable
