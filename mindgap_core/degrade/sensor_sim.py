"""Simulated cross-sensor LR: a PlanetScope-like HR image turned into a Sentinel-2-like LR image.

Demo only: no real PlanetScope data can ship, so the "real" domain is *simulated* from the real HR
image. Every output of this module is labelled "simulated cross-sensor". Each physical difference
between a real S2 acquisition and a degraded PlanetScope one is a switchable effect (:data:`EFFECTS`),
applied in this order (the order of a real acquisition chain):

1. ``temporal``: the scene changed between the two acquisitions: vegetation phenology (NIR and red scaled
   in vegetated pixels, weighted by an NDVI ramp) and a few changed objects (rectangles or ellipses
   with another surface's reflectance: roofs, asphalt, soil, water, shadow, vegetation).
2. ``spectral``: S2 band responses differ from PlanetScope's: a near-identity 4x4 band-mixing matrix
   (from the overlap of Gaussian spectral responses, jittered) and per-band gains/offsets.
3. ``radiometric``: atmosphere and processing: global gain and offset plus a smooth additive haze
   field, strongest in blue (Angstrom law ``(λ_blue/λ)^α``).
4. ``misregistration``: a global sub-pixel shift (dx, dy) in LR pixels plus a small zero-mean smooth
   warp, both applied on the HR grid (warp: cubic splines; shift: exact Fourier shift).
   **Sign convention**: positive ``dx`` moves the content right (east), positive ``dy`` moves it down
   (south, increasing row): ``out(r, c) = in(r - dy, c - dx)``.
5. ``mtf``: Gaussian PSF with MTF at the LR Nyquist frequency drawn in [0.25, 0.35] (S2 MSI's range).
6. area downsampling (block mean over ``scale x scale`` HR pixels) — always applied.
7. ``noise``: signal-dependent Gaussian noise, std = sqrt(read² + shot² · x), then quantisation: a
   ``bit_depth``-bit ADC over [0, saturation] and storage as DN = round(reflectance · 10000) (S2 L2A).

With every effect disabled the simulator is *exactly*
:func:`~mindgap_core.data.grid.downsample_area` (same function, same input; no other arithmetic
touches the pixels).

Effects and their strengths: :mod:`~mindgap_core.degrade.sensor_config` (:class:`SimulatorConfig`);
per-tile values: :mod:`~mindgap_core.degrade.sensor_params` (:class:`SimulatorParams`,
:func:`sample_params`, :func:`params_for_tile`); the package :mod:`mindgap_core.degrade` exports
the ones callers need.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy import ndimage

from mindgap_core.data.grid import downsample_area
from mindgap_core.degrade.sensor_params import (
    SENTINEL2_SRF,
    MisregistrationParams,
    MTFParams,
    NoiseParams,
    RadiometricParams,
    SimulatorParams,
    SpectralParams,
    TemporalParams,
    Wave,
)
from mindgap_core.degrade.synthetic import Device, check_downsample_input, gaussian_blur, sigma_for_mtf
from mindgap_core.errors import ConfigError
from mindgap_core.types import CANONICAL_BANDS

__all__ = ["SIMULATED_LABEL", "displacement_field", "fourier_shift", "simulate_cross_sensor"]

SIMULATED_LABEL = "simulated cross-sensor"


def _grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (u across columns, v across rows) in [0, 1]."""
    u = (np.arange(cols, dtype=np.float64) + 0.5) / cols
    v = (np.arange(rows, dtype=np.float64) + 0.5) / rows
    return np.meshgrid(u, v)


def _wave_field(waves: tuple[Wave, ...], rows: int, cols: int) -> np.ndarray:
    """Sum of ``waves`` normalised by the sum of |weights| (values in [-1, 1]), float64 (rows, cols)."""
    u, v = _grid(rows, cols)
    total = np.zeros((rows, cols))
    for w in waves:
        total += w.weight * np.cos(2 * math.pi * (w.fx * u + w.fy * v) + w.phase)
    norm = sum(abs(w.weight) for w in waves)
    return total / norm if norm > 0 else total


def _band_order(band_names: tuple[str, ...]) -> list[int]:
    """Canonical index of each band of the array."""
    if sorted(band_names) != sorted(CANONICAL_BANDS):
        raise ConfigError(
            f"the cross-sensor simulator needs exactly the bands {CANONICAL_BANDS} (any order), "
            f"got {band_names}"
        )
    return [CANONICAL_BANDS.index(n) for n in band_names]


def _apply_temporal(x: np.ndarray, p: TemporalParams, order: list[int]) -> np.ndarray:
    red, nir = order.index(2), order.index(3)
    out = x.copy()
    denom = x[nir] + x[red]
    usable = np.abs(denom) > 1e-6
    ndvi = np.where(usable, (x[nir] - x[red]) / np.where(usable, denom, 1.0), 0.0)
    weight = np.clip((ndvi - p.ndvi_low) / (p.ndvi_high - p.ndvi_low), 0.0, 1.0)
    out[nir] = x[nir] * (1 + p.greening * weight)
    out[red] = x[red] * (1 - p.greening * weight)
    u, v = _grid(*x.shape[1:])
    for obj in p.objects:
        du, dv = (u - obj.x) / (obj.width / 2), (v - obj.y) / (obj.height / 2)
        inside = (du**2 + dv**2 <= 1) if obj.shape == "ellipse" else (np.abs(du) <= 1) & (np.abs(dv) <= 1)
        for band, canonical in enumerate(order):
            out[band][inside] = obj.reflectance[canonical]
    return out.astype(np.float32)


