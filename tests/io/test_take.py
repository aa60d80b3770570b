import numpy as np
import pytest
from PIL import Image

from c2f_core.errors import C2FError
from c2f_core.io.take import Take, find_gaps, read_gt, write_npz
from tests.conftest import TINY_INTRINSICS, tiny_frame


def test_round_trip_pixels_depth_and_timestamps(make_take):
    root = make_take(frame_ids=(0, 1, 2))
    take = Take.open(root)
    assert take.frame_ids == [0, 1, 2]
    assert take.intrinsics == TINY_INTRINSICS
    frame = take.read_frame(1)
    color, depth_m = tiny_frame(1)
    np.testing.assert_array_equal(frame.color, color)
    # 1 mm quantisation: error at most half a unit
    assert np.abs(frame.depth_m - depth_m).max() <= 0.0005 + 1e-6
    assert frame.depth_m[0, 0] == 0.0
    assert frame.timestamp == pytest.approx(1 / 30.0)
    np.testing.assert_allclose(frame.K, TINY_INTRINSICS.K)


def test_iteration_is_lazy_and_in_order(make_take, monkeypatch):
    take = Take.open(make_take(frame_ids=(3, 1, 2)))
    decoded = []
    original = take.read_frame

    def spy(frame_id, **kw):
        decoded.append(frame_id)
        return original(frame_id, **kw)

    monkeypatch.setattr(take, "read_frame", spy)
    iterator = iter(take)
    assert decoded == []  # opening and iterating decode nothing until asked
    assert next(iterator).index == 1
    assert decoded == [1]


def test_gaps_reported_and_rest_readable(make_take):
    take = Take.open(make_take(frame_ids=(0, 1, 4, 5, 9)))
    assert take.gaps == [(2, 3), (6, 8)]
    assert [f.index for f in take] == [0, 1, 4, 5, 9]
    assert find_gaps([0, 1, 2]) == []


def test_unpaired_files_are_listed(make_take):
    root = make_take(frame_ids=(0, 1))
    (root / "depth" / "000001.png").unlink()
    take = Take.open(root)
    assert take.frame_ids == [0]
    assert take.unpaired == ["color/000001.png"]


def test_all_zero_depth_frame_is_named(make_take):
    root = make_take(frame_ids=(0,))
    Image.fromarray(np.zeros((48, 64), np.uint16)).save(root / "depth" / "000000.png")
    with pytest.raises(C2FError, match="000000.png has no valid pixels"):
        Take.open(root).read_frame(0)


def test_wrong_depth_unit_is_caught(make_take, tmp_path):
    root = make_take(frame_ids=(0,))
    text = (root / "intrinsics.json").read_text().replace('"depth_scale": 0.001', '"depth_scale": 1.0')
    (root / "intrinsics.json").write_text(text)
    with pytest.raises(C2FError, match="implausible; check depth_scale"):
        Take.open(root).read_frame(0)


def test_size_mismatch_between_colour_and_depth(make_take):
    root = make_take(frame_ids=(0,))
    Image.fromarray(np.full((40, 64), 600, np.uint16)).save(root / "depth" / "000000.png")
    with pytest.raises(C2FError, match="colour is 64x48 but depth is 64x40"):
        Take.open(root).read_frame(0)


def test_missing_folder_and_subfolders(tmp_path, make_take):
    with pytest.raises(C2FError, match="take folder not found"):
        Take.open(tmp_path / "nope")
    root = make_take(frame_ids=(0,))
    for p in (root / "depth").iterdir():
        p.unlink()
    (root / "depth").rmdir()
    with pytest.raises(C2FError, match="has no depth/ folder"):
        Take.open(root)


def test_npz_is_reproducible(tmp_path):
    arrays = {"a": np.arange(4.0), "mask": np.eye(3, dtype=np.uint8)}
    write_npz(tmp_path / "x.npz", arrays)
    write_npz(tmp_path / "y.npz", arrays)
    assert (tmp_path / "x.npz").read_bytes() == (tmp_path / "y.npz").read_bytes()
    np.testing.assert_array_equal(read_gt(tmp_path / "x.npz")["mask"], arrays["mask"])


@pytest.mark.parametrize("other", ["1.png", "0001.jpg"])
def test_two_files_with_one_frame_number_are_an_error_naming_both(make_take, other):
    root = make_take(frame_ids=(0, 1))
    (root / "color" / other).write_bytes((root / "color/000001.png").read_bytes())
    with pytest.raises(C2FError) as caught:
        Take.open(root)
    message = str(caught.value)
    assert f"{root / 'color'}: " in message and "000001.png" in message and other in message
    assert message.endswith("are both frame 1; keep one")


def test_full_width_digits_are_not_frame_numbers(make_take):
    root = make_take(frame_ids=(0, 1))
    for sub in ("color", "depth"):
        (root / sub / "\uff10\uff10\uff10\uff10\uff10\uff12.png").write_bytes(
            (root / sub / "000001.png").read_bytes()
        )
    take = Take.open(root)
    assert take.frame_ids == [0, 1] and take.unpaired == []


def test_a_take_is_cleared_of_its_files_only(make_take):
    from c2f_core.io.take import clear_take, take_has_content

    root = make_take(frame_ids=(0, 1))
    (root / "notes.txt").write_text("keep me")
    (root / "color" / "README").write_text("keep me too")
    assert take_has_content(root)
    clear_take(root)
    assert not take_has_content(root)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "color",
        "color/README",
        "notes.txt",
    ]
