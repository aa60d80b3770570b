"""Grasps close onto objects: every accepted grasp touches, nothing sinks in."""

from __future__ import annotations

import numpy as np
import pytest

from c2f_core.geometry.mesh_sdf import MeshSDF
from c2f_core.hands.open_hand import OpenHandLayer
from c2f_core.synth.grasp import GraspSynthesizer
from c2f_core.synth.objects import make_object


@pytest.fixture(scope="module")
def synthesizer() -> GraspSynthesizer:
    return GraspSynthesizer(OpenHandLayer())


@pytest.mark.parametrize(
    ("family", "kind"),
    [("cylinder", "power"), ("sphere", "power"), ("mug", "power"), ("banana", "power"), ("box", "precision")],
)
def test_grasp_touches_and_does_not_penetrate(synthesizer: GraspSynthesizer, family: str, kind: str) -> None:
    rng = np.random.default_rng(21)
    obj = make_object(family, rng)
    grasp = synthesizer.grasp(obj, rng, grasp_type=kind)
    assert grasp.grasp_type == kind
    assert "thumb" in grasp.contacts and len(grasp.contacts) >= 3, grasp.contacts
    # Independent check in the hand frame.
    local = (grasp.hand_vertices - grasp.object_translation) @ grasp.object_rotation
    distances = MeshSDF(obj.vertices, obj.faces)(local)
    assert -0.002 < distances.min() < 0.002
    assert abs(grasp.penetration_m - max(0.0, -distances.min())) < 1e-9
    # Fingers stay within their closing range (no joint beyond a fist).
    assert grasp.angles[:, 0].max() < 1.8


def test_power_grasp_uses_the_palm(synthesizer: GraspSynthesizer) -> None:
    rng = np.random.default_rng(2)
    grasp = synthesizer.grasp(make_object("cylinder", rng), rng, grasp_type="power")
    assert {"palm", "thumb"} <= set(grasp.contacts)
