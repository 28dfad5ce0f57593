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

from mindgap_core.errors import ConfigError
from mindgap_core.models.base import (
    SRModel,
    StepFn,
    resize_to,
    two_stages,
    unet_from_config,
    unet_size_multiple,
)
from mindgap_core.models.ddim import ddim_sample, diffusion_loss, make_ddim_scheduler
from mindgap_core.types import CANONICAL_BANDS

LATENT_CHANNELS = 4


class LDMSRModel(SRModel):
    """Latent diffusion SR: AutoencoderKL + latent UNet conditioned on the LR at latent resolution."""

    method: ClassVar[str] = "ldm_sr"
    stochastic: ClassVar[bool] = True
    component_classes: ClassVar[dict[str, type]] = {
        "vae": AutoencoderKL, "unet": UNet2DModel, "scheduler": DDIMScheduler,
    }

    def __init__(
        self, vae: AutoencoderKL, unet: UNet2DModel, scheduler: DDIMScheduler, *,
        kl_weight: float = 1e-6, autoencoder_fraction: float = 0.3, autoencoder_lr_scale: float = 1.0,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.vae = vae
        self.unet = unet
        self.scheduler = scheduler
        self.kl_weight = float(kl_weight)
        self.autoencoder_fraction = float(autoencoder_fraction)
        self.autoencoder_lr_scale = float(autoencoder_lr_scale)

    def options(self) -> dict[str, Any]:
        return {"kl_weight": self.kl_weight, "autoencoder_fraction": self.autoencoder_fraction,
                "autoencoder_lr_scale": self.autoencoder_lr_scale}

    def stage_lr_scale(self, stage: str) -> float:
        return self.autoencoder_lr_scale if stage == "autoencoder" else 1.0

    @classmethod
    def from_parts(cls, settings: Mapping[str, Any], components: Mapping[str, Any]) -> LDMSRModel:
        opts = settings["options"]
        return cls(
            components["vae"], components["unet"], components["scheduler"], kl_weight=opts["kl_weight"],
            autoencoder_fraction=opts["autoencoder_fraction"],
            autoencoder_lr_scale=opts.get("autoencoder_lr_scale", 1.0), **cls.base_kwargs(settings),
        )

    @classmethod
    def build(
        cls, config: Mapping[str, Any] | None, *, scale: int, band_names: Sequence[str] = CANONICAL_BANDS,
        stats: Mapping[str, Sequence[float]] | None = None,
    ) -> LDMSRModel:
        cfg = cls.method_config(config)
        c = len(band_names)
        v = cfg["vae"]
        n = len(v["block_out_channels"])
        vae = AutoencoderKL(
            in_channels=c, out_channels=c, down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(v["block_out_channels"]),
            layers_per_block=v["layers_per_block"], latent_channels=LATENT_CHANNELS,
            norm_num_groups=v["norm_num_groups"], mid_block_add_attention=False, scaling_factor=1.0,
        )
        if cfg["vae_logvar_init"] is not None:  # start with a near-deterministic posterior (see docstring)
            with torch.no_grad():
                vae.quant_conv.bias[LATENT_CHANNELS:] = float(cfg["vae_logvar_init"])
        unet = unet_from_config(LATENT_CHANNELS + c, LATENT_CHANNELS, cfg["unet"])
        if not 0 < cfg["autoencoder_fraction"] < 1:
            raise ConfigError(
                f"ldm_sr autoencoder_fraction must be in (0, 1), got {cfg['autoencoder_fraction']}"
            )
        return cls(
            vae, unet, make_ddim_scheduler(cfg["scheduler"]), kl_weight=cfg["kl_weight"],
            autoencoder_fraction=cfg["autoencoder_fraction"], autoencoder_lr_scale=cfg["autoencoder_lr_scale"],
            default_steps=cfg["default_steps"],
            **cls.build_kwargs(scale, band_names, stats),
        )

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

    def trainable(self, stage: str) -> list[str]:
        return ["vae"] if stage == "autoencoder" else ["unet"]

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
