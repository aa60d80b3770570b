import json
import re

import pytest

from c2f_core.errors import C2FError
from c2f_core.io.intrinsics import Intrinsics, intrinsics_from_dict, read_intrinsics, write_intrinsics

GOOD = {"fx": 600.0, "fy": 601.0, "cx": 320.0, "cy": 240.0, "width": 640, "height": 480, "depth_scale": 0.001}


def test_round_trip(tmp_path):
    intr = Intrinsics(**GOOD, fps=30.0)
    write_intrinsics(tmp_path / "intrinsics.json", intr)
    assert read_intrinsics(tmp_path / "intrinsics.json") == intr
    assert intr.K[0, 2] == 320.0 and intr.K[1, 1] == 601.0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"fx": None}, "missing key 'fx'"),
        ({"fy": 0}, "focal length 'fy' must be positive"),
        ({"fx": -3}, "focal length 'fx' must be positive"),
        ({"width": 64.5}, "'width' must be a positive whole number"),
        ({"depth_scale": 0}, "'depth_scale' .* must be positive"),
        ({"cx": "320"}, "'cx' must be a finite number"),
        ({"focal": 3}, "unknown key 'focal'"),
    ],
)
def test_bad_values_are_named(change, message):
    data = {**GOOD, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(C2FError, match=message):
        intrinsics_from_dict(data, source="intrinsics.json")


def test_missing_and_corrupt_file(tmp_path):
    with pytest.raises(C2FError, match="intrinsics file not found"):
        read_intrinsics(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{fx: 1")
    with pytest.raises(C2FError, match="not valid JSON"):
        read_intrinsics(tmp_path / "bad.json")


@pytest.mark.parametrize(
    "raw, message",
    [
        ('"fx": 1' + "0" * 400, "'fx' must be a finite number, found a number too large for a float"),
        ('"cy": -1' + "0" * 400, "'cy' must be a finite number, found a number too large for a float"),
        ('"fy": Infinity', "'fy' must be a finite number, found inf"),
        ('"depth_scale": NaN', "'depth_scale' must be a finite number, found nan"),
    ],
)
def test_numbers_that_are_not_finite_floats_name_key_and_file(tmp_path, raw, message):
    key = raw.split('"')[1]
    others = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in GOOD.items() if k != key)
    path = tmp_path / "intrinsics.json"
    path.write_text("{" + others + ", " + raw + "}")
    with pytest.raises(C2FError, match=f"^{re.escape(str(path))}: {re.escape(message)}$"):
        read_intrinsics(path)
