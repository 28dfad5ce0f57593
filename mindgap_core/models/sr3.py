"""SR3 (Saharia et al. 2021): pixel-space conditional diffusion.

The UNet sees ``concat(x_t, up(LR))`` (both normalised) and predicts x_0 (default) or the noise;
trained as a DDPM with 1000 linear-beta steps, sampled with DDIM (50 steps by default). SR3 itself
predicts the noise; we default to x_0 prediction with x_0 clipping because, on the small budgets
of this project, it is far better (science.md, "Measured on this 2-core CPU"); set
``scheduler.prediction_type = "epsilon"`` for the original.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from diffusers import DDIMScheduler, UNet2DModel

from mindgap_core.models.base import SRModel, StepFn, build_unet, merge_config, unet_size_multiple, upsample
from mindgap_core.models.ddim import ddim_sample, diffusion_loss, make_ddim_scheduler
from mindgap_core.models.presets import PRESETS
from mindgap_core.types import CANONICAL_BANDS


class SR3Model(SRModel):
    """Conditional DDPM on concat(noisy HR, bicubic-upsampled LR)."""

    method: ClassVar[str] = "sr3"
    stochastic: ClassVar[bool] = True
    component_classes: ClassVar[dict[str, type]] = {"unet": UNet2DModel, "scheduler": DDIMScheduler}

    def __init__(self, unet: UNet2DModel, scheduler: DDIMScheduler, **base: Any) -> None:
        super().__init__(**base)
        self.unet = unet
        self.scheduler = scheduler

    def components(self) -> dict[str, Any]:
        return {"unet": self.unet, "scheduler": self.scheduler}

    @classmethod
    def from_parts(cls, settings: Mapping[str, Any], components: Mapping[str, Any]) -> SR3Model:
        return cls(components["unet"], components["scheduler"], **cls.base_kwargs(settings))

    @classmethod
    def build(
        cls, config: Mapping[str, Any] | None, *, scale: int, band_names: Sequence[str] = CANONICAL_BANDS,
        stats: Mapping[str, Sequence[float]] | None = None,
    ) -> SR3Model:
        cfg = merge_config(PRESETS["demo"][cls.method], config, cls.method)
        c = len(band_names)
        u = cfg["unet"]
        unet = build_unet(2 * c, c, u["block_out_channels"], u["layers_per_block"], u["norm_num_groups"])
        stats = stats or {}
        return cls(
            unet, make_ddim_scheduler(cfg["scheduler"]), scale=scale, band_names=band_names,
            band_mean=stats.get("band_mean"), band_std=stats.get("band_std"),
            default_steps=cfg["default_steps"],
        )

    @property
    def size_multiple(self) -> int:
        return unet_size_multiple(self.unet)

    def _predict(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.call(self.unet, torch.cat([x_t, cond], dim=1), t)

    def _sample(
        self, lr: torch.Tensor, steps: int, generator: torch.Generator | None, on_step: StepFn
    ) -> torch.Tensor:
        cond = self.normalize(upsample(lr, self.scale))
        x0 = ddim_sample(
            self.scheduler.config, tuple(cond.shape), cond.device, steps,
            lambda x, t: self._predict(x, t, cond), generator, on_step,
        )
        return self.denormalize(x0)

    def training_loss(
        self, stage: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        cond = self.normalize(upsample(lr, self.scale))
        return diffusion_loss(
            self.scheduler, self.normalize(hr), lambda x, t: self._predict(x, t, cond), generator
        )
