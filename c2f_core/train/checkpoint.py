"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``, checked with clear errors.

A checkpoint (``RUN/last.pt``, ``RUN/best.pt``, ``RUN/step_NNNNNNN.pt``) is a dict of tensors,
dicts, lists, strings and numbers only:

    format "c2f-checkpoint", format_version, versions {c2f, torch, python}, config (the run config
    as a plain dict), step, model (state dict), optimizer, scheduler, best_val, world_size.
"""

from __future__ import annotations

import platform
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from c2f_core import __version__
from c2f_core.errors import C2FError, first_sentence
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
    # Through a Python file, so a full disk is an OSError (ENOSPC) that `atomic_path` names,
    # not the C++ writer's RuntimeError.
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        torch.save(data, handle)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (weights only) and check that it is ours.

    Raises:
        C2FError: missing file, not a checkpoint (corrupt, truncated, foreign), or a newer format.
    """
    path = Path(path)
    if not path.is_file():
        raise C2FError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # PyTorch's notes on foreign pickles: the error below says enough
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zips, foreign pickles, anything unreadable
        raise C2FError(_load_failure(path, exc)) from None
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


_WEIGHTS_ONLY_DETAIL = re.compile(r"WeightsUnpickler error:\s*(\S[^\n]*)")


def _load_failure(path: Path, exc: Exception) -> str:
    """One line naming ``path`` and why ``torch.load`` refused it.

    PyTorch's messages run to paragraphs (and the weights-only one advises loading unsafely), so only
    a short detail is kept: the object the safe unpickler refused, or the first sentence of the error.
    """
    text = str(exc)
    refused = _WEIGHTS_ONLY_DETAIL.search(text)
    if refused or "Weights only load failed" in text:
        detail = first_sentence(refused.group(1)) if refused else ""
        return f"{path} is not a c2f checkpoint: the safe loader refuses its contents" + (
            f" ({detail})" if detail else ""
        )
    reason = first_sentence(text)
    if not reason or "weights_only" in reason:
        reason = type(exc).__name__
    elif not isinstance(exc, RuntimeError | OSError):
        reason = f"{type(exc).__name__}: {reason}"
    return f"{path} is not a readable c2f checkpoint (corrupt or truncated?): {reason}"


def load_state(
    module: torch.nn.Module, state: dict[str, torch.Tensor], source: str, new: tuple[str, ...] = ()
) -> list[str]:
    """Load a state dict strictly, turning key or shape mismatches into a C2FError naming the first.

    Weights whose names start with a prefix in ``new`` may be missing from ``state`` (a head the
    network gained since): they keep their initial values and are returned.
    """
    own = module.state_dict()
    fresh = [k for k in own if k not in state and k.startswith(new)] if new else []
    missing = [k for k in own if k not in state and k not in fresh]
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
    module.load_state_dict(state, strict=not fresh)
    return fresh


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
