"""What the DDPM-trained, DDIM-sampled methods (SR3, SRDiff, LDM-SR) share: the noise schedule."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from diffusers import DDIMScheduler
from diffusers.utils.torch_utils import randn_tensor

from mindgap_core.errors import ConfigError

PREDICTION_TYPES: tuple[str, ...] = ("sample", "epsilon")
#: the ``scheduler`` part of the SR3 / SRDiff / LDM-SR configs, less the method's ``clip_range``
DDIM_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000, "beta_schedule": "linear", "prediction_type": "sample",
}


def make_ddim_scheduler(config: Mapping[str, Any]) -> DDIMScheduler:
    """A DDIMScheduler from the ``scheduler`` part of a method config.

    ``prediction_type`` "sample" (x_0, the default: it works far better on small budgets, see
    docs/science.md, "Measured on this 2-core CPU") or "epsilon"; ``clip_range`` clips the x_0 estimate
    at every step (None: no clipping).
    Timesteps are spaced "trailing" so that sampling starts from the pure-noise end (t = T-1).
    """
    pred = config["prediction_type"]
    if pred not in PREDICTION_TYPES:
        raise ConfigError(f"prediction_type must be one of {PREDICTION_TYPES}, got {pred!r}")
    clip = config["clip_range"]
    return DDIMScheduler(
        num_train_timesteps=int(config["num_train_timesteps"]),
        beta_schedule=config["beta_schedule"],
        prediction_type=pred,
        clip_sample=clip is not None,
        clip_sample_range=float(clip) if clip is not None else 1.0,
        timestep_spacing="trailing",
        set_alpha_to_one=True,
    )


def diffusion_loss(
    scheduler: DDIMScheduler, x0: torch.Tensor, predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    generator: torch.Generator,
) -> torch.Tensor:
    """DDPM training loss: noise ``x0`` at uniform random t, MSE to x_0 or to the noise."""
    n = x0.shape[0]
    t = torch.randint(0, scheduler.config.num_train_timesteps, (n,), generator=generator).to(x0.device)
    noise = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    noisy = scheduler.add_noise(x0, noise, t)
    pred = predict(noisy, t)
    target = x0 if scheduler.config.prediction_type == "sample" else noise
    return torch.nn.functional.mse_loss(pred, target)


def ddim_sample(
    scheduler_config: Mapping[str, Any], shape: tuple[int, ...], device: torch.device, steps: int,
    predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], generator: torch.Generator | None,
    on_step: Callable[[int, int], None],
) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) from Gaussian noise; returns the final x_0 estimate."""
    scheduler = DDIMScheduler.from_config(scheduler_config)
    if steps > scheduler.config.num_train_timesteps:
        raise ConfigError(f"steps must be <= {scheduler.config.num_train_timesteps}, got {steps}")
    scheduler.set_timesteps(steps, device=device)
    x = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
    total = len(scheduler.timesteps)
    for i, t in enumerate(scheduler.timesteps):
        t_batch = torch.full((shape[0],), int(t), device=device, dtype=torch.long)
        out = predict(x, t_batch)
        x = scheduler.step(out, t, x, eta=0.0).prev_sample
        on_step(i + 1, total)
    return x
