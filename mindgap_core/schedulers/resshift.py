r"""ResShift's residual-shifting diffusion as a diffusers scheduler.

Yue, Wang & Loy, "ResShift: Efficient Diffusion Model for Image Super-resolution by Residual
Shifting", NeurIPS 2023 (arXiv 2307.12348). Formulas checked against the official code,
github.com/zsyOAOA/ResShift ``models/gaussian_diffusion.py`` (``get_named_eta_schedule``,
``GaussianDiffusion.q_sample``, ``q_posterior_mean_variance``, ``prior_sample``, ``_scale_input``),
and the deterministic sampler against SinSR's code, github.com/wyf0912/SinSR
``models/gaussian_diffusion.py`` (``ddim_coef1/2``, ``ddim_k/m/j``).

Notation (timestep index ``t = 0 .. T-1``; ``t`` here is the paper's ``t+1``)::

    y   = up(LR)          e_0 = y - x_0          (the residual that the chain shifts)
    sqrt(eta_t) = sqrt(eta_0) * b ** ((t / (T-1)) ** p * (T-1)),  b = (sqrt(eta_end)/sqrt(eta_0)) ** (1/(T-1))
    sqrt(eta_0) = min(min_noise_level / kappa, min_noise_level),  sqrt(eta_{T-1}) = etas_end

    forward marginal   q(x_t | x_0, y)        = N(x_0 + eta_t e_0,  kappa^2 eta_t I)
    prior              x_{T-1} = y + kappa sqrt(eta_{T-1}) eps
    posterior          q(x_s | x_t, x_0), s < t (s = t-1 in the paper; any s when respaced):
        mean  = (eta_s / eta_t) x_t + ((eta_t - eta_s) / eta_t) x_0
        var   = kappa^2 eta_s (eta_t - eta_s) / eta_t            (alpha_t = eta_t - eta_{t-1})
    deterministic (DDIM-like, SinSR):
        x_s = x_0 + eta_s e_0 + sqrt(eta_s / eta_t) (x_t - x_0 - eta_t e_0)
    network input scaling  x_t / sqrt(kappa^2 eta_t + 1)         (``normalize_input``, latent_flag)

The posterior for an arbitrary earlier step ``s`` follows because the forward chain is Markov with
increments ``N(x_s + (eta_t - eta_s) e_0, kappa^2 (eta_t - eta_s) I)``; sampling with fewer steps
than ``num_train_timesteps`` (the official code's ``timestep_respacing``) uses it. After the last
step (``s = -1``, ``eta = 0``) the sample is the x_0 prediction.

Defaults are the official real-SR configuration (``realsr_swinunet_realesrgan256.yaml``): 15 steps,
kappa 2, min_noise_level 0.04, etas_end 0.99, power 0.3, x_0 prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor


@dataclass
class ResShiftSchedulerOutput(BaseOutput):
    """``prev_sample``: x at the previous timestep; ``pred_original_sample``: the (clipped) x_0."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


def resshift_sqrt_etas(
    num_train_timesteps: int, kappa: float, min_noise_level: float, etas_end: float, power: float
) -> np.ndarray:
    """ResShift's "exponential" shifting sequence sqrt(eta_t), t = 0..T-1 (float64)."""
    t_count = int(num_train_timesteps)
    start = min(min_noise_level / kappa, min_noise_level)
    if t_count == 1:
        return np.array([etas_end], dtype=np.float64)
    increaser = math.exp(math.log(etas_end / start) / (t_count - 1))
    power_timestep = np.linspace(0.0, 1.0, t_count, endpoint=True) ** power * (t_count - 1)
    return np.power(increaser, power_timestep) * start


