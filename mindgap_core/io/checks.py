"""Sanity checks on values read from disk: catch DN/reflectance mix-ups with one clear message."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mindgap_core.errors import InputError

#: Surface reflectance outside this range (in more than a few pixels) is not physical.
REFLECTANCE_RANGE: tuple[float, float] = (-0.2, 2.0)
#: A reflectance image whose brightest valid value is below this was almost surely divided twice.
TOO_DARK_MAX: float = 1e-3
#: Share of valid values allowed outside REFLECTANCE_RANGE (specular glints, hot pixels).
_OUTLIER_SHARE: float = 0.01


def check_reflectance(
    array: np.ndarray, source: str | Path, mask: np.ndarray | None = None, *, what: str = "reflectance"
) -> None:
    """Raise :class:`InputError` when ``array`` (bands, rows, cols) does not look like reflectance.

    Only valid pixels count (``mask`` True = valid; non-finite values are ignored). Two mix-ups are
    recognised:

    * more than 1 % of values outside [-0.2, 2.0]: digital numbers (e.g. uint16 DN, reflectance x
      10000) were passed where reflectance was expected;
    * every value tiny (max |value| < 0.001) but not all zero: a file that already held reflectance
      was read as DN and divided by the quantification value (10000) again.

    An image without any valid pixel passes (there is nothing to judge). A raster read by windows
    adds each window to one :class:`ReflectanceStats` and checks once: the same verdict.
    """
    stats = ReflectanceStats()
    stats.add(array, mask)
    stats.check(source, what=what)


@dataclass
class ReflectanceStats:
    """What :func:`check_reflectance` judges, accumulated window by window."""

    count: int = 0  #: valid finite values seen
    outside: int = 0  #: of which outside REFLECTANCE_RANGE
    low: float = math.inf
    high: float = -math.inf
    peak: float = 0.0  #: largest |value|

    def add(self, array: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Add the valid finite values of ``array`` ((bands,) rows, cols; ``mask`` True = valid)."""
        values = np.asarray(array)
        if values.ndim == 2:
            values = values[None]
        if mask is not None:
            values = values[:, np.asarray(mask, dtype=bool)]
        values = values[np.isfinite(values)].astype(np.float64, copy=False)
        if values.size == 0:
            return
        lo, hi = REFLECTANCE_RANGE
        self.count += int(values.size)
        self.outside += int(np.count_nonzero((values < lo) | (values > hi)))
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))
        self.peak = max(self.peak, float(np.abs(values).max()))

    def check(self, source: str | Path, *, what: str = "reflectance") -> None:
        """Raise :class:`InputError` as :func:`check_reflectance` does for all values added."""
        if self.count == 0:
            return
        lo, hi = REFLECTANCE_RANGE
        if self.outside > _OUTLIER_SHARE * self.count:
            raise InputError(
                source,
                f"{what} values range from {self.low:.6g} to {self.high:.6g}, "
                f"{100 * self.outside / self.count:.1f}% outside the physical range [{lo}, {hi}]: this "
                "looks like digital numbers (e.g. uint16 DN = reflectance x 10000) passed where "
                "reflectance was expected; read it with the sensor reader (read_sentinel2/read_planetscope) "
                "or with units='DN'",
            )
        if 0.0 < self.peak < TOO_DARK_MAX:
            raise InputError(
                source,
                f"{what} values are all below {TOO_DARK_MAX} (max {self.peak:.3g}): this looks like a file "
                "that already holds reflectance (floating point, 0-1) being read as DN and divided by "
                "10000 again; read it with read_raster(..., units='reflectance') instead",
            )


def check_digital_numbers(
    array: np.ndarray,
    source: str | Path,
    mask: np.ndarray | None = None,
    *,
    expected: str = "digital numbers",
) -> None:
    """Raise :class:`InputError` when data that should be DN (reflectance x 10000) is reflectance.

    Integer data always passes. Floating-point data passes only when its valid values reach beyond
    [-2, 2] (DN stored as floats); a float file whose values all lie within [-2, 2] already holds
    reflectance and must not be scaled again.
    """
    values = np.asarray(array)
    if np.issubdtype(values.dtype, np.integer):
        return
    if mask is not None:
        values = values[..., np.asarray(mask, dtype=bool)]
    values = values[np.isfinite(values)]
    if values.size and float(np.abs(values).max()) <= REFLECTANCE_RANGE[1]:
        raise InputError(
            source,
            f"holds floating-point values between {values.min():.4g} and {values.max():.4g}, i.e. "
            f"reflectance already, where {expected} (reflectance x 10000) were expected; read it "
            "with read_raster(..., units='reflectance') instead of scaling it again",
        )
