"""ResShift (Yue et al. 2023): a short Markov chain that shifts the residual between up(LR) and HR.

Model space: x_0 = n(HR), y = n(up(LR)) (per-band normalisation). Training draws
x_t ~ q(x_t | x_0, y) (:class:`~mindgap_core.schedulers.resshift.ResShiftScheduler`) and the UNet
predicts x_0 from ``concat(scale(x_t), y)`` and t (MSE, as in the official code with
``weighted_mse: False``). Sampling starts at ``y + kappa sqrt(eta_T) eps`` and runs the 15-step
posterior chain (fewer steps: respaced chain). The demo preset reads the UNet output as a correction
of y (``residual_output = "residual"``, see :mod:`mindgap_core.models.unet_scheduler`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from diffusers import UNet2DModel
from diffusers.utils.torch_utils import randn_tensor

from mindgap_core.models.base import SRModel, StepFn, unet_presets
from mindgap_core.models.unet_scheduler import UNetSchedulerModel
from mindgap_core.schedulers.resshift import ResShiftScheduler

#: the ``scheduler`` part of the resshift and sinsr configs (the official 15-step schedule; x_0 clipped
#: to +-5 in model space)
RESSHIFT_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 15, "kappa": 2.0, "min_noise_level": 0.04, "etas_end": 0.99, "power": 0.3,
    "clip_range": 5.0,
}


def make_resshift_scheduler(config: Mapping[str, Any]) -> ResShiftScheduler:
    """A ResShiftScheduler from the ``scheduler`` part of a resshift/sinsr config."""
    clip = config["clip_range"]
    return ResShiftScheduler(
        num_train_timesteps=int(config["num_train_timesteps"]), kappa=float(config["kappa"]),
        min_noise_level=float(config["min_noise_level"]), etas_end=float(config["etas_end"]),
        power=float(config["power"]), clip_sample=clip is not None,
        clip_sample_range=float(clip) if clip is not None else 1.0,
    )


def predict_x0(
    model: UNetSchedulerModel, x_t: torch.Tensor, y: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The x_0 network of ResShift and SinSR: the UNet on concat(scaled x_t, y) at timesteps t (B,)."""
    return model.unet_state(model.scheduler.scale_model_input(x_t, t), y, t)


def prior_inputs(
    model: SRModel, lr: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the chain of ResShift and SinSR starts from: y = n(up(LR)) and a draw of eps like y."""
    y = model.upsample_normalized(lr)
    return y, randn_tensor(y.shape, generator=generator, device=y.device, dtype=y.dtype)


class ResShiftModel(UNetSchedulerModel):
    """Residual-shifting diffusion with its own 15-step scheduler."""

    method: ClassVar[str] = "resshift"
    stochastic: ClassVar[bool] = True
    component_classes: ClassVar[dict[str, type]] = {"unet": UNet2DModel, "scheduler": ResShiftScheduler}
    presets: ClassVar[dict[str, dict[str, Any]]] = unet_presets(
        scheduler=RESSHIFT_SCHEDULE, default_steps=15, residual_output="residual"
    )

    @staticmethod
    def make_scheduler(config: Mapping[str, Any]) -> ResShiftScheduler:
        return make_resshift_scheduler(config)

    def predict_x0(self, x_t: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network's x_0 estimate at timesteps ``t`` (B,) in model space."""
        return predict_x0(self, x_t, y, t)

    def run_chain(
        self, y: torch.Tensor, noise: torch.Tensor, steps: int, *, deterministic: bool = False,
        generator: torch.Generator | None = None, on_step: StepFn | None = None,
    ) -> torch.Tensor:
        """The reverse chain from ``prior_sample(y, noise)`` to x_0 (model space).

        ``deterministic``: SinSR's noise-free DDIM-like sampler (what SinSR distils).
        """
        scheduler = ResShiftScheduler.from_config(self.scheduler.config)
        scheduler.set_timesteps(steps)
        x = scheduler.prior_sample(y, noise)
        total = len(scheduler.timesteps)
        for i, t in enumerate(scheduler.timesteps):
            t_batch = torch.full((y.shape[0],), int(t), device=y.device, dtype=torch.long)
            x0 = self.predict_x0(x, y, t_batch)
            out = scheduler.step(x0, int(t), x, generator=generator, y=y, deterministic=deterministic)
            x = out.prev_sample
            if on_step is not None:
                on_step(i + 1, total)
        return x

    def _sample(
        self, lr: torch.Tensor, steps: int, generator: torch.Generator | None, on_step: StepFn
    ) -> torch.Tensor:
        y, noise = prior_inputs(self, lr, generator)
        return self.denormalize(self.run_chain(y, noise, steps, generator=generator, on_step=on_step))

    def training_loss(
        self, stage: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        y = self.upsample_normalized(lr)
        x0 = self.normalize(hr)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (x0.shape[0],), generator=generator)
        t = t.to(x0.device)
        noise = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.scheduler.add_noise(x0, noise, t, y)
        return torch.nn.functional.mse_loss(self.predict_x0(x_t, y, t), x0)
