"""Build the installable Blender extension zip: `python build_addon.py` -> dist/c2f_handobject-VERSION.zip.

Steps:
1. copy `blender_addon/` to a staging folder (build/addon/c2f_handobject);
2. build the `c2f_core` wheel there (`pip wheel . --no-deps --no-build-isolation -w wheels`) and add
   trimesh (the mesh reader the format code uses), repacked from this environment's installed copy
   after checking every file against pip's RECORD hashes, so the build works offline;
3. list the wheels in the staged `blender_manifest.toml` (`wheels = ["./wheels/..."]`);
4. build the zip with Blender's own extension tool (`blender_ext.py build`) and validate it
   (`blender_ext.py validate ZIP`).

Both wheels are pure Python (py3-none-any), so one zip serves every platform. torch is not bundled:
the reconstruction runs in a worker process of an environment that has it. Blender's tool comes
from the `bpy` module (`pip install bpy==5.0.1`) or `--blender-ext PATH`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_SRC = ROOT / "blender_addon"
ADDON_ID = "c2f_handobject"
BUNDLED_DISTRIBUTIONS = ("trimesh",)
"""Installed distributions repacked into wheels beside c2f_core (pure Python, numpy is Blender's own)."""


class BuildError(Exception):
    """A build step failed; the message says which and why."""


def core_version() -> str:
    """`c2f_core.__version__`, read from the source without importing the package."""
    text = (ROOT / "c2f_core" / "__init__.py").read_text()
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise BuildError("no __version__ in c2f_core/__init__.py")
    return match.group(1)


def find_blender_ext() -> Path:
    """Blender's extension command-line tool inside the installed `bpy` module."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(
            "Blender's extension tool not found: pip install bpy==5.0.1, or pass --blender-ext PATH"
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    raise BuildError(
        "the bpy module has no scripts/addons_core/bl_pkg/cli/blender_ext.py; pass --blender-ext PATH"
    )


def run(cmd: list[str], what: str) -> str:
    """Run a command; raise BuildError with its output when it fails."""
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise BuildError(f"{what} failed ({' '.join(cmd)}):\n{output}")
    return result.stdout


def stage_sources(stage: Path) -> None:
    """Copy the add-on sources into a fresh staging folder."""
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(
        ADDON_SRC, stage, ignore=shutil.ignore_patterns("__pycache__", "wheels", "*.zip", "*.pyc")
    )


def build_core_wheel(wheel_dir: Path) -> Path:
    """Build the c2f_core wheel (no dependencies: Blender only uses its format code)."""
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
        ],
        "building the c2f_core wheel",
    )
    wheels = sorted(wheel_dir.glob("c2f_handobject-*.whl"))
    if len(wheels) != 1:
        raise BuildError(
            f"expected one c2f_handobject wheel in {wheel_dir}, found {[w.name for w in wheels]}"
        )
    drop_model_weights(wheels[0])
    return wheels[0]


def drop_model_weights(wheel: Path) -> None:
    """Remove the bundled network weights (`c2f_core/assets/*.pt`) from the wheel and its RECORD.

    Blender only uses the format code; reconstruction runs in the worker environment, which has
    its own c2f install with the weights. Without them the add-on zip stays about 1 MB.
    """
    with zipfile.ZipFile(wheel) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    dropped = {
        info.filename
        for info, _ in entries
        if info.filename.startswith("c2f_core/assets/") and info.filename.endswith(".pt")
    }
    if not dropped:
        return
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info, data in entries:
            if info.filename in dropped:
                continue
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines(keepends=True)
                data = "".join(line for line in lines if line.split(",", 1)[0] not in dropped).encode()
            target.writestr(info, data)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def repack_installed(name: str, wheel_dir: Path) -> Path:
    """Rebuild the wheel of an installed pure-Python distribution from its files, checked against RECORD.

    Only files inside site-packages are packed (no console scripts, no byte code); a file whose
    hash differs from what pip recorded at install time stops the build.
    """
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise BuildError(f"{name} is not installed in this environment (pip install {name})") from None
    info_dir = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}.dist-info"
    wheel_meta = dist.read_text("WHEEL") or ""
    if "Root-Is-Purelib: true" not in wheel_meta:
        raise BuildError(
            f"{name} is not a pure-Python distribution; cannot bundle it in a platform-independent zip"
        )
    tags = re.findall(r"^Tag:\s*(\S+)", wheel_meta, re.MULTILINE)
    if tags != ["py3-none-any"]:
        raise BuildError(f"{name} has wheel tags {tags}, expected py3-none-any")
    skip_meta = {f"{info_dir}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    entries: list[tuple[str, bytes]] = []
    for file in dist.files or []:
        path = file.as_posix()
        if path.startswith("..") or path.endswith(".pyc") or "__pycache__" in path or path in skip_meta:
            continue
        data = Path(file.locate()).read_bytes()
        if file.hash is not None and _record_hash(data) != f"{file.hash.mode}={file.hash.value}":
            raise BuildError(f"installed file {path} of {name} differs from pip's record; reinstall {name}")
        entries.append((path, data))
    target = wheel_dir / f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-py3-none-any.whl"
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in entries] + [f"{info_dir}/RECORD,,"]
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in entries:
            archive.writestr(
                zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED
            )
        archive.writestr(
            zipfile.ZipInfo(f"{info_dir}/RECORD", date_time=(1980, 1, 1, 0, 0, 0)), "\n".join(record) + "\n"
        )
    return target


def write_manifest_wheels(manifest: Path, wheels: list[Path], version: str) -> None:
    """Add `wheels = [...]` to the staged manifest (top-level keys go before the first table)."""
    text = manifest.read_text()
    data = tomllib.loads(text)
    if data.get("id") != ADDON_ID:
        raise BuildError(f"{manifest}: id is {data.get('id')!r}, expected {ADDON_ID!r}")
    if data.get("version") != version:
        raise BuildError(
            f"{manifest}: version {data.get('version')!r} differs from c2f_core {version!r}; align them"
        )
    listing = "wheels = [\n" + "".join(f'  "./wheels/{w.name}",\n' for w in wheels) + "]\n\n"
    table = re.search(r"^\[", text, re.MULTILINE)
    cut = table.start() if table else len(text)
    text = text[:cut] + listing + text[cut:]
    if tomllib.loads(text).get("wheels") != [f"./wheels/{w.name}" for w in wheels]:
        raise BuildError("could not add the wheel list to the manifest")
    manifest.write_text(text)


def build(out_dir: Path, blender_ext: Path | None = None, stage_root: Path | None = None) -> Path:
    """Build and validate the extension zip; return its path."""
    version = core_version()
    blender_ext = blender_ext or find_blender_ext()
    stage = (stage_root or ROOT / "build" / "addon") / ADDON_ID
    stage_sources(stage)
    wheel_dir = stage / "wheels"
    wheel_dir.mkdir()
    wheels = [build_core_wheel(wheel_dir)] + [
        repack_installed(name, wheel_dir) for name in BUNDLED_DISTRIBUTIONS
    ]
    write_manifest_wheels(stage / "blender_manifest.toml", wheels, version)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{ADDON_ID}-{version}.zip"
    if target.exists():
        target.unlink()
    python = sys.executable
    run(
        [python, str(blender_ext), "build", "--source-dir", str(stage), "--output-dir", str(out_dir)],
        "blender_ext build",
    )
    if not target.is_file():
        raise BuildError(f"blender_ext build did not write {target}")
    run([python, str(blender_ext), "validate", str(target)], "blender_ext validate")
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line: build the zip, print its path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    parser.add_argument(
        "--blender-ext", type=Path, help="path to Blender's blender_ext.py (default: from bpy)"
    )
    parser.add_argument("--stage", type=Path, help="staging folder (default: build/addon/)")
    args = parser.parse_args(argv)
    try:
        target = build(args.out.resolve(), args.blender_ext, args.stage)
    except BuildError as exc:
        print(f"build_addon: error: {exc}", file=sys.stderr)
        return 2
    size_mb = target.stat().st_size / 2**20
    print(f"built and validated {target} ({size_mb:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
