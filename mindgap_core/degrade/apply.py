"""Degrade HR reflectance to an LR raster on the grid ``scale`` times coarser, in memory or by windows.

Synthetic methods run window by window (:func:`degrade_raster` on a raster in memory,
:func:`degrade_file` on a file of any size with bounded memory), in two passes:

1. a scan of the HR: the reflectance check (:class:`~mindgap_core.io.checks.ReflectanceStats`), the
   count of valid pixels and each band's mean over its valid pixels (float64 sums), which fills
   invalid pixels so blurs do not spread nodata;
2. per LR window, the HR window plus a halo of :func:`~mindgap_core.degrade.synthetic.context_hr`
   pixels (rounded up to whole LR pixels; cut at the image edge, where the operators' own edge
   handling applies as in the whole image) is degraded and the halo's LR pixels dropped; noise comes
   from the LR grid position (:func:`~mindgap_core.degrade.synthetic.unit_noise`).

So the result does not depend on the window size (tested bit for bit against one window holding the
whole image). The simulated cross-sensor method is whole-image by construction (image-wide fields,
Fourier shift): :func:`degrade_file` reads the raster whole for it, after checking it fits in memory
(:func:`~mindgap_core.io.memory.check_fits`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from mindgap_core.data.grid import downsample_valid
from mindgap_core.degrade.sensor_config import SimulatorConfig
from mindgap_core.degrade.sensor_params import SimulatorParams, params_for_tile, sample_params
from mindgap_core.degrade.sensor_sim import SIMULATED_LABEL, simulate_cross_sensor
from mindgap_core.degrade.synthetic import (
    NOISE_BLOCK,
    SYNTHETIC_DEGRADATIONS,
    NoiseConfig,
    add_noise,
    context_hr,
    synthetic_parameters,
)
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io.checks import ReflectanceStats
from mindgap_core.types import CANONICAL_BANDS, GeoRaster, ProgressFn, no_progress

SIMULATED_METHOD = "simulated_cross_sensor"

#: every method :func:`degrade_raster` accepts
DEGRADATION_METHODS: tuple[str, ...] = (*SYNTHETIC_DEGRADATIONS, SIMULATED_METHOD)
#: HR pixels per side of the windows a synthetic degradation reads at a time (plus halos): about
#: 16 MiB per float32 4-band window, a few copies of which make the working memory
WINDOW_HR: int = 1024
#: peak bytes of the simulated cross-sensor degradation per HR value (pixel x band), measured by
#: benchmarks/memory.py (160 in numpy allocations: float64 temporaries, the Fourier shift of the
#: mirrored image, the warp's coordinate grids; plus torch's blur buffers), rounded up
SIMULATED_BYTES_PER_VALUE: int = 200


def params_sidecar_path(out: str | Path) -> Path:
    """Where the parameters of the LR raster written to ``out`` go: ``<out>.params.json``."""
    out = Path(out)
    return out.with_name(out.name + ".params.json")


def check_method(method: str) -> None:
    """ConfigError naming the known methods when ``method`` is not one."""
    if method not in DEGRADATION_METHODS:
        raise ConfigError(f"unknown degradation method {method!r}; known: {', '.join(DEGRADATION_METHODS)}")


class _Source:
    """HR pixels by window: float32 reflectance (bands, h, w) and validity (h, w) (mask & finite)."""

    rows: int
    cols: int
    band_names: tuple[str, ...]
    label: str | Path

    def read(self, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class _RasterSource(_Source):
    def __init__(self, raster: GeoRaster, label: str | Path) -> None:
        self.raster, self.label = raster, label
        self.rows, self.cols = raster.shape
        self.band_names = raster.band_names

    def read(self, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        array = self.raster.array[:, r0:r1, c0:c1].astype(np.float32, copy=False)
        return array, self.raster.valid[r0:r1, c0:c1] & np.isfinite(array).all(axis=0)


class _FileSource(_Source):
    def __init__(self, reader: Any, dn_scale: float | None) -> None:
        self.reader, self.label, self.dn_scale = reader, reader.label, dn_scale
        self.rows, self.cols = reader.info.shape
        self.band_names = reader.info.band_names

    def read(self, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        from rasterio.windows import Window

        raw, valid = self.reader.read(Window(c0, r0, c1 - c0, r1 - r0))
        array = raw.astype(np.float32)
        if self.dn_scale is not None:
            array = array * np.float32(self.dn_scale)
        return array, valid & np.isfinite(array).all(axis=0)


@dataclass(frozen=True)
class _Scan:
    """What pass 1 learns about the HR raster."""

    fill: np.ndarray  #: float32 per band: the band's mean over its valid, finite pixels (0 if none)
    all_valid: bool  #: no invalid or non-finite pixel anywhere


def _hr_windows(rows: int, cols: int, size: int) -> Iterator[tuple[int, int, int, int]]:
    for r in range(0, rows, size):
        for c in range(0, cols, size):
            yield r, min(r + size, rows), c, min(c + size, cols)


def _scan(source: _Source, window_hr: int, tick: Callable[[], None]) -> _Scan:
    """Pass 1: reflectance check, valid pixels, per-band fill values; errors name the source."""
    stats = ReflectanceStats()
    bands = len(source.band_names)
    sums, counts = np.zeros(bands), np.zeros(bands, dtype=np.int64)
    all_valid, any_valid = True, False
    for r0, r1, c0, c1 in _hr_windows(source.rows, source.cols, window_hr):
        array, valid = source.read(r0, r1, c0, c1)
        stats.add(array, valid)
        for b in range(bands):
            good = valid & np.isfinite(array[b])
            sums[b] += float(array[b][good].sum(dtype=np.float64))
            counts[b] += int(good.sum())
        all_valid &= bool(valid.all())
        any_valid |= bool(valid.any())
        tick()
    stats.check(source.label)
    if not any_valid:
        raise InputError(source.label,
                         "has no valid pixel (all nodata or masked); there is nothing to degrade")
    fill = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0).astype(np.float32)
    return _Scan(fill=fill, all_valid=all_valid)


@dataclass(frozen=True)
class _Synthetic:
    """A synthetic degradation applied to LR windows (pass 2)."""

    method: str
    scale: int
    seed: int
    noise: NoiseConfig | None
    fill: np.ndarray
    device: str

    @property
    def halo(self) -> int:
        """HR pixels of context per side: :func:`context_hr` rounded up to whole LR pixels."""
        return math.ceil(context_hr(self.method, self.scale) / self.scale) * self.scale

    def window(self, source: _Source, lr: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(LR values (bands, h, w), LR validity (h, w)) of the LR window ``lr`` = (r0, r1, c0, c1)."""
        s, halo = self.scale, self.halo
        r0, r1, c0, c1 = lr
        top, left = max(r0 * s - halo, 0), max(c0 * s - halo, 0)
        bottom, right = min(r1 * s + halo, source.rows), min(c1 * s + halo, source.cols)
        array, valid = source.read(top, bottom, left, right)
        bad = ~valid[None] | ~np.isfinite(array)
        filled = np.where(bad, self.fill[:, None, None], array).astype(np.float32)
        out = SYNTHETIC_DEGRADATIONS[self.method](filled, s, device=self.device)
        dr, dc = r0 - top // s, c0 - left // s
        values = out[:, dr : dr + r1 - r0, dc : dc + c1 - c0]
        if self.noise is not None:
            n = self.noise
            values = add_noise(values, self.seed, n.sigma, n.signal_dependent, n.read_sigma, origin=(r0, c0))
        inner = valid[r0 * s - top : r1 * s - top, c0 * s - left : c1 * s - left]
        return np.ascontiguousarray(values, dtype=np.float32), downsample_valid(inner, s)


