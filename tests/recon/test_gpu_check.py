"""benchmarks/gpu_check.py runs without CUDA: it skips the CUDA parts with a message, and its
comparisons pass when the CPU is compared with itself and fail on a mismatch."""

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    return load_script(SCRIPT)


def test_without_cuda_the_cuda_parts_are_skipped(gpu_check, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = gpu_check.main(
        ["--frames", "1", "--steps", "1", "--resolution", "64", "--json", str(tmp_path / "r.json")]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "CUDA is not available: the CUDA parts are skipped" in printed
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["compared"] is None and [r["check"] for r in report["checks"]] == ["CPU reference"]


def test_cpu_against_itself_passes_and_a_mismatch_fails(gpu_check, capsys):
    checks = gpu_check.Checks()
    losses = {1: {"total": 0.5, "sdf_hand": 0.1}, 2: {"total": 0.4, "sdf_hand": 0.09}}
    gpu_check.check_training(checks, losses, losses)
    gpu_check.check_knn(checks, "cpu")
    assert not checks.failed
    drifted = {1: {"total": 0.5, "sdf_hand": 0.1}, 2: {"total": 0.5, "sdf_hand": 0.09}}
    gpu_check.check_training(checks, losses, drifted)
    assert checks.failed == ["training step 2"]
    assert "FAIL" in capsys.readouterr().out
