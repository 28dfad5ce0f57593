"""Small network pieces shared by MindGap's own ``ModelMixin`` networks."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ResBlock(nn.Module):
    """``x + conv2(activation(conv1(x)))`` with two 3x3 convolutions of ``features`` channels.

    Parameters: ``conv1.*`` and ``conv2.*`` (the activation has none).
    """

    def __init__(self, features: int, activation: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.activation(self.conv1(x)))