def _lr_windows(source: _Source, scale: int, window_hr: int) -> list[tuple[int, int, int, int]]:
    size = max(1, window_hr // scale)
    return list(_hr_windows(source.rows // scale, source.cols // scale, size))


def _check_request(
    method: str, scale: int, units: str, shape: tuple[int, int], band_names: tuple[str, ...],
    source: str | Path, *, noise: NoiseConfig | None, config: SimulatorConfig | None,
    params: SimulatorParams | None,
) -> None:  # fmt: skip
    """Every check that needs no pixel: method, scale, units, size, bands, option combinations."""
    check_method(method)
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ConfigError(f"scale must be a positive integer, got {scale!r}")
    if units != "reflectance":
        raise InputError(
            source,
            f"units are {units!r}; degradations need surface reflectance (~0-1) as input "
            "(convert DN first, e.g. with the sensor readers)",
        )
    rows, cols = shape
    if rows % scale or cols % scale:
        raise InputError(
            source,
            f"size {rows}x{cols} (rows x cols) is not divisible by scale {scale}; "
            f"crop to {rows - rows % scale}x{cols - cols % scale} or choose another scale",
        )
    if method == SIMULATED_METHOD:
        missing = [b for b in CANONICAL_BANDS if b not in band_names]
        if missing:
            raise InputError(
                source,
                f"{SIMULATED_METHOD} needs the bands {', '.join(CANONICAL_BANDS)}; "
                f"missing {', '.join(missing)} (bands present: {', '.join(band_names)})",
            )
        if noise is not None:
            raise ConfigError(f"{SIMULATED_METHOD} draws its own noise; set it in SimulatorConfig.noise")
    elif config is not None or params is not None:
        raise ConfigError(f"simulator config/params apply to {SIMULATED_METHOD} only, not to {method!r}")


def _record(method: str, scale: int, seed: int, band_names: tuple[str, ...], rows: int, cols: int,
            **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "method": method, "scale": int(scale), "seed": int(seed), "simulated": method == SIMULATED_METHOD,
        **extra, "bands": list(band_names), "hr_shape": [rows, cols],
        "lr_shape": [rows // scale, cols // scale],
    }  # fmt: skip


def _synthetic_record(method: str, scale: int, noise: NoiseConfig | None) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "label": "synthetic",
        "parameters": synthetic_parameters(method, scale),
        "noise": None if noise is None else noise.to_dict(),
    }
    if noise is not None:
        extra["noise_stream"] = (f"numpy default_rng([seed, band, block_row, block_col]) per "
                                 f"{NOISE_BLOCK} x {NOISE_BLOCK} block of the LR grid")
    return extra


def _lr_tags(tags: Any, method: str, scale: int, seed: int) -> dict[str, str]:
    if method == SIMULATED_METHOD:
        description = f"{SIMULATED_LABEL} LR (Sentinel-2-like), x{scale}, seed {seed}"
    else:
        description = f"synthetic LR ({method}), x{scale}, seed {seed}"
    return {
        **tags,
        "description": description,
        "mindgap_degradation": method,
        "mindgap_scale": str(scale),
        "mindgap_seed": str(seed),
    }


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
    window_hr: int = WINDOW_HR,
) -> tuple[GeoRaster, dict[str, Any]]:
    """The LR raster and a JSON-safe record of what was done.

    ``method``: a name in :data:`DEGRADATION_METHODS`. Synthetic methods accept optional ``noise``
    (from ``seed``, :func:`~mindgap_core.degrade.synthetic.unit_noise`) and run by windows of
    ``window_hr`` HR pixels (the module docstring; the result does not depend on it).
    ``"simulated_cross_sensor"`` uses ``config`` (default: every effect on), drawing its parameters from
    ``seed`` (and ``tile_id`` when given, via :func:`params_for_tile`), or takes explicit ``params``;
    it keeps only the canonical bands.

    The LR raster has the transform scaled by ``scale`` (same origin), the same CRS, band names, units
    and nodata; its mask is True where every HR pixel of the block is valid (None when all are).
    ``source`` names the input in error messages.
    """
    _check_request(method, scale, raster.units, raster.shape, raster.band_names, source,
                   noise=noise, config=config, params=params)
    rows, cols = raster.shape
    if method == SIMULATED_METHOD:
        raster = raster.select(CANONICAL_BANDS)
    scan = _scan(_RasterSource(raster, source), window_hr, lambda: None)
    if method == SIMULATED_METHOD:
        config = config if config is not None else SimulatorConfig()
        if params is None:
            params = (
                params_for_tile(config, seed, tile_id)
                if tile_id is not None
                else sample_params(config, np.random.default_rng(seed))
            )
        hr = np.where(raster.valid[None] & np.isfinite(raster.array), raster.array, scan.fill[:, None, None])
        lr = simulate_cross_sensor(hr.astype(np.float32), raster.band_names, scale, params, device=device)
        valid = raster.valid & np.isfinite(raster.array).all(axis=0)
        mask = None if scan.all_valid else downsample_valid(valid, scale)
        record = _record(method, scale, seed, raster.band_names, rows, cols, label=SIMULATED_LABEL,
                         tile_id=tile_id, effects=list(params.enabled_effects), config=config.to_dict(),
                         parameters=params.to_dict())
    else:
        op = _Synthetic(method, int(scale), int(seed), noise, scan.fill, device)
        src = _RasterSource(raster, source)
        lr = np.empty((raster.array.shape[0], rows // scale, cols // scale), dtype=np.float32)
        mask = None if scan.all_valid else np.empty((rows // scale, cols // scale), dtype=bool)
        for r0, r1, c0, c1 in _lr_windows(src, scale, window_hr):
            lr[:, r0:r1, c0:c1], valid_lr = op.window(src, (r0, r1, c0, c1))
            if mask is not None:
                mask[r0:r1, c0:c1] = valid_lr
        record = _record(method, scale, seed, raster.band_names, rows, cols,
                         **_synthetic_record(method, scale, noise))
    if mask is not None and raster.nodata is not None:
        lr = np.where(mask[None], lr, np.float32(raster.nodata)).astype(np.float32)
    out = raster.replace(
        array=lr.astype(np.float32, copy=False),
        transform=raster.transform @ Affine.scale(scale),
        mask=mask,
        tags=_lr_tags(raster.tags, method, scale, seed),
    )
    return out, record


def degrade_file(
    hr_path: str | Path,
    out_path: str | Path,
    method: str,
    scale: int,
    seed: int = 0,
    config: SimulatorConfig | None = None,
    *,
    noise: NoiseConfig | None = None,
    tile_id: str | int | None = None,
    dn_scale: float | None = None,
    device: str = "cpu",
    window_hr: int = WINDOW_HR,
    on_progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """Degrade the HR raster file ``hr_path`` (any size) into the COG ``out_path``; returns the record.

    Same result as :func:`degrade_raster` on the whole raster. Synthetic methods read and write by
    windows (memory: a few windows plus GDAL's capped block cache, whatever the raster's size); the
    simulated method reads the raster whole and refuses, before reading, when that would not fit the
    memory budget (:func:`~mindgap_core.io.memory.check_fits`). An integer (DN) raster needs
    ``dn_scale`` (reflectance = DN x ``dn_scale``). Every input problem raises before ``out_path``
    exists; the COG appears atomically. ``on_progress(done, total)`` counts windows of both passes.
    """
    from mindgap_core.io.geotiff import WindowReader, write_cog
    from mindgap_core.io.memory import check_fits
    from mindgap_core.io.stream import CogWriter

    with WindowReader.of(hr_path) as reader:
        info = reader.info
        units = info.units
        if dn_scale is not None:
            if not dn_scale > 0:
                raise ConfigError(f"--dn-scale must be positive, got {dn_scale}")
            if units != "DN":
                raise InputError(hr_path, f"--dn-scale given but the raster is already in {units!r}")
            units = "reflectance"
        elif units == "DN":
            raise InputError(
                hr_path, "units are 'DN'; degradations need reflectance: pass --dn-scale FACTOR (reflectance "
                "= DN x FACTOR) or convert it with the sensor readers first",
            )
        _check_request(method, scale, units, info.shape, info.band_names, hr_path,
                       noise=noise, config=config, params=None)
        rows, cols = info.shape
        lr_transform = info.transform @ Affine.scale(scale)
        tags = _lr_tags(info.tags, method, scale, seed)

        if method == SIMULATED_METHOD:
            values = rows * cols * len(CANONICAL_BANDS)
            check_fits(hr_path, values * SIMULATED_BYTES_PER_VALUE,
                       f"{SIMULATED_METHOD} works on the whole image; {rows} x {cols} pixels",
                       "cut the image into tiles first (the simulator draws parameters per tile: --tile-id)")
            from mindgap_core.io.geotiff import read_raster

            hr = read_raster(hr_path)
            if dn_scale is not None:
                hr = hr.replace(array=hr.array.astype(np.float32) * np.float32(dn_scale), units="reflectance")
            on_progress(0, 1)
            lr, record = degrade_raster(hr, method, scale, seed, config, tile_id=tile_id, source=hr_path,
                                        device=device)
            write_cog(lr, out_path)
            on_progress(1, 1)
            return record

        source = _FileSource(reader, dn_scale)
        windows = _lr_windows(source, scale, window_hr)
        total = len(list(_hr_windows(rows, cols, window_hr))) + len(windows)
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            on_progress(done, total)

        on_progress(0, total)
        scan = _scan(source, window_hr, tick)
        op = _Synthetic(method, int(scale), int(seed), noise, scan.fill, device)
        nodata = info.nodata
        with CogWriter(out_path, rows=rows // scale, cols=cols // scale, count=info.count, dtype="float32",
                       crs=info.crs, transform=lr_transform, nodata=nodata,
                       mask=not scan.all_valid and nodata is None) as writer:
            from rasterio.windows import Window

            for r0, r1, c0, c1 in windows:
                values, valid = op.window(source, (r0, r1, c0, c1))
                if not scan.all_valid and nodata is not None:
                    values = np.where(valid[None], values, np.float32(nodata)).astype(np.float32)
                writer.write(values, Window(c0, r0, c1 - c0, r1 - r0), valid)
                tick()
            writer.finish(info.band_names, tags, units="reflectance", acquired=info.acquired)
        return _record(method, scale, seed, info.band_names, rows, cols,
                       **_synthetic_record(method, scale, noise))
