"""One small clean take and one small noisy sequence, generated once per test session."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from c2f_core.synth.generate import SynthConfig, generate_take
from c2f_core.synth.sensor import SensorConfig

CLEAN = dataclasses.replace(SynthConfig(), sdf_samples_per_mesh=1500, sensor=SensorConfig(enabled=False))
NOISY = dataclasses.replace(SynthConfig(), sdf_samples_per_mesh=500)


@pytest.fixture(scope="session")
def clean_take(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Three independent frames at 320x240 without sensor noise."""
    out = tmp_path_factory.mktemp("synth") / "clean"
    summary = generate_take(out, 3, seed=7, size=(320, 240), quiet=True, config=CLEAN)
    return out, summary


@pytest.fixture(scope="session")
def sequence_take(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A four-frame noisy sequence at 160x120."""
    out = tmp_path_factory.mktemp("synth") / "sequence"
    summary = generate_take(out, 4, seed=3, sequence=True, size=(160, 120), quiet=True, config=NOISY)
    return out, summary
