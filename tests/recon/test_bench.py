import json

import numpy as np

from c2f_core.cli.main import main
from tests.recon.test_reconstruct import sphere_network, tiny_setup  # noqa: F401 (fixtures)


def test_bench_reports_both_methods(tiny_setup, sphere_network, capsys, tmp_path, monkeypatch):  # noqa: F811
    from c2f_core.recon import locate, runner

    # the untrained network's heatmap is noise: select the whole cube so SER's octree does the narrowing
    monkeypatch.setattr(
        runner,
        "select_coarse_blocks",
        lambda cube, *a, coarse_resolution=32, **k: np.ones((coarse_resolution,) * 3, bool),
    )
    monkeypatch.setattr(locate, "detect_box", lambda color, depth, K: (90.0, 60.0, 230.0, 200.0))
    code = main(
        [
            "bench",
            "--checkpoint",
            str(tiny_setup / "tiny.pt"),
            "--take",
            str(tiny_setup / "take"),
            "--frames",
            "1",
            "--resolution",
            "64",
            "--json",
            str(tmp_path / "b.json"),
            "--quiet",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "| dense |" in printed and "| ser |" in printed
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["dense"]["queries"] == 64**3
    assert 0 < report["ser"]["queries"] < 0.3 * 64**3
    assert report["dense"]["stages_s"]["encoder"] > 0 and report["dense"]["total_s"] > 0
    assert (
        report["hand_ser_vs_dense_cm2"] < 0.05
    )  # identical surfaces, up to the sampling noise of 10k points
    assert report["dense"]["peak_memory_mb"] > 0
    # SER meshes the same surface as dense: zero distance to it, beyond the sampled Chamfer's noise
    assert report["hand_ser_vs_dense_surface_cm2"] < 1e-6 and report["object_ser_vs_dense_surface_cm2"] < 1e-6
    assert report["ser"]["stages_s"]["walk"] > 0 and report["ser"]["median_total_s"] > 0
    assert "| frame | SER queries |" in printed
