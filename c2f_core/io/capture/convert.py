"""Turning a capture into a take: choose the reader, stream its frames into a `TakeWriter`, and cache
conversions made on the fly so `c2f reconstruct capture.bag` converts a recording only once.

Take frame numbers are the position in the selection: source frame `start + k * step` becomes take
frame k, so a frame that fails to convert leaves a gap rather than shifting the rest. Timestamps are
seconds since the first selected frame; `Intrinsics.fps` is the source rate divided by `step`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from c2f_core.config import describe_option, first_difference
from c2f_core.errors import C2FError, NoSpaceError
from c2f_core.io.atomic import ensure_writable_dir, write_text_atomic
from c2f_core.io.capture.bag import RealSenseBag
from c2f_core.io.capture.base import CaptureReader
from c2f_core.io.capture.folders import detect_folder_layout, is_take_folder, open_folder
from c2f_core.io.capture.r3d import Record3DFile
from c2f_core.io.intrinsics import Intrinsics
from c2f_core.io.lock import output_lock
from c2f_core.io.take import CAPTURE_FILE, CAPTURE_PARTIAL_FILE, FRAME_FOLDERS, Take, TakeWriter
from c2f_core.progress import progress

CAPTURE_FILE_SUFFIXES = (".bag", ".r3d")
UNDERSTOOD_LAYOUTS = (
    "a RealSense .bag, a Record3D .r3d, or a folder in DexYCB layout (color_NNNNNN.jpg + "
    "aligned_depth_to_color_NNNNNN.png), TUM RGB-D layout (rgb.txt + depth.txt) or plain layout "
    "(color/ + depth/)"
)
PROVENANCE_FILE = CAPTURE_FILE
"""Written last into every imported take: where it came from, with which options, and what was
skipped (also the cache's mark that a conversion finished)."""
_TAKE_ENTRIES = {
    "color",
    "depth",
    "gt",
    "intrinsics.json",
    "timestamps.csv",
    PROVENANCE_FILE,
    CAPTURE_PARTIAL_FILE,
}
_CACHE_VERSION = "1"


@dataclass(frozen=True)
class CaptureOptions:
    """Settings for reading a capture; each is None (or 0) to use what the capture itself says."""

    intrinsics: Path | None = None
    """Camera file (JSON or YAML with fx, fy, cx, cy; or our intrinsics.json) for image folders."""
    depth_scale: float | None = None
    """Metres per depth unit of 16-bit depth images in a folder (overrides the camera file)."""
    fps: float | None = None
    """Frame rate of an image folder (overrides the layout's default)."""
    min_confidence: int = 0
    """Record3D: drop depth whose ARKit confidence is below this (0 low, 1 medium, 2 high)."""


@dataclass
class ImportResult:
    """What `import_capture` did."""

    out_dir: Path
    format_name: str
    intrinsics: Intrinsics
    frames_written: int
    """Frames this call wrote."""
    frames_existing: int = 0
    """Frames a killed earlier run of the same import had written already (kept, not read again)."""
    failures: list[tuple[int, str]] = field(default_factory=list)
    """(source frame index, message) for each selected frame that could not be converted."""
    warnings: list[str] = field(default_factory=list)
    stream_error: str | None = None
    """Set when the source stopped early (a damaged file); the frames before it were written."""


def open_capture(source: str | Path, options: CaptureOptions | None = None) -> CaptureReader:
    """Open a capture file or folder with the reader for its format, or fail naming the understood layouts."""
    options = options or CaptureOptions()
    path = Path(source)
    if not path.exists():
        raise C2FError(f"capture not found: {path}")
    suffix = path.suffix.lower()
    if path.is_file() and suffix in CAPTURE_FILE_SUFFIXES:
        reader: CaptureReader = (
            RealSenseBag(path) if suffix == ".bag" else Record3DFile(path, options.min_confidence)
        )
        ignored = [
            flag
            for flag, value in (
                ("--intrinsics", options.intrinsics),
                ("--depth-scale", options.depth_scale),
                ("--fps", options.fps),
            )
            if value
        ]
        if ignored:
            reader.warnings.append(
                f"{', '.join(ignored)} ignored: a {reader.format_name} file records its own camera and timing"
            )
        return reader
    layout = detect_folder_layout(path) if path.is_dir() else None
    if layout is None and is_take_folder(path):
        raise C2FError(
            f"{path} is already a c2f take (intrinsics.json, color/, depth/): there is nothing to import; "
            "give it to the other c2f commands as it is"
        )
    if layout is None:
        what = "folder" if path.is_dir() else "file"
        raise C2FError(f"{path}: unknown capture {what}; understood: {UNDERSTOOD_LAYOUTS}")
    return open_folder(path, layout, options.intrinsics, options.depth_scale, options.fps)


def is_capture_source(path: str | Path) -> bool:
    """True when `path` names a capture (a .bag or .r3d file, or a capture folder) rather than a take."""
    path = Path(path)
    if path.suffix.lower() in CAPTURE_FILE_SUFFIXES and not path.is_dir():
        return True
    return detect_folder_layout(path) is not None


def _import_settings(
    source: Path, start: int, end: int | None, step: int, options: CaptureOptions, color_format: str
) -> dict[str, object]:
    """What decides an import's frames, keyed as the command-line options (a resume must repeat them)."""
    return {
        "source": str(source.resolve()),
        "start": start,
        "end": end,
        "step": step,
        "intrinsics": None if options.intrinsics is None else str(Path(options.intrinsics).resolve()),
        "depth_scale": options.depth_scale,
        "fps": options.fps,
        "min_confidence": options.min_confidence,
        "color_format": color_format,
    }


def _recorded_settings(out_dir: Path) -> dict | None:
    """The settings of the import that wrote `out_dir`: of an unfinished one, else of a finished one."""
    for name, key in ((CAPTURE_PARTIAL_FILE, None), (PROVENANCE_FILE, "import_settings")):
        try:
            record = json.loads((out_dir / name).read_text())
        except (OSError, ValueError):
            continue
        settings = record.get(key) if key and isinstance(record, dict) else record
        if isinstance(settings, dict):
            return settings
    return None


def _check_output_path(out_dir: Path, source: Path) -> None:
    out_resolved, source_resolved = out_dir.resolve(), source.resolve()
    if out_resolved == source_resolved or source_resolved.is_relative_to(out_resolved):
        raise C2FError(f"output folder {out_dir} would overwrite the capture {source}; choose another folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise C2FError(f"output path {out_dir} exists and is not a folder")


def _prepare_output(out_dir: Path, overwrite: bool, settings: dict[str, object]) -> bool:
    """Check (and with `overwrite` clear) the locked output folder; True when it holds this import to resume."""
    entries = [entry for entry in out_dir.iterdir() if not entry.name.startswith(".")]
    if not entries:
        return False
    if not overwrite:
        recorded = _recorded_settings(out_dir)
        if recorded is None:
            raise C2FError(f"output folder {out_dir} is not empty; choose a new folder or pass --overwrite")
        key = first_difference(recorded, settings)
        if key is not None:
            old, new = recorded.get(key), settings.get(key)
            said = (
                f"{old}, not {new}"
                if key == "source"
                else f"{describe_option(key, old)}, not {describe_option(key, new)}"
            )
            raise C2FError(
                f"output folder {out_dir} holds an import made with {said}; rerun with the same options "
                "to resume or repeat it, choose a new folder, or pass --overwrite"
            )
        return True
    foreign = sorted(entry.name for entry in entries if entry.name not in _TAKE_ENTRIES)
    if foreign:
        raise C2FError(
            f"output folder {out_dir} holds files that are not part of a take ({', '.join(foreign[:3])}); "
            "not overwriting it"
        )
    for entry in entries:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return False


def import_capture(
    source: str | Path,
    out_dir: str | Path,
    *,
    start: int = 0,
    end: int | None = None,
    step: int = 1,
    options: CaptureOptions | None = None,
    color_format: str = "png",
    overwrite: bool = False,
    quiet: bool = False,
) -> ImportResult:
    """Convert a capture into a take folder, streaming one frame at a time.

    The take is complete when `capture.json` is written, last; until then `capture.partial.json`
    holds the import's settings. A rerun with the same source and options resumes a killed import
    (or repeats a finished one): the frames already written are kept, not converted again.

    Args:
        source: a .bag / .r3d file or a capture folder.
        out_dir: the take folder to write (created; must be empty, or hold this same import,
            unless `overwrite`).
        start: first source frame (paired frames counted from 0).
        end: stop before this source frame (None: to the end).
        step: keep every `step`-th frame from `start`.
        options: reader settings (camera file, depth scale, fps, confidence).
        color_format: "png" (lossless) or "jpg".
        overwrite: replace an existing take in `out_dir`.
        quiet: no progress bar.

    Returns:
        An `ImportResult`; frames that failed are listed in it, the others are in the take.
    """
    if start < 0:
        raise C2FError(f"--start must be 0 or more, got {start}")
    if step < 1:
        raise C2FError(f"--step must be 1 or more, got {step}")
    if end is not None and end <= start:
        raise C2FError(f"--end ({end}) must be greater than --start ({start})")
    source, out_dir = Path(source), Path(out_dir)
    settings = _import_settings(source, start, end, step, options or CaptureOptions(), color_format)
    with open_capture(source, options) as reader:
        _check_output_path(out_dir, source)
        try:
            with output_lock(out_dir, "import-capture", clean=(".", *FRAME_FOLDERS)):
                resume = _prepare_output(out_dir, overwrite, settings)
                return _import_frames(
                    reader,
                    source,
                    out_dir,
                    (start, end, step),
                    color_format=color_format,
                    settings=settings,
                    resume=resume,
                    quiet=quiet,
                )
        finally:
            if out_dir.is_dir() and not any(out_dir.iterdir()):
                out_dir.rmdir()  # nothing was imported


def _import_frames(
    reader: CaptureReader,
    source: Path,
    out_dir: Path,
    selection: tuple[int, int | None, int],
    *,
    color_format: str,
    settings: dict[str, object],
    resume: bool,
    quiet: bool,
) -> ImportResult:
    """Stream the selected frames of an open capture into the (locked, prepared) take folder."""
    start, end, step = selection
    fps = reader.intrinsics.fps / step if reader.intrinsics.fps else None
    intrinsics = replace(reader.intrinsics, fps=fps)
    result = ImportResult(out_dir, reader.format_name, intrinsics, 0, warnings=reader.warnings)
    first_stamp: float | None = None
    empty_depth: list[int] = []
    total = reader.frame_count if end is None or reader.frame_count is None else min(end, reader.frame_count)
    # Marked unfinished before the first file of the take is written; complete again only when
    # capture.json is rewritten at the end.
    write_text_atomic(out_dir / CAPTURE_PARTIAL_FILE, json.dumps(settings, indent=2) + "\n")
    (out_dir / PROVENANCE_FILE).unlink(missing_ok=True)
    with TakeWriter(out_dir, intrinsics, color_format=color_format) as writer:
        frames = progress(
            reader.frames(), total=total, desc=f"importing {source.name}", quiet=quiet, unit="frame"
        )
        try:
            for frame in frames:
                if end is not None and frame.index >= end:
                    break
                if frame.index < start or (frame.index - start) % step:
                    continue
                if first_stamp is None:
                    first_stamp = frame.timestamp
                take_frame = (frame.index - start) // step
                stamp = (
                    None if frame.timestamp is None or first_stamp is None else frame.timestamp - first_stamp
                )
                if resume and _frame_written(writer, take_frame):
                    if stamp is not None:
                        writer.timestamps[take_frame] = float(stamp)
                    result.frames_existing += 1
                    continue
                try:
                    color, depth_m = frame.load()
                except C2FError as exc:
                    result.failures.append((frame.index, f"{frame.name}: {exc}"))
                    continue
                if not (depth_m > 0).any():
                    empty_depth.append(frame.index)
                writer.write(take_frame, color, depth_m, timestamp=stamp)
                result.frames_written += 1
        except NoSpaceError:
            raise  # the frames written so far stay; a rerun resumes after them
        except C2FError as exc:
            result.stream_error = str(exc)
    if empty_depth:
        shown = ", ".join(str(i) for i in empty_depth[:5]) + (" ..." if len(empty_depth) > 5 else "")
        result.warnings.append(
            f"{len(empty_depth)} frame(s) have no valid depth at all (source frames {shown})"
        )
    if result.frames_written + result.frames_existing == 0:
        _remove_take_files(out_dir)
        if result.stream_error:
            raise C2FError(result.stream_error)
        if result.failures:
            raise C2FError(
                f"no frame could be imported from {source}; first failure: {result.failures[0][1]}"
            )
        raise C2FError(
            f"{source}: no frames selected (the capture has {reader.frame_count} frame pairs; "
            f"--start {start}{'' if end is None else f' --end {end}'} --step {step})"
        )
    _write_provenance(out_dir, source, reader, result, start, end, step, settings)
    (out_dir / CAPTURE_PARTIAL_FILE).unlink(missing_ok=True)
    return result


def _frame_written(writer: TakeWriter, frame_id: int) -> bool:
    """Whether a take frame is complete on disk (the writer writes its depth after its colour)."""
    stem = f"{frame_id:06d}"
    return (writer.root / "depth" / f"{stem}.png").is_file() and (
        writer.root / "color" / f"{stem}.{writer.color_format}"
    ).is_file()


def _remove_take_files(out_dir: Path) -> None:
    for name in _TAKE_ENTRIES:
        entry = out_dir / name
        if entry.is_dir():
            shutil.rmtree(entry)
        elif entry.exists():
            entry.unlink()


def _write_provenance(
    out_dir: Path,
    source: Path,
    reader: CaptureReader,
    result: ImportResult,
    start: int,
    end: int | None,
    step: int,
    settings: dict[str, object],
) -> None:
    if not (out_dir / "timestamps.csv").is_file():
        timing = "none"
    elif reader.timestamps_derived:
        timing = "frame number / fps (the capture records no per-frame times)"
    else:
        timing = "recorded"
    record = {
        "source": str(source.resolve()),
        "format": reader.format_name,
        "selection": {"start": start, "end": end, "step": step},
        "take_frame_to_source_frame": f"source = {start} + {step} * take_frame",
        "frames_written": result.frames_written + result.frames_existing,
        "timestamps": timing,
        "failed_frames": [{"source_frame": i, "error": message} for i, message in result.failures],
        "stream_error": result.stream_error,
        "warnings": result.warnings,
        "import_settings": settings,
    }
    write_text_atomic(out_dir / PROVENANCE_FILE, json.dumps(record, indent=2) + "\n")


def default_cache_dir() -> Path:
    """Where converted captures are kept: $C2F_CACHE_DIR/captures, else $XDG_CACHE_HOME/c2f/captures,
    else ~/.cache/c2f/captures."""
    if os.environ.get("C2F_CACHE_DIR"):
        return Path(os.environ["C2F_CACHE_DIR"]) / "captures"
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "c2f" / "captures"


def _stat_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def capture_cache_key(source: Path, options: CaptureOptions) -> str:
    """A short hash of the capture's path, size and mtime (each file's, for a folder) and the options."""
    parts = [_CACHE_VERSION, _stat_key(source)]
    if source.is_dir():
        parts += [_stat_key(p) for p in sorted(source.rglob("*")) if p.is_file()]
    if options.intrinsics is not None:
        parts.append(_stat_key(Path(options.intrinsics)))
    parts.append(repr((options.depth_scale, options.fps, options.min_confidence)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def open_capture_as_take(
    source: str | Path,
    cache_dir: Path | None = None,
    *,
    options: CaptureOptions | None = None,
    quiet: bool = False,
) -> Take:
    """Open a capture as a take, converting it once into a cached take folder.

    The cache entry is keyed by the source's path, size and modification time, so an edited or
    replaced recording converts again. A conversion is written to a temporary folder and renamed
    into place when complete, so an interrupted one is never reused. Warnings and failed frames of
    a conversion are printed to stderr (unless `quiet`).

    Args:
        source: a .bag / .r3d file or a capture folder.
        cache_dir: where converted takes live (default `default_cache_dir()`).
        options: reader settings, as for `import_capture`.
        quiet: no progress bar and no warnings.
    """
    options = options or CaptureOptions()
    source = Path(source)
    if not source.exists():
        raise C2FError(f"capture not found: {source}")
    root = ensure_writable_dir(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.name)[:60] or "capture"
    final = root / f"{stem}-{capture_cache_key(source, options)}"
    if not (final / PROVENANCE_FILE).is_file():
        partial = root / f".{final.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            result = import_capture(source, partial, options=options, quiet=quiet)
            if not (final / PROVENANCE_FILE).is_file():  # else a concurrent conversion finished first
                shutil.rmtree(final, ignore_errors=True)  # an unfinished entry left by an older version
                os.replace(partial, final)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        if not quiet:
            for message in result.warnings:
                print(f"c2f: warning: {message}", file=sys.stderr)
            for index, message in result.failures:
                print(f"c2f: warning: capture frame {index} skipped: {message}", file=sys.stderr)
            if result.stream_error:
                print(f"c2f: warning: {result.stream_error}", file=sys.stderr)
    return Take.open(final)