class ResShiftScheduler(SchedulerMixin, ConfigMixin):
    """Residual-shifting Markov chain between HR (x_0) and up(LR) (y), with x_0 prediction."""

    config_name = "scheduler_config.json"
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 15,
        kappa: float = 2.0,
        min_noise_level: float = 0.04,
        etas_end: float = 0.99,
        power: float = 0.3,
        prediction_type: str = "sample",
        clip_sample: bool = True,
        clip_sample_range: float = 1.0,
        normalize_input: bool = True,
    ) -> None:
        if prediction_type != "sample":
            raise ValueError(
                f"ResShiftScheduler predicts x_0 only (prediction_type='sample'), got {prediction_type!r}"
            )
        if num_train_timesteps < 1 or kappa <= 0 or not 0 < etas_end <= 1 or min_noise_level <= 0:
            raise ValueError(
                "ResShiftScheduler needs num_train_timesteps >= 1, kappa > 0, 0 < etas_end <= 1, "
                "min_noise_level > 0"
            )
        sqrt_etas = resshift_sqrt_etas(num_train_timesteps, kappa, min_noise_level, etas_end, power)
        self.sqrt_etas = torch.from_numpy(sqrt_etas)  # float64
        self.etas = self.sqrt_etas**2
        self.num_inference_steps: int | None = None
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1, dtype=torch.long)

    # ----------------------------------------------------------------------------------------------
    def _eta(self, timesteps: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
        """eta at integer timesteps (eta(-1) = 0), broadcast to ``like``'s rank, in its dtype/device."""
        t = torch.as_tensor(timesteps, dtype=torch.long).reshape(-1).cpu()
        padded = torch.cat([torch.zeros(1, dtype=torch.float64), self.etas])
        eta = padded[t + 1].to(device=like.device, dtype=like.dtype)
        return eta.reshape(-1, *([1] * (like.ndim - 1)))

    def set_timesteps(
        self, num_inference_steps: int | None = None, device: str | torch.device | None = None
    ) -> None:
        """Evenly spaced timesteps from T-1 down to 0 (``num_inference_steps`` <= T; default T)."""
        total = self.config.num_train_timesteps
        n = total if num_inference_steps is None else int(num_inference_steps)
        if not 1 <= n <= total:
            raise ValueError(f"num_inference_steps must be in 1..{total}, got {n}")
        if n == 1:
            steps = np.array([total - 1])
        else:
            steps = np.unique(np.round(np.linspace(total - 1, 0, n)).astype(np.int64))[::-1].copy()
        self.num_inference_steps = n
        self.timesteps = torch.from_numpy(steps).to(device=device if device is not None else "cpu")

    def previous_timestep(self, timestep: int | torch.Tensor) -> int:
        """The timestep after ``timestep`` in the current sampling sequence (-1 after the last)."""
        seq = [int(v) for v in self.timesteps]
        t = int(timestep)
        if t not in seq:
            raise ValueError(f"timestep {t} is not in the sampling sequence {seq}")
        i = seq.index(t)
        return seq[i + 1] if i + 1 < len(seq) else -1

    # ----------------------------------------------------------------------------------------------
    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """Draw from q(x_t | x_0, y) = N(x_0 + eta_t (y - x_0), kappa^2 eta_t I) with given noise."""
        eta = self._eta(timesteps, original_samples)
        kappa = self.config.kappa
        return original_samples + eta * (y - original_samples) + kappa * eta.sqrt() * noise

    def prior_sample(self, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_{T-1} = y + kappa sqrt(eta_{T-1}) noise: where sampling starts."""
        eta = self._eta(self.config.num_train_timesteps - 1, y)
        return y + self.config.kappa * eta.sqrt() * noise

    def scale_model_input(
        self, sample: torch.Tensor, timestep: int | torch.Tensor | None = None
    ) -> torch.Tensor:
        """x_t / sqrt(kappa^2 eta_t + 1) when ``normalize_input`` (network input near unit variance)."""
        if not self.config.normalize_input:
            return sample
        if timestep is None:
            raise ValueError("scale_model_input needs the timestep")
        t = torch.as_tensor(timestep).reshape(-1)
        if t.numel() == 1 and sample.shape[0] != 1:
            t = t.expand(sample.shape[0])
        eta = self._eta(t, sample)
        return sample / torch.sqrt(self.config.kappa**2 * eta + 1)

    def posterior_mean_variance(
        self, x0: torch.Tensor, sample: torch.Tensor, timestep: int, prev_timestep: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_prev | x_t, x_0) (prev_timestep = -1 gives x_0, variance 0)."""
        eta_t = self._eta(timestep, sample)
        eta_s = self._eta(prev_timestep, sample)
        mean = (eta_s / eta_t) * sample + ((eta_t - eta_s) / eta_t) * x0
        var = self.config.kappa**2 * eta_s * (eta_t - eta_s) / eta_t
        return mean, var

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
        *,
        y: torch.Tensor | None = None,
        deterministic: bool = False,
        prev_timestep: int | None = None,
    ) -> ResShiftSchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """One reverse step x_t -> x_prev from the network's x_0 prediction ``model_output``.

        Stochastic (default): a draw from the posterior q(x_prev | x_t, x_0-hat). ``deterministic``:
        SinSR's noise-free DDIM-like update, which needs ``y`` (= up(LR) in model space).
        ``prev_timestep`` defaults to the next entry of :attr:`timesteps`.
        """
        t = int(timestep)
        s = self.previous_timestep(t) if prev_timestep is None else int(prev_timestep)
        x0 = model_output
        if self.config.clip_sample:
            r = self.config.clip_sample_range
            x0 = x0.clamp(-r, r)
        if deterministic:
            if y is None:
                raise ValueError("the deterministic ResShift step needs y (the upsampled LR)")
            eta_t = self._eta(t, sample)
            eta_s = self._eta(s, sample)
            e0 = y - x0
            prev = x0 + eta_s * e0 + torch.sqrt(eta_s / eta_t) * (sample - x0 - eta_t * e0)
        else:
            mean, var = self.posterior_mean_variance(x0, sample, t, s)
            if s >= 0:
                noise = randn_tensor(
                    sample.shape, generator=generator, device=sample.device, dtype=sample.dtype
                )
                prev = mean + var.sqrt() * noise
            else:
                prev = mean
        if not return_dict:
            return prev, x0
        return ResShiftSchedulerOutput(prev_sample=prev, pred_original_sample=x0)

    def __len__(self) -> int:
        return self.config.num_train_timesteps
