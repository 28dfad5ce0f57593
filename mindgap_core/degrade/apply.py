"""Degrade a :class:`GeoRaster`: HR reflectance -> LR raster on the grid ``scale`` times coarser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from mindgap_core.data.grid import downsample_valid
from mindgap_core.degrade.sensor_config import SimulatorConfig
from mindgap_core.degrade.sensor_params import SimulatorParams, params_for_tile, sample_params
from mindgap_core.degrade.sensor_sim import SIMULATED_LABEL, simulate_cross_sensor
from mindgap_core.degrade.synthetic import (
    SYNTHETIC_DEGRADATIONS,
    NoiseConfig,
    add_noise,
    synthetic_parameters,
)
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io.checks import check_reflectance
from mindgap_core.types import CANONICAL_BANDS, GeoRaster

SIMULATED_METHOD = "simulated_cross_sensor"

#: every method :func:`degrade_raster` accepts
DEGRADATION_METHODS: tuple[str, ...] = (*SYNTHETIC_DEGRADATIONS, SIMULATED_METHOD)


def params_sidecar_path(out: str | Path) -> Path:
    """Where the parameters of the LR raster written to ``out`` go: ``<out>.params.json``."""
    out = Path(out)
    return out.with_name(out.name + ".params.json")


def check_method(method: str) -> None:
    """ConfigError naming the known methods when ``method`` is not one."""
    if method not in DEGRADATION_METHODS:
        raise ConfigError(f"unknown degradation method {method!r}; known: {', '.join(DEGRADATION_METHODS)}")


def _filled(raster: GeoRaster) -> np.ndarray:
    """Float32 copy of the array with invalid pixels (mask False, NaN) set to the band's valid mean, so
    blurs do not spread nodata; the LR mask marks the affected blocks invalid anyway."""
    arr = raster.array.astype(np.float32, copy=True)
    invalid = ~raster.valid[None] | ~np.isfinite(arr)
    if invalid.any():
        for band, bad in zip(arr, invalid, strict=True):
            good = band[~bad]
            band[bad] = good.mean() if good.size else 0.0
    return arr


def _lr_mask(raster: GeoRaster, scale: int) -> np.ndarray | None:
    """An LR pixel is valid only when all its ``scale x scale`` HR pixels are valid (and finite)."""
    valid = raster.valid & np.isfinite(raster.array).all(axis=0)
    if raster.mask is None and valid.all():
        return None
    return downsample_valid(valid, scale)


def degrade_raster(
    raster: GeoRaster,
    method: str,
    scale: int,
    seed: int = 0,
    config: SimulatorConfig | None = None,
    *,
    noise: NoiseConfig | None = None,
    tile_id: str | int | None = None,
    params: SimulatorParams | None = None,
    source: str | Path = "input raster",
    device: str = "cpu",
) -> tuple[GeoRaster, dict[str, Any]]:
    """The LR raster and a JSON-safe record of what was done.

    ``method``: a name in :data:`DEGRADATION_METHODS`. Synthetic methods accept optional ``noise``
    (drawn from ``np.random.default_rng(seed)``). ``"simulated_cross_sensor"`` uses ``config``
    (default: every effect on), drawing its parameters from ``seed`` (and ``tile_id`` when given,
    via :func:`params_for_tile`), or takes explicit ``params``; it keeps only the canonical bands.

    The LR raster has the transform scaled by ``scale`` (same origin), the same CRS, band names, units
    and nodata; its mask is True where every HR pixel of the block is valid. ``source`` names the input
    in error messages.
    """
    check_method(method)
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ConfigError(f"scale must be a positive integer, got {scale!r}")
    if raster.units != "reflectance":
        raise InputError(
            source,
            f"units are {raster.units!r}; degradations need surface reflectance (~0-1) as input "
            "(convert DN first, e.g. with the sensor readers)",
        )
    check_reflectance(raster.array, source, raster.mask)
    if not (raster.valid & np.isfinite(raster.array).all(axis=0)).any():
        raise InputError(source, "has no valid pixel (all nodata or masked); there is nothing to degrade")
    rows, cols = raster.shape
    if rows % scale or cols % scale:
        raise InputError(
            source,
            f"size {rows}x{cols} (rows x cols) is not divisible by scale {scale}; "
            f"crop to {rows - rows % scale}x{cols - cols % scale} or choose another scale",
        )
    simulated = method == SIMULATED_METHOD
    if simulated:
        missing = [b for b in CANONICAL_BANDS if b not in raster.band_names]
        if missing:
            raise InputError(
                source,
                f"{SIMULATED_METHOD} needs the bands {', '.join(CANONICAL_BANDS)}; "
                f"missing {', '.join(missing)} (bands present: {', '.join(raster.band_names)})",
            )
        if noise is not None:
            raise ConfigError(f"{SIMULATED_METHOD} draws its own noise; set it in SimulatorConfig.noise")
        raster = raster.select(CANONICAL_BANDS)
    elif config is not None or params is not None:
        raise ConfigError(f"simulator config/params apply to {SIMULATED_METHOD} only, not to {method!r}")

    hr = _filled(raster)
    record: dict[str, Any] = {
        "method": method,
        "scale": int(scale),
        "seed": int(seed),
        "simulated": simulated,
    }
    if simulated:
        config = config if config is not None else SimulatorConfig()
        if params is None:
            params = (
                params_for_tile(config, seed, tile_id)
                if tile_id is not None
                else sample_params(config, np.random.default_rng(seed))
            )
        lr = simulate_cross_sensor(hr, raster.band_names, scale, params, device=device)
        record.update(
            label=SIMULATED_LABEL,
            tile_id=tile_id,
            effects=list(params.enabled_effects),
            config=config.to_dict(),
            parameters=params.to_dict(),
        )
        description = f"{SIMULATED_LABEL} LR (Sentinel-2-like), x{scale}, seed {seed}"
    else:
        lr = SYNTHETIC_DEGRADATIONS[method](hr, scale, device=device)
        if noise is not None:
            rng = np.random.default_rng(seed)
            lr = add_noise(lr, rng, noise.sigma, noise.signal_dependent, noise.read_sigma)
        record.update(
            label="synthetic",
            parameters=synthetic_parameters(method, scale),
            noise=None if noise is None else noise.to_dict(),
        )
        description = f"synthetic LR ({method}), x{scale}, seed {seed}"

    mask = _lr_mask(raster, scale)
    if mask is not None and raster.nodata is not None:
        lr = np.where(mask[None], lr, np.float32(raster.nodata)).astype(np.float32)
    record["bands"] = list(raster.band_names)
    record["hr_shape"] = [rows, cols]
    record["lr_shape"] = [rows // scale, cols // scale]
    tags = {
        **raster.tags,
        "description": description,
        "mindgap_degradation": method,
        "mindgap_scale": str(scale),
        "mindgap_seed": str(seed),
    }
    out = raster.replace(
        array=lr.astype(np.float32, copy=False),
        transform=raster.transform @ Affine.scale(scale),
        mask=mask,
        tags=tags,
    )
    return out, record
