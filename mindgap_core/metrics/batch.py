"""What a scoring function sees and returns: one batch of tiles, and its values.

:class:`ScoreBatch` carries the SR, HR and LR tensors of a batch (already on the engine's device and
dtype), the SR after the optional histogram matching, the validity mask, the band names, the scale,
the :class:`ScoreOptions` and the loaded networks. :meth:`ScoreBatch.shared` computes a value once per
batch for every metric that needs it (the three correctness scores share one computation).
A scoring function returns :class:`MetricValues`: one value per tile (``overall``, the ``"all"`` band
row), optionally one per tile and band, and the options it used (recorded with every row).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from mindgap_core.errors import ConfigError
from mindgap_core.metrics.opensr import OpensrOptions
from mindgap_core.metrics.registry import RGB_BANDS

HIST_MATCH_CHOICES = ("none", "hr", "lr")


@dataclass(frozen=True)
class ScoreOptions:
    """How scores are computed; recorded with each row."""

    data_range: float = 1.0
    hist_match: str = "none"
    scale: int | None = None
    cpsnr_max_shift: int = 3
    opensr: OpensrOptions = field(default_factory=OpensrOptions)

    def __post_init__(self) -> None:
        if self.hist_match not in HIST_MATCH_CHOICES:
            raise ConfigError(f"hist_match must be one of {HIST_MATCH_CHOICES}, got {self.hist_match!r}")
        if not self.data_range > 0:
            raise ConfigError(f"data_range must be positive, got {self.data_range}")
        if self.scale is not None and self.scale < 1:
            raise ConfigError(f"scale must be a positive integer, got {self.scale}")
        if self.cpsnr_max_shift < 0:
            raise ConfigError(f"cpsnr_max_shift must be >= 0, got {self.cpsnr_max_shift}")


@dataclass(frozen=True)
class MetricValues:
    """A metric's values for a batch: ``overall`` (N,), ``per_band`` (N, C) or None, and ``options``
    (what the scoring function did, e.g. ``{"hist_match": "none"}``; merged into every row's options)."""

    overall: torch.Tensor
    per_band: torch.Tensor | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ScoreBatch:
    """One batch of N tiles: SR/HR (N, C, H, W), LR (N, C, h, w) or None, valid (N, H, W) or None,
    the model's samples (N, S, C, H, W) or None (the SR is their mean)."""

    sr: torch.Tensor
    sr_matched: torch.Tensor
    hr: torch.Tensor
    lr: torch.Tensor | None
    valid: torch.Tensor | None
    band_names: tuple[str, ...]
    scale: int | None
    options: ScoreOptions
    models: Mapping[str, Any]
    net_batch: int
    samples: torch.Tensor | None = None
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def rgb_idx(self) -> list[int]:
        """Indices of red, green, blue in ``band_names`` ([] when one is missing)."""
        if not set(RGB_BANDS) <= set(self.band_names):
            return []
        return [self.band_names.index(b) for b in RGB_BANDS]

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per batch under ``key``; later calls return the same value."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    def chunked(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                y: torch.Tensor) -> torch.Tensor:
        """``fn`` over slices of ``net_batch`` tiles (networks), concatenated."""
        n, step = x.shape[0], self.net_batch
        return torch.cat([fn(x[i:i + step], y[i:i + step]) for i in range(0, n, step)])
