"""Display renderings of reflectance arrays (RGB and false colour) with a documented stretch.

Stretch: per band, the 2nd and 98th percentiles of the valid pixels map to 0 and 255 (linear, clipped).
The same limits can be passed explicitly so that several images (LR, SR, HR of one tile) share one
stretch and stay comparable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: rendering name -> band names shown as (R, G, B)
RENDERINGS: dict[str, tuple[str, str, str]] = {
    "true_colour": ("red", "green", "blue"),
    "false_colour_nir": ("nir", "red", "green"),
}


def stretch_limits(
    array: np.ndarray, band_names: Sequence[str], rendering: str = "true_colour",
    percentiles: tuple[float, float] = (2.0, 98.0), valid: np.ndarray | None = None,
) -> np.ndarray:
    """(3, 2) array of (low, high) per displayed band from percentiles of valid pixels."""
    limits = np.zeros((3, 2), dtype=np.float64)
    for i, name in enumerate(RENDERINGS[rendering]):
        band = array[list(band_names).index(name)]
        values = band[valid] if valid is not None else band.ravel()
        values = values[np.isfinite(values)]
        if values.size == 0:
            limits[i] = (0.0, 1.0)
            continue
        low, high = np.percentile(values, percentiles)
        limits[i] = (low, high if high > low else low + 1e-6)
    return limits


def render(
    array: np.ndarray, band_names: Sequence[str], rendering: str = "true_colour",
    limits: np.ndarray | None = None, valid: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 (rows, cols, 3) image of a (bands, rows, cols) reflectance array."""
    if rendering not in RENDERINGS:
        raise KeyError(f"unknown rendering {rendering!r}; known: {sorted(RENDERINGS)}")
    if limits is None:
        limits = stretch_limits(array, band_names, rendering, valid=valid)
    idx = [list(band_names).index(name) for name in RENDERINGS[rendering]]
    chosen = array[idx].astype(np.float64)
    low = limits[:, 0][:, None, None]
    high = limits[:, 1][:, None, None]
    scaled = np.clip((chosen - low) / (high - low), 0.0, 1.0)
    image = np.nan_to_num(scaled * 255.0).round().astype(np.uint8).transpose(1, 2, 0)
    if valid is not None:
        image = np.where(valid[..., None], image, 0).astype(np.uint8)
    return image
