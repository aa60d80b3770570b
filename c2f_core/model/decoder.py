"""The DeepSDF-style MLP that every SDF decoder uses (method B.3, B.7)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from c2f_core.model.config import SDFDecoderConfig

OUTPUT_INIT_SCALE = 0.1
"""Factor on the default initial weights of the output layer, so initial SDFs are small."""


class SDFDecoder(nn.Module):
    """Five linear layers with the input concatenated again after the second, tanh output.

    Layout (hidden width h, input width n): n -> h -> (h - n) ‖ input -> h -> h -> 1 (when h <= n
    the second layer keeps h // 2 outputs instead, so the concatenation never shrinks below the
    input). ReLU and dropout follow every hidden layer; weight normalisation on the hidden layers.
    The output is tanh-bounded, in net units (signed distance, negative inside); it is not clamped.
    """

    def __init__(self, in_features: int, config: SDFDecoderConfig):
        super().__init__()
        hidden = config.hidden
        second = hidden - in_features if hidden > in_features else max(1, hidden // 2)
        layers = [
            nn.Linear(in_features, hidden),
            nn.Linear(hidden, second),
            nn.Linear(second + in_features, hidden),
            nn.Linear(hidden, hidden),
        ]
        if config.weight_norm:
            layers = [weight_norm(layer) for layer in layers]
        self.hidden_layers = nn.ModuleList(layers)
        self.out = nn.Linear(hidden, 1)
        with torch.no_grad():  # start near the zero level set, inside the loss's clamp band
            self.out.weight.mul_(OUTPUT_INIT_SCALE)
            self.out.bias.zero_()
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.in_features = in_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(..., in_features) -> (...,) signed distance, net units."""
        x = features
        for i, layer in enumerate(self.hidden_layers):
            if i == 2:
                x = torch.cat([x, features], dim=-1)
            x = self.dropout(torch.relu(layer(x)))
        return torch.tanh(self.out(x)).squeeze(-1)


class XYZEncoding(nn.Module):
    """What the SDF decoders see of a point: xyz (nu), plus sin/cos(2^i pi xyz) for i < frequencies.

    ``frequencies = 0`` is the raw xyz of the reference code (its "nerf" option is unimplemented
    there); the sin/cos features fit fine geometry in far fewer steps (spectral bias of MLPs).
    """

    def __init__(self, frequencies: int):
        super().__init__()
        self.register_buffer("scales", (2.0 ** torch.arange(frequencies)) * math.pi, persistent=False)
        self.out_features = 3 + 6 * frequencies

    def forward(self, xyz: torch.Tensor) -> torch.Tensor:
        """(..., 3) nu -> (..., out_features)."""
        if self.scales.numel() == 0:
            return xyz
        angles = (xyz[..., None] * self.scales.to(xyz.dtype)).flatten(-2)
        return torch.cat([xyz, torch.sin(angles), torch.cos(angles)], dim=-1)
