"""Deterministic regression CNN: the non-diffusion reference.

A plain residual CNN (conv, ``blocks`` residual blocks, conv) on n(up(LR)) predicting the normalised
residual n(HR) - n(up(LR)), trained with L1 (docs/science.md, "Measured on this 2-core CPU": 175 k
parameters in a design-phase config beat bicubic by ~1 dB).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from mindgap_core.models.base import SRModel, StepFn
from mindgap_core.models.blocks import ResBlock


class ResidualCNN(ModelMixin, ConfigMixin):
    """conv(in -> features), residual blocks, conv(features -> out); output = predicted residual."""

    @register_to_config
    def __init__(
        self, in_channels: int = 4, out_channels: int = 4, features: int = 48, blocks: int = 4
    ) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, features, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(features, F.relu) for _ in range(blocks)])
        self.tail = nn.Conv2d(features, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(F.relu(self.body(self.head(x))))


class RegressionModel(SRModel):
    """up(LR) + CNN residual, L1-trained; deterministic."""

    method: ClassVar[str] = "regression"
    stochastic: ClassVar[bool] = False
    component_classes: ClassVar[dict[str, type]] = {"net": ResidualCNN}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"features": 8, "blocks": 1}, "demo": {"features": 32, "blocks": 2},
    }

    @register_to_config
    def __init__(self, *, net: ResidualCNN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.net = net

    @classmethod
    def fresh_parts(
        cls, config: Mapping[str, Any], channels: int, stats: Mapping[str, Sequence[float]]
    ) -> dict[str, Any]:
        net = ResidualCNN(in_channels=channels, out_channels=channels, features=config["features"],
                          blocks=config["blocks"])
        return {"net": net}

    def _predict(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        up = self.upsample_normalized(lr)
        return up, self.call(self.net, up)

    def _sample(
        self, lr: torch.Tensor, steps: int, generator: torch.Generator | None, on_step: StepFn
    ) -> torch.Tensor:
        up, residual = self._predict(lr)
        on_step(1, 1)
        return self.denormalize(up + residual)

    def training_loss(
        self, stage: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        up, residual = self._predict(lr)
        return F.l1_loss(residual, self.normalize(hr) - up)
