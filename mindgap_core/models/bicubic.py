"""Bicubic interpolation: the no-learning baseline (no weights; its folder holds only a config)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from mindgap_core.models.base import SRModel, StepFn, upsample
from mindgap_core.types import CANONICAL_BANDS


class BicubicModel(SRModel):
    """torch bicubic upsampling (a = -0.75, align_corners False) of the LR reflectance."""

    method: ClassVar[str] = "bicubic"
    stochastic: ClassVar[bool] = False
    component_classes: ClassVar[dict[str, type]] = {}

    @classmethod
    def from_parts(cls, settings: Mapping[str, Any], components: Mapping[str, Any]) -> BicubicModel:
        return cls(**cls.base_kwargs(settings))

    @classmethod
    def build(
        cls, config: Mapping[str, Any] | None, *, scale: int, band_names: Sequence[str] = CANONICAL_BANDS,
        stats: Mapping[str, Sequence[float]] | None = None,
    ) -> BicubicModel:
        cls.method_config(config)  # validates the (empty) config
        return cls(**cls.build_kwargs(scale, band_names, stats))

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
