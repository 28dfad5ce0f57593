"""What SR3, ResShift and SinSR share: a UNet on ``concat(x_t, n(up(LR)))`` and its scheduler.

The saved components are ``unet`` (a diffusers ``UNet2DModel`` with 2C input and C output channels)
and ``scheduler``; subclasses name the scheduler class in ``component_classes`` and say how to make
one from the ``scheduler`` part of their config (:meth:`UNetSchedulerModel.make_scheduler`).

Output parameterisation (config key ``residual_output``): the UNet's output ``F`` is read either as
the state itself (``"image"``: the published SR3 / ResShift / SinSR networks) or as a correction of
the conditioning, ``y + s * F`` with ``y = n(up(LR))`` and ``s`` the per-band std of the training
residual n(HR) - y (``"residual"``, the demo default). Both are the same model family and the same
loss; the residual reading is a preconditioning (like EDM's skip connection) that starts training at
bicubic instead of at noise, which matters on the small budgets of this project (docs/science.md,
"Measured on this 2-core CPU"). The
choice is stored in ``model_index.json`` (checkpoints without it are ``"image"``).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from diffusers import UNet2DModel
from diffusers.configuration_utils import register_to_config

from mindgap_core.errors import ConfigError
from mindgap_core.models.base import SRModel, per_band, unet_from_config, unet_size_multiple

OUTPUT_PARAMETERISATIONS: tuple[str, ...] = ("image", "residual")


class UNetSchedulerModel(SRModel):
    """A model made of a UNet on concat(state, bicubic-upsampled LR) and a scheduler."""

    @register_to_config
    def __init__(
        self, *, unet: UNet2DModel, scheduler: Any, residual_scale: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.unet = unet
        self.scheduler = scheduler
        if residual_scale is not None and (
            len(residual_scale) != len(self.band_names) or min(residual_scale) <= 0
        ):
            raise ConfigError(
                f"residual_scale needs {len(self.band_names)} positive values, got {list(residual_scale)}"
            )
        #: per-band scale of the UNet output read as a residual; None: the output is the state itself
        self.residual_scale: tuple[float, ...] | None = (
            None if residual_scale is None else tuple(float(v) for v in residual_scale)
        )
        self.register_to_config(residual_scale=None if residual_scale is None else list(self.residual_scale))

    @staticmethod
    @abstractmethod
    def make_scheduler(config: Mapping[str, Any]) -> Any:
        """The scheduler from the ``scheduler`` part of this method's config."""

    @staticmethod
    def make_unet(config: Mapping[str, Any], channels: int) -> UNet2DModel:
        """The UNet from the ``unet`` part of the config: 2 x ``channels`` in, ``channels`` out."""
        return unet_from_config(2 * channels, channels, config)

    @staticmethod
    def residual_scale_from(
        config: Mapping[str, Any], channels: int, stats: Mapping[str, Sequence[float]]
    ) -> tuple[float, ...] | None:
        """The residual scale a fresh model gets: the training residual std, or None for "image"."""
        mode = config["residual_output"]
        if mode not in OUTPUT_PARAMETERISATIONS:
            raise ConfigError(f"residual_output must be one of {OUTPUT_PARAMETERISATIONS}, got {mode!r}")
        if mode == "image":
            return None
        return tuple(stats.get("residual_std") or (1.0,) * channels)

    @classmethod
    def fresh_parts(
        cls, config: Mapping[str, Any], channels: int, stats: Mapping[str, Sequence[float]]
    ) -> dict[str, Any]:
        return {
            "unet": cls.make_unet(config["unet"], channels),
            "scheduler": cls.make_scheduler(config["scheduler"]),
            "residual_scale": cls.residual_scale_from(config, channels, stats),
        }

    def unet_state(self, x_in: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The UNet on ``concat(x_in, y)`` at timesteps ``t``, read as a state in model space."""
        out = self.call(self.unet, torch.cat([x_in, y], dim=1), t)
        if self.residual_scale is None:
            return out
        return y + out * per_band(self.residual_scale, out)

    @property
    def size_multiple(self) -> int:
        return unet_size_multiple(self.unet)
