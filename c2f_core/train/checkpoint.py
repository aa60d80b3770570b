"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``, checked with clear errors.

A checkpoint (``RUN/last.pt``, ``RUN/best.pt``, ``RUN/step_NNNNNNN.pt``) is a dict of tensors,
dicts, lists, strings and numbers only:

    format "c2f-checkpoint", format_version, versions {c2f, torch, python}, config (the run config
    as a plain dict), step, model (state dict), optimizer, scheduler, best_val, world_size.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

from c2f_core import __version__
from c2f_core.errors import C2FError
from c2f_core.io.atomic import atomic_path
from c2f_core.model.network import C2FNetwork
from c2f_core.train.config import C2FConfig, load_c2f_config

FORMAT = "c2f-checkpoint"
"""Value of the "format" entry that marks our checkpoints."""
FORMAT_VERSION = 1
"""Bumped when the layout of the checkpoint dict changes incompatibly."""


def versions() -> dict[str, str]:
    """Software versions recorded in every checkpoint."""
    return {"c2f": __version__, "torch": str(torch.__version__), "python": platform.python_version()}


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` plus the format marker and versions to ``path`` atomically."""
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": versions(), **payload}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (weights only) and check that it is ours.

    Raises:
        C2FError: missing file, not a checkpoint (corrupt, truncated, foreign), or a newer format.
    """
    path = Path(path)
    if not path.is_file():
        raise C2FError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zips, foreign pickles, anything unreadable
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise C2FError(f"{path} is not a readable c2f checkpoint (corrupt or truncated?): {reason}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise C2FError(f"{path} is not a c2f checkpoint (no '{FORMAT}' marker)")
    if data.get("format_version") != FORMAT_VERSION:
        raise C2FError(
            f"{path} has checkpoint format {data.get('format_version')}; this c2f reads {FORMAT_VERSION}"
        )
    for key in ("config", "model", "step"):
        if key not in data:
            raise C2FError(f"{path} is an incomplete c2f checkpoint (no '{key}')")
    return data


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a state dict strictly, turning key or shape mismatches into a C2FError naming the first."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        detail = f"missing '{missing[0]}'" if missing else f"unexpected '{unexpected[0]}'"
        raise C2FError(
            f"{source} does not fit this network ({len(missing)} missing, {len(unexpected)} unexpected weights; "
            f"{detail}): wrong architecture or config"
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise C2FError(
                f"{source}: weight '{key}' has shape {tuple(value.shape)}, the network expects "
                f"{tuple(own[key].shape)} (wrong architecture or config)"
            )
    module.load_state_dict(state)


def load_model(
    checkpoint_path: str | Path, device: str | torch.device = "cpu"
) -> tuple[C2FNetwork, C2FConfig]:
    """The trained network (eval mode, on ``device``) and its run config, from a checkpoint."""
    data = load_checkpoint(checkpoint_path, map_location="cpu")
    config = load_c2f_config(data["config"])
    config.model.encoder.pretrained = ""  # the checkpoint already holds the weights
    network = C2FNetwork(config.model, config.frames, config.data.crop_size)
    load_state(network, data["model"], str(checkpoint_path))
    return network.to(device).eval(), config
