"""Bicubic interpolation: the no-learning baseline (no weights; its folder holds only a config)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from mindgap_core.models.base import PRESET_NAMES, SRModel, StepFn, upsample


class BicubicModel(SRModel):
    """torch bicubic upsampling (a = -0.75, align_corners False) of the LR reflectance."""

    method: ClassVar[str] = "bicubic"
    stochastic: ClassVar[bool] = False
    component_classes: ClassVar[dict[str, type]] = {}
    presets: ClassVar[dict[str, dict[str, Any]]] = {name: {} for name in PRESET_NAMES}

    def _sample(
        self, lr: torch.Tensor, steps: int, generator: torch.Generator | None, on_step: StepFn
    ) -> torch.Tensor:
        out = upsample(lr.float(), self.scale)
        on_step(1, 1)
        return out

    def plan_stages(self, total_steps: int, pretrained: bool) -> list[tuple[str, int]]:
        return []  # nothing to train

    def training_loss(
        self, stage: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        raise RuntimeError("bicubic has nothing to train")
