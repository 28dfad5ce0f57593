"""SR3 (Saharia et al. 2021): pixel-space conditional diffusion.

The UNet sees ``concat(x_t, up(LR))`` (both normalised) and predicts x_0 (default) or the noise;
trained as a DDPM with 1000 linear-beta steps, sampled with DDIM (50 steps by default). SR3 itself
predicts the noise; we default to x_0 prediction with x_0 clipping because, on the small budgets
of this project, it is far better (docs/science.md, "Measured on this 2-core CPU"); set
``scheduler.prediction_type = "epsilon"`` (with ``residual_output = "image"``) for the original.
The demo preset reads the UNet output as a correction of up(LR) (``residual_output = "residual"``,
see :mod:`mindgap_core.models.unet_scheduler`); the diffusion still runs on the HR image.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from diffusers import DDIMScheduler, UNet2DModel

from mindgap_core.errors import ConfigError
from mindgap_core.models.base import StepFn, unet_presets
from mindgap_core.models.ddim import DDIM_SCHEDULE, ddim_sample, diffusion_loss, make_ddim_scheduler
from mindgap_core.models.unet_scheduler import UNetSchedulerModel


class SR3Model(UNetSchedulerModel):
    """Conditional DDPM on concat(noisy HR, bicubic-upsampled LR)."""

    method: ClassVar[str] = "sr3"
    stochastic: ClassVar[bool] = True
    component_classes: ClassVar[dict[str, type]] = {"unet": UNet2DModel, "scheduler": DDIMScheduler}
    presets: ClassVar[dict[str, dict[str, Any]]] = unet_presets(
        scheduler={**DDIM_SCHEDULE, "clip_range": 5.0}, default_steps=50, residual_output="residual"
    )

    def __init__(self, *, unet: UNet2DModel, scheduler: DDIMScheduler, **kwargs: Any) -> None:
        super().__init__(unet=unet, scheduler=scheduler, **kwargs)
        if self.residual_scale is not None and scheduler.config.prediction_type != "sample":
            raise ConfigError(
                'sr3: residual_output "residual" needs prediction_type "sample" (x_0); '
                'use residual_output "image" with "epsilon"'
            )

    @staticmethod
    def make_scheduler(config: Mapping[str, Any]) -> DDIMScheduler:
        return make_ddim_scheduler(config)

    def _predict(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.unet_state(x_t, cond, t)

    def _sample(
        self, lr: torch.Tensor, steps: int, generator: torch.Generator | None, on_step: StepFn
    ) -> torch.Tensor:
        cond = self.upsample_normalized(lr)
        x0 = ddim_sample(
            self.scheduler.config, tuple(cond.shape), cond.device, steps,
            lambda x, t: self._predict(x, t, cond), generator, on_step,
        )
        return self.denormalize(x0)

    def training_loss(
        self, stage: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        cond = self.upsample_normalized(lr)
        return diffusion_loss(
            self.scheduler, self.normalize(hr), lambda x, t: self._predict(x, t, cond), generator
        )
