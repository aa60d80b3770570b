"""Capture -> take: pairing by time, selection, output folder rules, the on-the-fly cache, the CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from c2f_core.cli import main as cli_main
from c2f_core.errors import C2FError
from c2f_core.io.capture import convert, import_capture, open_capture_as_take
from c2f_core.io.capture.base import TimeMatcher, reproject_depth, resize_nearest
from c2f_core.io.take import Take
from tests.io.test_capture_r3d import decoded_jpeg, make_frames, write_r3d


def _pairs(matcher: TimeMatcher, colour: list[float], depth: list[float], interleave: bool = True):
    events = (
        sorted([(t, 0) for t in colour] + [(t, 1) for t in depth])
        if interleave
        else [(t, 0) for t in colour] + [(t, 1) for t in depth]
    )
    out = []
    for t, side in events:
        out += matcher.push(side, t, t)
    return out + matcher.close()


def test_time_matcher_pairs_mutual_nearest_within_the_gap():
    colour = [i / 30 for i in range(6)]
    depth = [0.003, 1 / 30 - 0.004, 3 / 30 + 0.001, 4 / 30 + 0.02, 5 / 30 - 0.01]  # no depth near frame 2
    matcher = TimeMatcher(max_gap_s=1 / 60)
    pairs = _pairs(matcher, colour, depth)
    assert [(round(c * 30), d) for c, d in pairs] == [(0, 0.003), (1, depth[1]), (3, depth[2]), (5, depth[4])]
    assert matcher.unmatched == [2, 1]  # colour 2 and 4 (its depth is 20 ms off) and that depth
    assert _pairs(TimeMatcher(1 / 60), colour, depth, interleave=False) == pairs


def test_time_matcher_pairs_each_slow_frame_once():
    colour = [i / 30 for i in range(10)]
    depth = [i / 15 + 0.001 for i in range(5)]
    pairs = _pairs(TimeMatcher(1 / 30), colour, depth)
    assert [round(c * 30) for c, _ in pairs] == [0, 2, 4, 6, 8]


def test_time_matcher_holds_only_a_window():
    """A long stream keeps a handful of items in memory, not the whole recording."""
    matcher = TimeMatcher(1 / 60)
    emitted = 0
    for i in range(3000):
        emitted += len(matcher.push(0, i / 30, i))
        emitted += len(matcher.push(1, i / 30 + 0.002, i))
        assert len(matcher._entries[0]) < 12 and len(matcher._entries[1]) < 12
    assert emitted + len(matcher.close()) == 3000


def test_resize_nearest_keeps_pixel_centres():
    image = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(resize_nearest(image, 4, 6), np.repeat(np.repeat(image, 2, 0), 2, 1))


def test_reproject_depth_identity_is_exact():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.4, 0.9, (12, 16)).astype(np.float32)
    depth[3, 4] = 0
    K = np.array([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]])
    out = reproject_depth(depth, K, K, np.eye(3), np.zeros(3), (16, 12))
    np.testing.assert_allclose(out, depth, rtol=1e-6)


def test_selection_output_rules_and_provenance(tmp_path):
    colors, depths, _ = make_frames(5)
    r3d = write_r3d(tmp_path / "five.r3d", colors, depths)
    out = tmp_path / "take"
    result = import_capture(r3d, out, start=1, end=4, step=2, quiet=True)
    assert result.frames_written == 2
    take = Take.open(out)
    assert take.frame_ids == [0, 1] and take.intrinsics.fps == 30
    np.testing.assert_array_equal(take.read_frame(1).color, decoded_jpeg(colors[3]))
    assert take.timestamps == pytest.approx({0: 0.0, 1: 2 / 60}, abs=2e-6)
    provenance = json.loads((out / "capture.json").read_text())
    assert (
        provenance["selection"] == {"start": 1, "end": 4, "step": 2}
        and provenance["timestamps"] == "recorded"
    )

    with pytest.raises(C2FError, match="holds an import made with --start 1, not --start 0"):
        import_capture(r3d, out, quiet=True)
    import_capture(r3d, out, overwrite=True, quiet=True)
    assert len(Take.open(out)) == 5
    (out / "my_notes.txt").write_text("keep me")
    with pytest.raises(C2FError, match="holds files that are not part of a take"):
        import_capture(r3d, out, overwrite=True, quiet=True)
    assert (out / "my_notes.txt").exists() and len(Take.open(out)) == 5

    with pytest.raises(C2FError, match="no frames selected"):
        import_capture(r3d, tmp_path / "late", start=7, quiet=True)
    assert not (tmp_path / "late").exists()
    with pytest.raises(C2FError, match="--step must be 1 or more"):
        import_capture(r3d, tmp_path / "x", step=0, quiet=True)
    with pytest.raises(C2FError, match=r"--end \(2\) must be greater than --start \(2\)"):
        import_capture(r3d, tmp_path / "x", start=2, end=2, quiet=True)


def test_open_capture_as_take_converts_once_and_again_after_a_change(tmp_path, monkeypatch):
    colors, depths, _ = make_frames(2)
    r3d = write_r3d(tmp_path / "grasp.r3d", colors, depths)
    cache = tmp_path / "cache"
    take = open_capture_as_take(r3d, cache, quiet=True)
    assert len(take) == 2 and take.root.parent == cache and take.root.name.startswith("grasp.r3d-")
    np.testing.assert_array_equal(take.read_frame(0).color, decoded_jpeg(colors[0]))
    assert take.timestamps == pytest.approx({0: 0.0, 1: 1 / 60}, abs=2e-6)

    calls = []
    real_import = convert.import_capture
    monkeypatch.setattr(convert, "import_capture", lambda *a, **k: calls.append(a) or real_import(*a, **k))
    again = open_capture_as_take(r3d, cache, quiet=True)
    assert again.root == take.root and calls == []

    os.utime(r3d, ns=(r3d.stat().st_atime_ns, r3d.stat().st_mtime_ns + 10**9))
    changed = open_capture_as_take(r3d, cache, quiet=True)
    assert changed.root != take.root and len(calls) == 1
    assert not [p for p in cache.iterdir() if ".partial-" in p.name]


def test_cache_keeps_no_partial_conversion(tmp_path, monkeypatch):
    colors, depths, _ = make_frames(2)
    r3d = write_r3d(tmp_path / "bad.r3d", colors, depths, corrupt_depth=(0, 1))
    with pytest.raises(C2FError, match="no frame could be imported"):
        open_capture_as_take(r3d, tmp_path / "cache", quiet=True)
    assert list((tmp_path / "cache").iterdir()) == []


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("C2F_CACHE_DIR", str(tmp_path / "c2f"))
    assert convert.default_cache_dir() == tmp_path / "c2f" / "captures"
    monkeypatch.delenv("C2F_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert convert.default_cache_dir() == tmp_path / "xdg" / "c2f" / "captures"


def run_cli(monkeypatch, capsys, *argv):
    """Run `c2f` with import-capture registered, as the lead's main.py will."""
    if "import-capture" not in cli_main.SUBCOMMANDS:
        monkeypatch.setattr(cli_main, "SUBCOMMANDS", (*cli_main.SUBCOMMANDS, "import-capture"))
    code = cli_main.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_import_capture(monkeypatch, capsys, tmp_path):
    colors, depths, _ = make_frames(3)
    r3d = write_r3d(tmp_path / "grasp.r3d", colors, depths)
    code, out, err = run_cli(monkeypatch, capsys, "import-capture", r3d, tmp_path / "take", "--quiet")
    assert code == 0, err
    assert "wrote 3 frame(s) from the Record3D" in out and "60 fps" in out
    assert len(Take.open(tmp_path / "take")) == 3


def test_cli_partial_failure_and_user_error(monkeypatch, capsys, tmp_path):
    colors, depths, _ = make_frames(3)
    r3d = write_r3d(tmp_path / "bad.r3d", colors, depths, corrupt_depth=(2,))
    code, out, err = run_cli(monkeypatch, capsys, "import-capture", r3d, tmp_path / "take", "--quiet")
    assert code == 1
    assert "1 of 3 frame(s) failed" in err and "source frame 2:" in err and "wrote 2 frame(s)" in out

    code, _, err = run_cli(
        monkeypatch, capsys, "import-capture", tmp_path / "nope.bag", tmp_path / "t2", "--quiet"
    )
    assert code == 2 and err.strip().splitlines() == [
        f"c2f: error: capture not found: {tmp_path / 'nope.bag'}"
    ]
    code, _, err = run_cli(
        monkeypatch, capsys, "import-capture", r3d, tmp_path / "t3", "--fps", "0", "--quiet"
    )
    assert code == 2 and "--fps must be positive" in err
