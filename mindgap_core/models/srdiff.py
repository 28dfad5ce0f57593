"""SRDiff (Li et al. 2022): diffusion of the residual HR - up(LR), conditioned on LR-encoder features.

x_0 is the residual ``(n(HR) - n(up(LR))) / residual_std`` (``n``: per-band normalisation,
``residual_std``: per-band std of that residual on the training tiles). The UNet sees
``concat(r_t, n(up(LR)), up(E(LR)))`` where ``E`` is a small convolutional LR encoder (SRDiff uses
an RRDB net pre-trained with L1; ours is trained jointly with the UNet, end to end, to fit the
budget). x_0 prediction with x_0 clipping (the combination that works on small budgets,
docs/science.md, "Measured on this 2-core CPU"), DDPM training, DDIM sampling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from mindgap_core.models.base import (
    SRModel,
    StepFn,
    per_band,
    unet_from_config,
    unet_presets,
    unet_size_multiple,
)
from mindgap_core.models.blocks import ResBlock
from mindgap_core.models.ddim import DDIM_SCHEDULE, ddim_sample, diffusion_loss, make_ddim_scheduler

#: the ``encoder`` part of the srdiff config, by preset
ENCODER_PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"features": 4, "blocks": 1}, "demo": {"features": 32, "blocks": 2},
}


class LREncoder(ModelMixin, ConfigMixin):
    """Convolutional features of the LR image at LR resolution (conv, residual blocks, conv)."""

    @register_to_config
    def __init__(self, in_channels: int = 4, features: int = 32, blocks: int = 2) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, features, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(features, F.silu) for _ in range(blocks)])
        self.tail = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.head(lr)
        return self.tail(F.silu(self.body(x) + x))


class SRDiffModel(SRModel):
    """Residual diffusion conditioned on LR-encoder features and up(LR)."""

    method: ClassVar[str] = "srdiff"
    stochastic: ClassVar[bool] = True
    component_classes: ClassVar[dict[str, type]] = {
        "unet": UNet2DModel, "lr_encoder": LREncoder, "scheduler": DDIMScheduler,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = unet_presets(
        {name: {"encoder": encoder} for name, encoder in ENCODER_PRESETS.items()},
        scheduler={**DDIM_SCHEDULE, "clip_range": 4.0}, default_steps=50,
    )

    @register_to_config
    def __init__(
        self, *, unet: UNet2DModel, lr_encoder: LREncoder, scheduler: DDIMScheduler,
        residual_std: Sequence[float] | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.unet = unet
        self.lr_encoder = lr_encoder
        self.scheduler = scheduler
        self.residual_std = tuple(float(v) for v in (residual_std or (1.0,) * len(self.band_names)))
        self.register_to_config(residual_std=list(self.residual_std))

    @classmethod
    def fresh_parts(
        cls, config: Mapping[str, Any], channels: int, stats: Mapping[str, Sequence[float]]
    ) -> dict[str, Any]:
        encoder = config["encoder"]
        return {
            "lr_encoder": LREncoder(
                in_channels=channels, features=encoder["features"], blocks=encoder["blocks"]
            ),
            "unet": unet_from_config(2 * channels + encoder["features"], channels, config["unet"]),
            "scheduler": make_ddim_scheduler(config["scheduler"]),
            "residual_std": stats.get("residual_std"),
        }

    @property
    def size_multiple(self) -> int:
        return unet_size_multiple(self.unet)

    def _res_std(self, x: torch.Tensor) -> torch.Tensor:
        return per_band(self.residual_std, x)

    def _condition(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n(up(LR)), concat(n(up(LR)), upsampled encoder features))."""
        up = self.upsample_normalized(lr)
        feats = self.call(self.lr_encoder, self.normalize(lr))
        feats = F.interpolate(feats, size=up.shape[-2:], mode="bilinear", align_corners=False)
        return up, torch.cat([up, feats], dim=1)

    def _sample(
        self, lr: torch.Tensor, steps: int, generator: torch.Generator | None, on_step: StepFn
    ) -> torch.Tensor:
        up, cond = self._condition(lr)
        r0 = ddim_sample(
            self.scheduler.config, tuple(up.shape), up.device, steps,
            lambda x, t: self.call(self.unet, torch.cat([x, cond], dim=1), t), generator, on_step,
        )
        return self.denormalize(up + r0 * self._res_std(r0))

    def training_loss(
        self, stage: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        up, cond = self._condition(lr)
        residual = (self.normalize(hr) - up) / self._res_std(up)
        return diffusion_loss(
            self.scheduler, residual, lambda x, t: self.call(self.unet, torch.cat([x, cond], dim=1), t),
            generator,
        )
