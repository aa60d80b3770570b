"""Choice of compute device: `auto` picks CUDA when present."""

from __future__ import annotations

from typing import Literal

from c2f_core.errors import C2FError

DeviceChoice = Literal["auto", "cpu", "cuda"]


def resolve_device(choice: str = "auto") -> str:
    """Return "cuda" or "cpu" for a `--device` choice, failing clearly when CUDA is asked but absent."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cpu":
        return "cpu"
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise C2FError(
                "--device cuda was asked for, but this torch build sees no CUDA GPU (use --device cpu)"
            )
        return choice
    raise C2FError(f"unknown device '{choice}' (choose auto, cpu or cuda)")
