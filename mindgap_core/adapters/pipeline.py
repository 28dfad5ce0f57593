"""The decoupled pipeline: an LR -> LR adapter, then a (synthetic-trained) SR model."""

from __future__ import annotations

from typing import Any

import torch

from mindgap_core.adapters.base import LRAdapter
from mindgap_core.models.base import SRModel, StepFn


class AdaptedSRModel:
    """``sr_model.sample(adapter.adapt(lr))``; other attributes are the SR model's."""

    def __init__(self, adapter: LRAdapter, sr_model: SRModel) -> None:
        self.adapter = adapter
        self.sr_model = sr_model

    @property
    def uses_reference(self) -> bool:
        """Whether :meth:`sample` needs ``reference_hr`` (a co-registering harmoniser: oracle geometry)."""
        return self.adapter.uses_reference

    def sample(self, lr: torch.Tensor, num_samples: int = 1, steps: int | None = None,
               generator: torch.Generator | None = None, on_step: StepFn | None = None,
               reference_hr: torch.Tensor | None = None) -> torch.Tensor:
        """Adapt ``lr`` (N, C, h, w), then super-resolve it: (N, num_samples, C, h*s, w*s)."""
        self.sr_model.check_input(lr)
        with torch.no_grad():
            adapted = self.adapter.adapt(lr, reference_hr)
        return self.sr_model.sample(adapted, num_samples=num_samples, steps=steps, generator=generator,
                                    on_step=on_step)

    def to(self, device: str | torch.device) -> AdaptedSRModel:
        self.adapter.to(device)
        self.sr_model.to(device)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sr_model, name)