def _apply_spectral(x: np.ndarray, p: SpectralParams, order: list[int]) -> np.ndarray:
    matrix = np.asarray(p.matrix, dtype=np.float64)[np.ix_(order, order)]
    gains = np.asarray(p.gains)[order][:, None, None]
    offsets = np.asarray(p.offsets)[order][:, None, None]
    mixed = np.tensordot(matrix, x.astype(np.float64), axes=1)
    return (gains * mixed + offsets).astype(np.float32)


def _apply_radiometric(x: np.ndarray, p: RadiometricParams, order: list[int]) -> np.ndarray:
    shape = 0.5 + 0.5 * _wave_field(p.haze_waves, *x.shape[1:])
    lambda_blue = SENTINEL2_SRF["blue"][0]
    factors = [(lambda_blue / SENTINEL2_SRF[CANONICAL_BANDS[c]][0]) ** p.angstrom_exponent for c in order]
    haze = p.haze * np.asarray(factors)[:, None, None] * shape[None]
    return (p.gain * x.astype(np.float64) + p.offset + haze).astype(np.float32)


def displacement_field(p: MisregistrationParams, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) per pixel in LR pixels: the global shift plus the zero-mean warp (mean = (p.dx, p.dy))."""
    fields = []
    for shift, waves in ((p.dx, p.warp_x), (p.dy, p.warp_y)):
        warp = _wave_field(waves, rows, cols)
        fields.append(shift + p.warp_amplitude * (warp - warp.mean()))
    return fields[0], fields[1]


def fourier_shift(x: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``out(r, c) = x(r - dy, c - dx)`` for (bands, rows, cols), shifts in pixels: the exact
    band-limited (sinc) shift, applied to the image's mirror-symmetric extension (2 rows x 2 cols, a
    continuous periodic signal) so that nothing wraps around from the opposite edge."""
    bands, rows, cols = x.shape
    ext = np.concatenate([x, x[:, ::-1]], axis=1).astype(np.float64)
    ext = np.concatenate([ext, ext[:, :, ::-1]], axis=2)
    fy = np.fft.fftfreq(2 * rows)[:, None]
    fx = np.fft.rfftfreq(2 * cols)[None, :]
    spectrum = np.fft.rfft2(ext) * np.exp(-2j * math.pi * (fy * dy + fx * dx))
    return np.fft.irfft2(spectrum, s=(2 * rows, 2 * cols))[:, :rows, :cols].astype(np.float32)


def _apply_misregistration(x: np.ndarray, p: MisregistrationParams, scale: int) -> np.ndarray:
    """The zero-mean warp (cubic-spline resampling, scipy ``map_coordinates``, mirrored edges), then
    the global shift (:func:`fourier_shift`). The shift is applied in the Fourier domain because
    interpolating kernels distort sub-pixel shifts (torch's bicubic ``grid_sample`` moves a blob's
    centroid up to 0.05 px too far; on this sharp imagery cubic splines put phase-correlation
    estimates up to 0.1 HR px off, while the Fourier shift is recovered exactly)."""
    bands, rows, cols = x.shape
    if p.warp_amplitude > 0:
        dx_lr, dy_lr = displacement_field(replace(p, dx=0.0, dy=0.0), rows, cols)
        r, c = np.meshgrid(np.arange(rows, dtype=float), np.arange(cols, dtype=float), indexing="ij")
        coords = np.stack([r - dy_lr * scale, c - dx_lr * scale])  # out(r, c) = in(r - dy, c - dx)
        x = np.stack(
            [ndimage.map_coordinates(band.astype(np.float64), coords, order=3, mode="reflect") for band in x]
        ).astype(np.float32)
    return fourier_shift(x, p.dy * scale, p.dx * scale)


def _apply_mtf(x: np.ndarray, p: MTFParams, scale: int, device: Device) -> np.ndarray:
    return gaussian_blur(x, sigma_for_mtf(p.mtf_nyquist, scale), device=device)


def _apply_noise(x: np.ndarray, p: NoiseParams, order: list[int]) -> np.ndarray:
    unit = np.random.default_rng(p.seed).standard_normal(x.shape)[order]  # drawn in canonical order
    signal = np.maximum(x.astype(np.float64), 0.0)
    std = np.sqrt(p.read_sigma**2 + p.shot_sigma**2 * signal)
    out = x.astype(np.float64) + unit * std
    if p.quantize:
        levels = 2**p.bit_depth - 1
        sat = p.saturation_reflectance
        out = np.round(np.clip(out, 0.0, sat) / sat * levels) * (sat / levels)  # sensor ADC
        out = np.round(out * p.quantification_value) / p.quantification_value  # L2A DN / 10000
    return out.astype(np.float32)


def simulate_cross_sensor(
    hr: np.ndarray,
    band_names: tuple[str, ...],
    scale: int,
    params: SimulatorParams,
    *,
    device: Device = "cpu",
) -> np.ndarray:
    """Simulated Sentinel-2-like LR ``(4, H/scale, W/scale)`` from HR reflectance ``(4, H, W)``.

    ``band_names`` names the array's bands (the canonical four, any order; output keeps that order).
    Deterministic: the same ``params`` give the same output. All effects off = area downsampling.
    """
    x = check_downsample_input(hr, scale)
    order = _band_order(tuple(band_names))
    if params.temporal is not None:
        x = _apply_temporal(x, params.temporal, order)
    if params.spectral is not None:
        x = _apply_spectral(x, params.spectral, order)
    if params.radiometric is not None:
        x = _apply_radiometric(x, params.radiometric, order)
    if params.misregistration is not None:
        x = _apply_misregistration(x, params.misregistration, scale)
    if params.mtf is not None:
        x = _apply_mtf(x, params.mtf, scale, device)
    lr = downsample_area(x, scale)
    if params.noise is not None:
        lr = _apply_noise(lr, params.noise, order)
    return lr
