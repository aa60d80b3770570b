"""`c2f evaluate` gives the numbers it gave before it was made faster (issue 19).

The expected values were computed by the evaluation code as it was before the speed-up (plain
k-d tree queries, every point sent to the exact winding number, GT samples drawn per protocol) on
the meshes of ``regression_meshes``; the faster code must reproduce them to 1e-9.
"""

import numpy as np
import pytest

from c2f_core.eval.protocol import evaluate_folder, evaluate_frame
from c2f_core.io.recon_output import write_frame_result, write_reconstruction_summary
from c2f_core.io.take import TakeWriter
from tests.conftest import TINY_INTRINSICS, tiny_frame
from tests.eval.regression_meshes import ground_truth, prediction

SEED, SAMPLES = 3, 4000

# offset of the predicted hand (m) -> protocol -> numbers of the code before the speed-up
BEFORE = {
    0.0: {
        "raw": {
            "hand": (0.36970603789430645, 0.10151769815534975, 0.7044315258852969),
            "object": (0.3160211871378532, 0.6389881151026514, 0.9999999500000026),
            "contact": (True, 2.0951579911535947, 9.0),
            "alignment": {},
        },
        "aligned": {
            "hand": (0.024166780858922335, 0.5567822569511977, 0.9999999500000026),
            "object": (1.3040516817130512, 0.4716681967700688, 0.800063754051367),
            "contact": (True, 1.8465359981267737, 7.0),
            "alignment": {
                "scale": 0.8813349665864925,
                "tx": -0.0005019884955247044,
                "ty": -0.0035458134467138995,
                "tz": 0.05667004519983859,
            },
        },
    },
    0.02: {
        "raw": {
            "hand": (1.6173129892790399, 0.05232222528699025, 0.43960400991455884),
            "object": (1.7083456911079482, 0.5209796764894744, 0.6409950757656404),
            "contact": (True, 2.0951578139574134, 9.0),
            "alignment": {},
        },
        "aligned": {
            "hand": (0.024166781173828707, 0.5567822569511977, 0.9999999500000026),
            "object": (1.3040519893136218, 0.4716681967700688, 0.800063754051367),
            "contact": (True, 1.8465358411296668, 6.625),
            "alignment": {
                "scale": 0.8813349661913343,
                "tx": -0.0181286878015818,
                "ty": -0.0035458134451122033,
                "tz": 0.0566700453986515,
            },
        },
    },
}


def close(value):
    return pytest.approx(value, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("offset", [0.0, 0.02])
@pytest.mark.parametrize("protocol", ["raw", "aligned"])
def test_frame_numbers_unchanged(offset, protocol):
    evaluation = evaluate_frame(prediction(offset), ground_truth(), protocol, seed=SEED, num_samples=SAMPLES)
    expected = BEFORE[offset][protocol]
    for part, metrics in (("hand", evaluation.hand), ("object", evaluation.object)):
        chamfer, f_low, f_high = expected[part]
        assert metrics.chamfer_cm2 == close(chamfer)
        assert [metrics.fscores[t] for t in sorted(metrics.fscores)] == close([f_low, f_high])
    in_contact, depth, volume = expected["contact"]
    assert evaluation.contact.in_contact is in_contact
    assert evaluation.contact.penetration_depth_cm == close(depth)
    assert evaluation.contact.intersection_volume_cm3 == volume
    assert evaluation.alignment == close(expected["alignment"])


@pytest.mark.parametrize("workers", [1, 2, None])
def test_folder_numbers_unchanged(tmp_path, workers):
    """Through the folder path too, where the GT samples are drawn once and shared by both protocols,
    and with frames evaluated in worker processes."""
    take_dir, out = tmp_path / "take", tmp_path / "recon"
    with TakeWriter(take_dir, TINY_INTRINSICS) as writer:
        for i in range(2):
            writer.write(i, *tiny_frame(i), gt=ground_truth())
    for i, offset in enumerate((0.0, 0.02)):
        hand_v, hand_f, obj_v, obj_f = prediction(offset)
        write_frame_result(out, i, (hand_v, hand_f), (obj_v, obj_f))
    write_reconstruction_summary(out, name="take", intrinsics=TINY_INTRINSICS, frames=[0, 1], failed={})
    report = evaluate_folder(
        str(out), str(take_dir), seed=SEED, num_samples=SAMPLES, quiet=True, workers=workers
    )
    for protocol in ("raw", "aligned"):
        for row, offset in zip(report["per_frame"][protocol], (0.0, 0.02), strict=True):
            expected = BEFORE[offset][protocol]
            assert row["hand_chamfer_cm2"] == close(expected["hand"][0])
            assert list(row["hand_fscore"].values()) == close(list(expected["hand"][1:]))
            assert row["object_chamfer_cm2"] == close(expected["object"][0])
            assert list(row["object_fscore"].values()) == close(list(expected["object"][1:]))
            assert row["penetration_cm"] == close(expected["contact"][1])
            assert row["intersection_cm3"] == expected["contact"][2]
            assert row["alignment"] == close(expected["alignment"])
        assert np.isfinite(report["protocols"][protocol]["hand"]["chamfer_cm2_mean"])
