"""Scores of rasters larger than memory: SR vs HR files read window by window, bounded memory.

What each metric becomes (``MetricRow.options["windowed"]`` says it on every row):

* **exact** (the whole-image formula of :mod:`~mindgap_core.metrics.pixel`, from float64 sums
  accumulated over windows; equal to the in-memory engine up to float64 summation order):
  ``psnr`` (per-band sums of squared errors and counts; "all" from the band-mean MSE), ``sam`` (sum
  and count of per-pixel angles), ``ergas`` (squared errors and HR sums per band), ``cpsnr`` (for
  each of the (2k+1)² shifts, the count, sum and sum of squares of the bias-carrying difference over
  the central crop, read with a halo of k pixels);
* **exact up to float32 rounding**: ``ssim``: the per-pixel SSIM map of each window is computed on
  the window plus a halo of 5 pixels (the Gaussian window's radius), so every pixel sees the same
  neighbourhood as in the whole image (the image's own edges keep their symmetric padding); the
  mean excludes the same 5-pixel border and invalid pixels;
* **per window**: ``lpips`` and ``lpips_sat`` are network scores of a whole input; each window
  gets its own score and the result is their mean weighted by window area (windows at the image
  edge are widened to :data:`MIN_NET_WINDOW` pixels toward the interior, weighted by their own
  area). This is a different number from the score of the whole image (the receptive field stops
  at window edges) and depends on ``window``, recorded in the options;
* **refused** (:class:`~mindgap_core.errors.ConfigError`): histogram matching and the opensr-test
  scores (consistency, correctness), which need whole-image histograms or registrations: score
  tiles of the scene instead.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.metrics.lpips_sat import LPIPSSat, load_backbone, lpips_sat_score
from mindgap_core.metrics.lpips_std import LPIPSModel, LPIPSUnavailable, load_lpips, lpips_score
from mindgap_core.metrics.pixel import psnr_from_mse, sam_map
from mindgap_core.metrics.registry import DEFAULT_METRICS, RGB_BANDS, get_metric
from mindgap_core.metrics.ssim import SIGMA, TRUNCATE, ssim_map
from mindgap_core.types import MetricRow, ProgressFn, no_progress

if TYPE_CHECKING:
    from rasterio.windows import Window

    from mindgap_core.io.geotiff import WindowReader

#: metrics this module scores (the others need the whole image)
WINDOWED_METRICS: tuple[str, ...] = ("psnr", "ssim", "sam", "ergas", "cpsnr", "lpips", "lpips_sat")
#: how each is computed, recorded in the row options
WINDOWED_MODE: dict[str, str] = {
    "psnr": "exact (float64 sums over windows)",
    "sam": "exact (float64 sums over windows)",
    "ergas": "exact (float64 sums over windows)",
    "cpsnr": "exact (float64 sums per shift over windows, halo = max shift)",
    "ssim": "exact up to float32 rounding (map per window with a 5-pixel halo)",
    "lpips": "mean over windows weighted by window area (not the whole-image score)",
    "lpips_sat": "mean over windows weighted by window area (not the whole-image score)",
}
#: HR pixels per window side
WINDOW: int = 1024
#: smallest window side given to a network (edge windows are widened toward the interior)
MIN_NET_WINDOW: int = 64
#: same cap as the in-memory engine (mindgap_core.metrics.engine.PSNR_CAP_DB)
PSNR_CAP_DB = 100.0
#: peak bytes per HR value (pixel x band) of scoring an SR/HR pair whole with the in-memory engine
#: (PSNR, SSIM, SAM, ERGAS, cPSNR, LPIPS-Sat): peak RSS grows by 93-124 bytes per value (1024 and 512
#: pixels square, 1-2 threads; benchmarks/memory.py), plus the two float32 rasters, rounded up
WHOLE_IMAGE_BYTES_PER_VALUE: int = 160
_SSIM_RADIUS = int(TRUNCATE * SIGMA + 0.5)


@dataclass(frozen=True)
class WindowedOptions:
    """How scores are computed (the subset of the engine's options that windows support)."""

    data_range: float = 1.0
    scale: int | None = None
    cpsnr_max_shift: int = 3
    window: int = WINDOW

    def __post_init__(self) -> None:
        if not self.data_range > 0:
            raise ConfigError(f"data_range must be positive, got {self.data_range}")
        if self.window < 2 * MIN_NET_WINDOW:
            raise ConfigError(f"window must be at least {2 * MIN_NET_WINDOW} pixels, got {self.window}")
        if self.cpsnr_max_shift < 0:
            raise ConfigError(f"cpsnr_max_shift must be >= 0, got {self.cpsnr_max_shift}")


def fits_whole_image(hr_path: str | Path) -> bool:
    """Whether an SR/HR pair of ``hr_path``'s size can be scored whole within the memory budget
    (:func:`~mindgap_core.io.memory.memory_budget`); otherwise score it with :func:`score_windowed`."""
    from mindgap_core.io.geotiff import WindowReader
    from mindgap_core.io.memory import memory_budget

    with WindowReader.of(hr_path) as reader:
        info = reader.info
    return info.rows * info.cols * info.count * WHOLE_IMAGE_BYTES_PER_VALUE <= memory_budget()


def _span(start: int, stop: int, halo: int, length: int, minimum: int) -> tuple[int, int]:
    """[start - halo, stop + halo) cut to [0, length), widened to ``minimum`` toward the interior."""
    lo, hi = max(start - halo, 0), min(stop + halo, length)
    if hi - lo < minimum:
        lo = max(0, min(lo, hi - minimum))
        hi = min(length, max(hi, lo + minimum))
    return lo, hi


@dataclass
class _Sums:
    """Float64 accumulators, per band where it applies."""

    bands: int
    n: float = 0.0
    sse: np.ndarray = field(init=False)
    sum_y: np.ndarray = field(init=False)
    sam_sum: float = 0.0
    sam_n: float = 0.0
    ssim_sum: np.ndarray = field(init=False)
    ssim_n: float = 0.0
    net: dict[str, list[float]] = field(default_factory=dict)  # metric -> [weighted sum, weight]
    cpsnr: np.ndarray | None = None  # (3, bands, shifts, shifts): n, sum d, sum d^2

    def __post_init__(self) -> None:
        self.sse = np.zeros(self.bands)
        self.sum_y = np.zeros(self.bands)
        self.ssim_sum = np.zeros(self.bands)


def _open(stack: contextlib.ExitStack, path: str | Path, band_names: Sequence[str] | None,
          dn_scale: float | None) -> tuple[WindowReader, tuple[str, ...]]:  # fmt: skip
    from mindgap_core.io.geotiff import WindowReader

    reader = stack.enter_context(WindowReader.of(path))
    info = reader.info
    names = tuple(band_names) if band_names is not None else info.band_names
    if len(names) != info.count:
        raise InputError(path, f"has {info.count} band(s), expected {len(names)} {list(names)}")
    if info.units == "DN" and dn_scale is None:
        raise InputError(path, "holds digital numbers (DN); give --dn-scale to read them as reflectance")
    return reader, names


def _read(reader: WindowReader, window: Window, dn_scale: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (bands, h, w) and validity (mask and finite) of a window, as the in-memory engine
    sees it: DN x ``dn_scale`` in float64, then float32 (the engine scores float32 arrays)."""
    array, valid = reader.read(window)
    if reader.info.units == "DN":
        array = array.astype(np.float64) * dn_scale
    array = array.astype(np.float32)
    return array, valid & np.isfinite(array).all(axis=0)


def _active(metrics: Sequence[str] | None, band_names: tuple[str, ...], scale: int | None,
            lpips_model: LPIPSModel | None, lpips_sat_model: LPIPSSat | None) -> tuple[str, ...]:  # fmt: skip
    """Metrics to compute: an explicit list must all be possible (ConfigError otherwise); the default
    suite keeps what windows and the inputs allow."""
    explicit = metrics is not None
    names = tuple(dict.fromkeys(metrics)) if metrics is not None else DEFAULT_METRICS
    for n in names:
        get_metric(n)
    refused = [n for n in names if n not in WINDOWED_METRICS]
    if refused and explicit:
        raise ConfigError(
            f"{', '.join(refused)} need(s) the whole image (histograms, registration); score tiles of "
            f"the scene instead. By windows: {', '.join(WINDOWED_METRICS)}"
        )
    problems = {
        "ergas": None if scale is not None
        else "ergas needs the scale factor (give the LR raster or the scale)",
        "lpips": None if set(RGB_BANDS) <= set(band_names) and lpips_model is not None
        else f"lpips needs red, green and blue bands and AlexNet weights (bands: {list(band_names)})",
        "lpips_sat": None
        if lpips_sat_model is not None and set(lpips_sat_model.band_names) <= set(band_names)
        else f"lpips_sat needs the bands of its backbone (bands: {list(band_names)})",
    }
    keep = []
    for n in names:
        if n not in WINDOWED_METRICS:
            continue
        if problems.get(n):
            if explicit:
                raise ConfigError(problems[n])
            continue
        keep.append(n)
    return tuple(keep)


def score_windowed(
    sr_path: str | Path,
    hr_path: str | Path,
    *,
    lr_path: str | Path | None = None,
    metrics: Sequence[str] | None = None,
    options: WindowedOptions = WindowedOptions(),  # noqa: B008 - frozen dataclass
    band_names: Sequence[str] | None = None,
    dn_scale: float | None = None,
    device: str | torch.device = "cpu",
    lpips_trunk: object = None,
    lpips_sat: object = None,
    ssl4eo_arch: str = "resnet18",
    tile_id: str | None = None,
    on_progress: ProgressFn = no_progress,
) -> list[MetricRow]:
    """Score the SR raster file against the HR reference file window by window (module docstring).

    Memory: one window (plus halos) of each raster, whatever their size. ``lr_path`` (only its size is
    read) or ``options.scale`` gives the scale ERGAS needs. ``metrics=None``: the default suite minus
    what windows cannot compute and what cannot run (no LPIPS weights, no scale); an explicit list
    makes those errors. Rows have ``tile_id`` (default: the SR file's stem), band names and
    ``options`` like the in-memory engine's, plus ``windowed`` (how) and ``window`` (pixels).
    """
    from rasterio.windows import Window

    from mindgap_core.metrics.engine import infer_scale

    dev = torch.device(device)
    with contextlib.ExitStack() as stack:
        sr, names = _open(stack, sr_path, band_names, dn_scale)
        hr, hr_names = _open(stack, hr_path, band_names, dn_scale)
        if names != hr_names:
            raise InputError(sr_path, f"bands {list(names)} differ from {hr_path}'s {list(hr_names)}")
        if sr.info.shape != hr.info.shape:
            raise InputError(sr_path, f"is {sr.info.rows}x{sr.info.cols} pixels, {hr_path} is "
                                      f"{hr.info.rows}x{hr.info.cols}: SR must be on the HR grid")
        if sr.info.crs is not None and hr.info.crs is not None and sr.info.crs != hr.info.crs:
            raise InputError(sr_path, f"CRS {sr.info.crs} differs from {hr_path}'s {hr.info.crs}")
        scale = options.scale
        if lr_path is not None:
            from mindgap_core.io.geotiff import WindowReader

            with WindowReader.of(lr_path) as lr:
                s = infer_scale(hr.info.shape, lr.info.shape, str(lr_path))
            if scale is not None and s != scale:
                raise InputError(lr_path, f"HR/LR size ratio is {s}, but scale {scale} was given")
            scale = s
        lpips_model, lpips_sat_model = _networks(metrics, names, dev, lpips_trunk, lpips_sat, ssl4eo_arch)
        active = _active(metrics, names, scale, lpips_model, lpips_sat_model)
        rows, cols = hr.info.shape
        k = options.cpsnr_max_shift
        if "cpsnr" in active and 2 * k >= min(rows, cols):
            raise ConfigError(f"cPSNR max shift {k} does not fit images of {rows}x{cols}")
        if "ssim" in active and min(rows, cols) < 2 * _SSIM_RADIUS + 1:
            raise ConfigError(f"SSIM needs images of at least 11x11 pixels, got {rows}x{cols}")
        halo = max(_SSIM_RADIUS if "ssim" in active else 0, k if "cpsnr" in active else 0)
        acc = _Sums(len(names))
        if "cpsnr" in active:
            acc.cpsnr = np.zeros((3, len(names), 2 * k + 1, 2 * k + 1))
        size = options.window
        windows = [(r, min(r + size, rows), c, min(c + size, cols))
                   for r in range(0, rows, size) for c in range(0, cols, size)]
        on_progress(0, len(windows))
        for i, (r0, r1, c0, c1) in enumerate(windows, start=1):
            minimum = 2 * _SSIM_RADIUS + 1
            top, bottom = _span(r0, r1, halo, rows, minimum)
            left, right = _span(c0, c1, halo, cols, minimum)
            region = Window(left, top, right - left, bottom - top)
            x, vx = _read(sr, region, dn_scale)
            y, vy = _read(hr, region, dn_scale)
            valid = vx & vy
            core = (slice(r0 - top, r1 - top), slice(c0 - left, c1 - left))
            _pixel_sums(acc, x, y, valid, core, active)
            if "ssim" in active:
                _ssim_sums(acc, x, y, valid, core, (top, left), (rows, cols), options.data_range, dev)
            if "cpsnr" in active:
                _cpsnr_sums(acc, x, y, valid, (r0, r1, c0, c1), (top, left), (rows, cols), k)
            for net in ("lpips", "lpips_sat"):
                if net in active:
                    _net_sums(acc, net, sr, hr, (r0, r1, c0, c1), (rows, cols), names, dn_scale,
                              lpips_model if net == "lpips" else lpips_sat_model, options.data_range, dev)
            on_progress(i, len(windows))
    return _rows(acc, active, names, options, scale, tile_id or Path(str(sr_path)).stem,
                 lpips_model, lpips_sat_model)


def _networks(
    metrics: Sequence[str] | None, names: tuple[str, ...], dev: torch.device, lpips_trunk: object,
    lpips_sat: object, ssl4eo_arch: str,
) -> tuple[LPIPSModel | None, LPIPSSat | None]:  # fmt: skip
    """Loaded LPIPS / LPIPS-Sat models for the metrics that want them (None where they cannot load and
    the metric was not asked for explicitly)."""
    wanted = set(metrics) if metrics is not None else set(DEFAULT_METRICS)
    lpips_model = lpips_sat_model = None
    if "lpips" in wanted and set(RGB_BANDS) <= set(names):
        try:
            lpips_model = (lpips_trunk if isinstance(lpips_trunk, LPIPSModel)
                           else load_lpips(lpips_trunk, dev))  # type: ignore[arg-type]
        except LPIPSUnavailable:
            if metrics is not None:
                raise
    if "lpips_sat" in wanted:
        lpips_sat_model = (lpips_sat if isinstance(lpips_sat, LPIPSSat)
                           else load_backbone(lpips_sat, dev, ssl4eo_arch))  # type: ignore[arg-type]
    return lpips_model, lpips_sat_model


def _pixel_sums(acc: _Sums, x: np.ndarray, y: np.ndarray, valid: np.ndarray, core: tuple[slice, slice],
                active: tuple[str, ...]) -> None:  # fmt: skip
    xc = x[(slice(None), *core)].astype(np.float64)
    yc = y[(slice(None), *core)].astype(np.float64)
    vc = valid[core]
    if {"psnr", "ergas"} & set(active):
        d = xc[:, vc] - yc[:, vc]
        acc.sse += (d * d).sum(axis=1)
        acc.sum_y += yc[:, vc].sum(axis=1)
        acc.n += float(vc.sum())
    if "sam" in active:
        angles = sam_map(torch.from_numpy(xc[None]), torch.from_numpy(yc[None]))[0].numpy()
        ok = vc & ~np.isnan(angles)
        acc.sam_sum += float(angles[ok].sum())
        acc.sam_n += float(ok.sum())


def _ssim_sums(acc: _Sums, x: np.ndarray, y: np.ndarray, valid: np.ndarray, core: tuple[slice, slice],
               origin: tuple[int, int], shape: tuple[int, int], data_range: float, dev: torch.device) -> None:
    """SSIM map of the region (float32, as the engine), summed over the core pixels that are in the
    image's interior (border of the Gaussian radius excluded) and valid."""
    t = lambda a: torch.from_numpy(a[None]).to(device=dev, dtype=torch.float32)  # noqa: E731
    smap = ssim_map(t(x), t(y), data_range)[0].to(torch.float64).cpu().numpy()
    (top, left), (rows, cols), p = origin, shape, _SSIM_RADIUS
    rr = np.arange(core[0].start, core[0].stop) + top
    cc = np.arange(core[1].start, core[1].stop) + left
    inner = ((rr >= p) & (rr < rows - p))[:, None] & ((cc >= p) & (cc < cols - p))[None, :]
    keep = inner & valid[core]
    acc.ssim_sum += smap[(slice(None), *core)][:, keep].sum(axis=1)
    acc.ssim_n += float(keep.sum())


def _cpsnr_sums(acc: _Sums, x: np.ndarray, y: np.ndarray, valid: np.ndarray,
                window: tuple[int, int, int, int], origin: tuple[int, int], shape: tuple[int, int],
                k: int) -> None:  # fmt: skip
    """Per shift (u, v) in [-k, k]²: count, sum and sum of squares of d = HR(p + (u, v)) - SR(p) over
    the window's pixels p of the central crop (the whole image less k pixels), joint validity."""
    r0, r1, c0, c1 = window
    (top, left), (rows, cols) = origin, shape
    pr0, pr1 = max(r0, k), min(r1, rows - k)
    pc0, pc1 = max(c0, k), min(c1, cols - k)
    if pr1 <= pr0 or pc1 <= pc0:
        return
    a, b = pr0 - top, pc0 - left  # the crop's corner in region coordinates
    h, w = pr1 - pr0, pc1 - pc0
    x, y = x.astype(np.float64), y.astype(np.float64)
    xs, vs = x[:, a : a + h, b : b + w], valid[a : a + h, b : b + w]
    for u in range(-k, k + 1):
        for v in range(-k, k + 1):
            ys = y[:, a + u : a + u + h, b + v : b + v + w]
            wgt = vs & valid[a + u : a + u + h, b + v : b + v + w]
            d = (ys - xs)[:, wgt]
            acc.cpsnr[0, :, u + k, v + k] += float(wgt.sum())  # type: ignore[index]
            acc.cpsnr[1, :, u + k, v + k] += d.sum(axis=1)  # type: ignore[index]
            acc.cpsnr[2, :, u + k, v + k] += (d * d).sum(axis=1)  # type: ignore[index]


def _net_sums(acc: _Sums, metric: str, sr: WindowReader, hr: WindowReader, window: tuple[int, int, int, int],
              shape: tuple[int, int], names: tuple[str, ...], dn_scale: float | None,
              model: LPIPSModel | LPIPSSat, data_range: float, dev: torch.device) -> None:  # fmt: skip
    from rasterio.windows import Window

    r0, r1, c0, c1 = window
    top, bottom = _span(r0, r1, 0, shape[0], MIN_NET_WINDOW)
    left, right = _span(c0, c1, 0, shape[1], MIN_NET_WINDOW)
    region = Window(left, top, right - left, bottom - top)
    x, _ = _read(sr, region, dn_scale)
    y, _ = _read(hr, region, dn_scale)
    t = lambda a: torch.from_numpy(a[None]).to(device=dev, dtype=torch.float32)  # noqa: E731
    score = lpips_score if metric == "lpips" else lpips_sat_score
    value = float(score(model, t(x), t(y), names, data_range)[0])  # type: ignore[operator]
    area = float((r1 - r0) * (c1 - c0))
    total = acc.net.setdefault(metric, [0.0, 0.0])
    total[0] += value * area
    total[1] += area


def _rows(acc: _Sums, active: tuple[str, ...], names: tuple[str, ...], options: WindowedOptions,
          scale: int | None, tile_id: str, lpips_model: LPIPSModel | None,
          lpips_sat_model: LPIPSSat | None) -> list[MetricRow]:  # fmt: skip
    r = options.data_range
    per_band: dict[str, np.ndarray] = {}
    overall: dict[str, float] = {}
    n = max(acc.n, 1.0)
    if "psnr" in active:
        mse = acc.sse / n
        per_band["psnr"] = np.minimum(psnr_from_mse(torch.from_numpy(mse), r).numpy(), PSNR_CAP_DB)
        overall["psnr"] = min(float(psnr_from_mse(torch.tensor(mse.mean()), r)), PSNR_CAP_DB)
    if "ssim" in active:
        per_band["ssim"] = acc.ssim_sum / max(acc.ssim_n, 1.0)
        overall["ssim"] = float(per_band["ssim"].mean())
    if "sam" in active:
        overall["sam"] = acc.sam_sum / acc.sam_n if acc.sam_n else math.nan
    if "ergas" in active:
        rmse, mean_y = np.sqrt(acc.sse / n), acc.sum_y / n
        overall["ergas"] = float(100.0 / scale * np.sqrt(np.mean((rmse / mean_y) ** 2)))  # type: ignore[operator]
    if "cpsnr" in active:
        cnt, s_d, s_dd = acc.cpsnr  # type: ignore[misc]
        cnt = np.maximum(cnt, 1.0)
        cmse = np.maximum(s_dd / cnt - (s_d / cnt) ** 2, 1e-30)
        best = psnr_from_mse(torch.from_numpy(cmse), r).numpy().max(axis=(-2, -1))
        per_band["cpsnr"] = np.minimum(best, PSNR_CAP_DB)
        overall["cpsnr"] = float(per_band["cpsnr"].mean())
    for net in ("lpips", "lpips_sat"):
        if net in active:
            total, weight = acc.net[net]
            overall[net] = total / weight
    rows = []
    for m in active:
        opts: dict[str, object] = {"data_range": float(r), "hist_match": "none", "scale": scale,
                                   "windowed": WINDOWED_MODE[m], "window": options.window}
        if m == "cpsnr":
            opts["cpsnr_max_shift"] = int(options.cpsnr_max_shift)
        elif m == "lpips":
            opts["lpips_trunk"] = lpips_model.trunk  # type: ignore[union-attr]
            opts["lpips_view"] = "red,green,blue scaled to [-1, 1]"
        elif m == "lpips_sat":
            opts["lpips_sat_backbone"] = lpips_sat_model.backbone_id  # type: ignore[union-attr]
        values = [(b, per_band[m][j]) for j, b in enumerate(names)] if m in per_band else []
        values.append(("all", overall[m]))
        rows.extend(MetricRow(tile_id, band, m, float(v), dict(opts)) for band, v in values if np.isfinite(v))
    return rows
