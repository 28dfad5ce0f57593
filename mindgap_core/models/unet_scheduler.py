"""What SR3, ResShift and SinSR share: a UNet on ``concat(x_t, n(up(LR)))`` and its scheduler.

The saved components are ``unet`` (a diffusers ``UNet2DModel`` with 2C input and C output channels)
and ``scheduler``; subclasses name the scheduler class in ``component_classes`` and say how to make
one from the ``scheduler`` part of their config (:meth:`UNetSchedulerModel.make_scheduler`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from diffusers import UNet2DModel

from mindgap_core.models.base import SRModel, unet_from_config, unet_size_multiple
from mindgap_core.types import CANONICAL_BANDS


class UNetSchedulerModel(SRModel):
    """A model made of a UNet on concat(state, bicubic-upsampled LR) and a scheduler."""

    def __init__(self, unet: UNet2DModel, scheduler: Any, **base: Any) -> None:
        super().__init__(**base)
        self.unet = unet
        self.scheduler = scheduler

    @staticmethod
    @abstractmethod
    def make_scheduler(config: Mapping[str, Any]) -> Any:
        """The scheduler from the ``scheduler`` part of this method's config."""

    @staticmethod
    def make_unet(config: Mapping[str, Any], channels: int) -> UNet2DModel:
        """The UNet from the ``unet`` part of the config: 2 x ``channels`` in, ``channels`` out."""
        return unet_from_config(2 * channels, channels, config)

    @classmethod
    def from_parts(cls, settings: Mapping[str, Any], components: Mapping[str, Any]) -> UNetSchedulerModel:
        return cls(components["unet"], components["scheduler"], **cls.base_kwargs(settings))

    @classmethod
    def build(
        cls, config: Mapping[str, Any] | None, *, scale: int, band_names: Sequence[str] = CANONICAL_BANDS,
        stats: Mapping[str, Sequence[float]] | None = None,
    ) -> UNetSchedulerModel:
        cfg = cls.method_config(config)
        return cls(
            cls.make_unet(cfg["unet"], len(band_names)), cls.make_scheduler(cfg["scheduler"]),
            default_steps=cfg["default_steps"], **cls.build_kwargs(scale, band_names, stats),
        )

    @property
    def size_multiple(self) -> int:
        return unet_size_multiple(self.unet)
