"""LDM-SR (Rombach et al. 2022; cf. ESA's LDSR-S2): diffusion in the latent space of an autoencoder.

Two training stages in one run:

1. ``autoencoder``: a small diffusers ``AutoencoderKL`` (a factor 2 per block; the demo preset has
   two blocks, f = 2, so at x2 the latent grid is the LR grid; 4 latent channels) on normalised HR
   tiles, loss L1 reconstruction + ``kl_weight`` x KL, at ``autoencoder_lr_scale`` x the learning rate;
   ``vae_logvar_init`` (e.g. -6) starts the posterior log-variance low, so the decoder does not spend
   its short budget learning to denoise std-1 latent draws. At the end the
   latent scaling factor is set to 1 / std of the training latents (stored in the VAE's config,
   ``scaling_factor``, as in Stable Diffusion).
2. ``diffusion``: the VAE frozen; a UNet denoises scaled latents given ``concat(z_t, n(LR) resized
   to the latent grid)`` (area-averaged for x2, identical for x4, bicubic for x8); x_0 prediction
   with clipping, DDPM training, DDIM sampling; the x_0 latent is decoded to HR.

Fine-tuning from a checkpoint (``--init``) skips stage 1: the HR domain is the same in every regime,
only the LR changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DModel
from diffusers.configuration_utils import register_to_config

from mindgap_core.errors import ConfigError
from mindgap_core.models.base import (
    SRModel,
    StepFn,
    resize_to,
    two_stages,
    unet_from_config,
    unet_presets,
    unet_size_multiple,
)
from mindgap_core.models.ddim import DDIM_SCHEDULE, ddim_sample, diffusion_loss, make_ddim_scheduler

LATENT_CHANNELS = 4
#: the parts of the ldm_sr config that differ between presets (the demo's f = 2: at x2 the latent
#: grid is the LR grid; the VAE bounds the PSNR LDM-SR can reach)
_PRESET_PARTS: dict[str, dict[str, Any]] = {
    "tiny": {
        "vae": {"block_out_channels": [4, 8, 8], "layers_per_block": 1, "norm_num_groups": 2},
        "autoencoder_fraction": 0.3, "autoencoder_lr_scale": 1.0, "vae_logvar_init": None,
    },
    "demo": {
        "vae": {"block_out_channels": [32, 32], "layers_per_block": 1, "norm_num_groups": 16},
        "autoencoder_fraction": 0.6, "autoencoder_lr_scale": 5.0, "vae_logvar_init": -6.0,
    },
}


class LDMSRModel(SRModel):
    """Latent diffusion SR: AutoencoderKL + latent UNet conditioned on the LR at latent resolution."""

    method: ClassVar[str] = "ldm_sr"
    stochastic: ClassVar[bool] = True
    component_classes: ClassVar[dict[str, type]] = {
        "vae": AutoencoderKL, "unet": UNet2DModel, "scheduler": DDIMScheduler,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = unet_presets(
        _PRESET_PARTS, scheduler={**DDIM_SCHEDULE, "clip_range": 4.0}, default_steps=50, kl_weight=1e-6
    )
    stage_modules: ClassVar[dict[str, list[str]]] = {"autoencoder": ["vae"], "diffusion": ["unet"]}

    @register_to_config
    def __init__(
        self, *, vae: AutoencoderKL, unet: UNet2DModel, scheduler: DDIMScheduler, kl_weight: float = 1e-6,
        autoencoder_fraction: float = 0.3, autoencoder_lr_scale: float = 1.0, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0 < autoencoder_fraction < 1:
            raise ConfigError(f"ldm_sr autoencoder_fraction must be in (0, 1), got {autoencoder_fraction}")
        self.vae = vae
        self.unet = unet
        self.scheduler = scheduler
        self.kl_weight = float(kl_weight)
        self.autoencoder_fraction = float(autoencoder_fraction)
        self.autoencoder_lr_scale = float(autoencoder_lr_scale)

    def stage_lr_scale(self, stage: str) -> float:
        return self.autoencoder_lr_scale if stage == "autoencoder" else 1.0

    @classmethod
    def fresh_parts(
        cls, config: Mapping[str, Any], channels: int, stats: Mapping[str, Sequence[float]]
    ) -> dict[str, Any]:
        v = config["vae"]
        n = len(v["block_out_channels"])
        vae = AutoencoderKL(
            in_channels=channels, out_channels=channels, down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(v["block_out_channels"]),
            layers_per_block=v["layers_per_block"], latent_channels=LATENT_CHANNELS,
            norm_num_groups=v["norm_num_groups"], mid_block_add_attention=False, scaling_factor=1.0,
        )
        if config["vae_logvar_init"] is not None:  # start with a near-deterministic posterior (docstring)
            with torch.no_grad():
                vae.quant_conv.bias[LATENT_CHANNELS:] = float(config["vae_logvar_init"])
        return {
            "vae": vae, "unet": unet_from_config(LATENT_CHANNELS + channels, LATENT_CHANNELS, config["unet"]),
            "scheduler": make_ddim_scheduler(config["scheduler"]), "kl_weight": config["kl_weight"],
            "autoencoder_fraction": config["autoencoder_fraction"],
            "autoencoder_lr_scale": config["autoencoder_lr_scale"],
        }

    @property
    def latent_factor(self) -> int:
        """HR pixels per latent pixel (2 per VAE downsampling block)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        return self.latent_factor * unet_size_multiple(self.unet)

    # ----------------------------------------------------------------------------------------------
    def encode(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Scaled latents of HR reflectance (posterior mode; a draw when ``generator`` is given)."""
        dist = self.vae.encode(self.normalize(hr).to(self.vae.dtype)).latent_dist
        z = dist.sample(generator) if generator is not None else dist.mode()
        return z.float() * self.vae.config.scaling_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """HR reflectance from scaled latents."""
        dec = self.vae.decode((z / self.vae.config.scaling_factor).to(self.vae.dtype)).sample
        return self.denormalize(dec.float())

    def _latent_condition(self, lr: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
        return resize_to(self.normalize(lr), latent_size)

    def _sample(
        self, lr: torch.Tensor, steps: int, generator: torch.Generator | None, on_step: StepFn
    ) -> torch.Tensor:
        h, w = lr.shape[-2] * self.scale, lr.shape[-1] * self.scale
        size = (h // self.latent_factor, w // self.latent_factor)
        cond = self._latent_condition(lr, size)
        z0 = ddim_sample(
            self.scheduler.config, (lr.shape[0], LATENT_CHANNELS, *size), lr.device, steps,
            lambda x, t: self.call(self.unet, torch.cat([x, cond], dim=1), t), generator, on_step,
        )
        return self.decode(z0)

    # ----------------------------------------------------------------------------------------------
    def plan_stages(self, total_steps: int, pretrained: bool) -> list[tuple[str, int]]:
        if pretrained:
            return [("diffusion", total_steps)]
        return two_stages(total_steps, self.autoencoder_fraction, "autoencoder", "diffusion")

    def training_loss(
        self, stage: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        if stage == "autoencoder":
            x = self.normalize(hr)
            dist = self.vae.encode(x).latent_dist
            recon = self.vae.decode(dist.sample(generator)).sample.float()
            return F.l1_loss(recon, x) + self.kl_weight * dist.kl().mean()
        with torch.no_grad():
            z0 = self.encode(hr)
        cond = self._latent_condition(lr, tuple(z0.shape[-2:]))
        return diffusion_loss(
            self.scheduler, z0, lambda x, t: self.call(self.unet, torch.cat([x, cond], dim=1), t), generator
        )

    @torch.no_grad()
    def end_stage(self, stage: str, hr_tiles: torch.Tensor, lr_tiles: torch.Tensor) -> None:
        """After the autoencoder stage: scaling_factor = 1 / std of the training latents."""
        if stage != "autoencoder":
            return
        self.vae.register_to_config(scaling_factor=1.0)
        chunks = [self.encode(hr_tiles[i : i + 16].to(self.device)) for i in range(0, len(hr_tiles), 16)]
        std = float(torch.cat(chunks).std())
        self.vae.register_to_config(scaling_factor=1.0 / max(std, 1e-6))
