"""The batched evaluator: many SR/HR(/LR) tile pairs in, tidy :class:`MetricRow` rows out.

Everything runs in torch on the given device (CPU or CUDA), a batch of tiles at a time. For every
batch the engine builds one :class:`~mindgap_core.metrics.batch.ScoreBatch` and loops over the
requested metrics' registry entries (:data:`~mindgap_core.metrics.registry.METRICS`), calling each
entry's scoring function; it knows no metric by name. Scores are finite (PSNR/cPSNR of identical
images are capped at :data:`PSNR_CAP_DB`); a score that is undefined for a tile (e.g. opensr-test's
spatial consistency when the shift exceeds its limit) gives no row and a note in
:attr:`Evaluator.notes`.

Options recorded with every row: ``data_range``, ``hist_match`` (``none``/``hr``/``lr``: SR matched
per band to that image before the HR-referenced metrics) and ``scale``; plus what each scoring
function reports (``cpsnr_max_shift``, ``lpips_trunk``, ``lpips_sat_backbone``, ``opensr_*``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.metrics.batch import HIST_MATCH_CHOICES, MetricValues, ScoreBatch, ScoreOptions
from mindgap_core.metrics.lpips_sat import LPIPSSat, load_backbone
from mindgap_core.metrics.lpips_std import LPIPSModel, LPIPSUnavailable, load_lpips
from mindgap_core.metrics.pixel import match_histograms
from mindgap_core.metrics.registry import DEFAULT_METRICS, METRICS, RGB_BANDS, MetricSpec, get_metric
from mindgap_core.metrics.scorers import PSNR_CAP_DB
from mindgap_core.types import GeoRaster, MetricRow, ProgressFn, no_progress

__all__ = ["HIST_MATCH_CHOICES", "PSNR_CAP_DB", "Evaluator", "ScoreOptions", "infer_scale", "validate_pair"]


def infer_scale(hr_shape: tuple[int, int], lr_shape: tuple[int, int], source: str = "LR") -> int:
    """Integer HR/LR size ratio, equal on both axes; :class:`InputError` otherwise."""
    (hh, hw), (lh, lw) = hr_shape, lr_shape
    if lh == 0 or lw == 0 or hh % lh or hw % lw or hh // lh != hw // lw:
        raise InputError(source, f"is {lh}x{lw} pixels; HR {hh}x{hw} is not an integer multiple of it "
                                 "on both axes")
    return hh // lh


def _check_matches_hr(x: GeoRaster, name: str, hr: GeoRaster, hr_name: str, same_grid: bool) -> None:
    """InputError naming ``name`` when ``x`` differs from HR in bands, shape (``same_grid``), CRS or units."""
    if x.band_names != hr.band_names:
        raise InputError(name, f"bands {list(x.band_names)} differ from {hr_name}'s {list(hr.band_names)}")
    if same_grid and x.shape != hr.shape:
        raise InputError(name, f"is {x.shape[0]}x{x.shape[1]} pixels, {hr_name} is "
                               f"{hr.shape[0]}x{hr.shape[1]}: SR must be on the HR grid")
    if x.crs is not None and hr.crs is not None and x.crs != hr.crs:
        raise InputError(name, f"CRS {x.crs} differs from {hr_name}'s {hr.crs}")
    if x.units != hr.units:
        raise InputError(name, f"units {x.units!r} differ from {hr_name}'s {hr.units!r}")


def validate_pair(sr: GeoRaster, hr: GeoRaster, lr: GeoRaster | None = None, scale: int | None = None,
                  names: tuple[str, str, str] = ("SR", "HR", "LR")) -> int | None:
    """Check an SR/HR(/LR) triple fits together; returns the scale (None without LR or scale).

    Raises :class:`InputError` naming the offending input for mismatched bands, shapes, CRS or units.
    """
    sr_name, hr_name, lr_name = names
    _check_matches_hr(sr, sr_name, hr, hr_name, same_grid=True)
    if lr is None:
        return scale
    _check_matches_hr(lr, lr_name, hr, hr_name, same_grid=False)
    s = infer_scale(hr.shape, lr.shape, lr_name)
    if scale is not None and s != scale:
        raise InputError(lr_name, f"HR/LR size ratio is {s}, but scale {scale} was given")
    return s


def _to_tensor(a: np.ndarray | torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    return t.to(device=device, dtype=dtype)


def _values_of(spec: MetricSpec, batch: ScoreBatch) -> MetricValues:
    """Run a metric's scoring function; a function that scores a family of metrics returns a mapping
    from metric name to values (e.g. coverage at every level), of which this metric takes its own."""
    result = spec.scorer()(batch)
    return result[spec.name] if isinstance(result, Mapping) else result


def _load_lpips(spec: LPIPSModel | str | Path | None, device: torch.device, _arch: str) -> LPIPSModel:
    return spec if isinstance(spec, LPIPSModel) else load_lpips(spec, device)


def _load_lpips_sat(spec: LPIPSSat | str | Path | None, device: torch.device, ssl4eo_arch: str) -> LPIPSSat:
    if isinstance(spec, LPIPSSat):
        on = next(spec.buffers()).device
        # never move the caller's module: copy it when it lives elsewhere
        return spec if on == device else copy.deepcopy(spec).to(device)
    return load_backbone(spec, device, ssl4eo_arch)


#: how the engine loads the network a metric declares in ``MetricSpec.model``
MODEL_LOADERS: dict[str, Callable[[Any, torch.device, str], Any]] = {
    "lpips": _load_lpips,
    "lpips_sat": _load_lpips_sat,
}


class Evaluator:
    """Scores batches of tiles with a fixed metric list, options, device and backbones.

    ``metrics=None`` means the default suite: metrics that cannot run (LPIPS without its ImageNet
    weights, LR-based metrics without LR, ERGAS without a scale) are skipped with one note each.
    An explicit list makes the same situations errors (:class:`ConfigError`).
    ``lpips_trunk``: a loaded :class:`LPIPSModel`, a path to torchvision's AlexNet weights, None
    for ``$TORCH_HOME``'s cache, or ``RANDOM_TRUNK`` (tests only). ``lpips_sat``: a loaded
    :class:`LPIPSSat`, a backbone folder / SSL4EO file, or None for the shipped backbone.
    """

    def __init__(self, metrics: Sequence[str] | None = None, options: ScoreOptions = ScoreOptions(),
                 device: str | torch.device = "cpu", *,
                 lpips_trunk: LPIPSModel | str | Path | None = None,
                 lpips_sat: LPIPSSat | str | Path | None = None, ssl4eo_arch: str = "resnet18",
                 batch_size: int | None = None, net_batch: int | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        self.explicit = metrics is not None
        names = tuple(dict.fromkeys(metrics)) if metrics is not None else DEFAULT_METRICS
        specs = [get_metric(n) for n in names]
        self.device = torch.device(device)
        self.options = options
        self.dtype = dtype
        # CPU: small batches keep each batch's arrays in cache (measured faster than big batches);
        # CUDA: large batches fill the device.
        cuda = self.device.type == "cuda"
        self.batch_size = int(batch_size or (64 if cuda else 8))
        self.net_batch = int(net_batch or (64 if cuda else 8))
        self.notes: list[str] = []
        self._noted: set[str] = set()
        self.models: dict[str, Any] = {}
        model_args = {"lpips": lpips_trunk, "lpips_sat": lpips_sat}
        keep = []
        for spec in specs:
            if spec.model is not None and spec.model not in self.models:
                try:
                    self.models[spec.model] = MODEL_LOADERS[spec.model](
                        model_args.get(spec.model), self.device, ssl4eo_arch)
                except LPIPSUnavailable as exc:
                    if self.explicit:
                        raise
                    self._note(spec.name, str(exc))
                    continue
            keep.append(spec.name)
        self.metrics: tuple[str, ...] = tuple(keep)

    @property
    def lpips_model(self) -> LPIPSModel | None:
        """The loaded LPIPS network (None when LPIPS is not scored)."""
        return self.models.get("lpips")

    @property
    def lpips_sat_model(self) -> LPIPSSat | None:
        """The loaded LPIPS-Sat network (None when LPIPS-Sat is not scored)."""
        return self.models.get("lpips_sat")

    # ------------------------------------------------------------------ helpers
    def _note(self, key: str, text: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.notes.append(text)

    def _problem(self, spec: MetricSpec, has_lr: bool, scale: int | None,
                 band_names: tuple[str, ...]) -> str | None:
        """Why ``spec`` cannot run on this input (None when it can)."""
        n = spec.name
        if spec.needs_lr and not has_lr:
            return f"{n} needs the LR image (give --lr)"
        if spec.needs_scale and scale is None:
            return f"{n} needs the scale factor (give --scale or --lr)"
        if spec.needs_rgb and not set(RGB_BANDS) <= set(band_names):
            return f"{n} needs red, green and blue bands, the input has {list(band_names)}"
        model_bands = getattr(self.models.get(spec.model), "band_names", None) if spec.model else None
        if model_bands is not None and not set(model_bands) <= set(band_names):
            return f"{n} needs bands {list(model_bands)}, the input has {list(band_names)}"
        return None

    def _active(self, has_lr: bool, scale: int | None, band_names: tuple[str, ...],
                no_spread: str | None = None) -> list[MetricSpec]:
        """Metrics that can run on this input (skips or errors per the explicit/default rule; the
        calibration scores of a model without spread are always skipped with a note)."""
        active = []
        for n in self.metrics:
            spec = METRICS[n]
            if spec.needs_samples and no_spread is not None:
                self._note("no uncertainty", f"calibration scores skipped: no uncertainty ({no_spread})")
                continue
            problem = self._problem(spec, has_lr, scale, band_names)
            if problem is not None:
                if self.explicit:
                    raise ConfigError(problem)
                self._note(n, f"{n}: skipped: {problem}")
                continue
            active.append(spec)
        if self.options.hist_match == "lr" and not has_lr:
            raise ConfigError("hist_match='lr' needs the LR image")
        return active

    # ------------------------------------------------------------------ scoring
    def score_arrays(self, sr: np.ndarray | torch.Tensor, hr: np.ndarray | torch.Tensor,
                     lr: np.ndarray | torch.Tensor | None = None, *, band_names: Sequence[str],
                     tile_ids: Sequence[str] | None = None, valid: np.ndarray | torch.Tensor | None = None,
                     scale: int | None = None, samples: np.ndarray | torch.Tensor | None = None
                     ) -> list[MetricRow]:
        """Score (N, C, H, W) SR against HR (and (N, C, h, w) LR); ``valid`` (N, H, W) bool;
        ``samples`` (N, S, C, H, W): the model's samples whose mean is the SR (for the calibration
        scores; without them, or when they are all equal, those are skipped with a note)."""
        band_names = tuple(band_names)
        if tuple(sr.shape) != tuple(hr.shape):
            raise InputError("SR", f"shape {tuple(sr.shape)} differs from HR {tuple(hr.shape)}")
        if sr.ndim != 4 or sr.shape[1] != len(band_names):
            raise InputError("SR", f"expected (N, {len(band_names)}, H, W) for bands {band_names}, "
                                   f"got {tuple(sr.shape)}")
        n = sr.shape[0]
        tile_ids = [str(i) for i in (tile_ids if tile_ids is not None else range(n))]
        if len(tile_ids) != n:
            raise ConfigError(f"{len(tile_ids)} tile ids for {n} tiles")
        scale = scale if scale is not None else self.options.scale
        if lr is not None:
            s = infer_scale(tuple(hr.shape[-2:]), tuple(lr.shape[-2:]))
            if scale is not None and s != scale:
                raise InputError("LR", f"HR/LR size ratio is {s}, but scale {scale} was given")
            scale = s
        if samples is not None and (samples.ndim != 5 or tuple(samples.shape[:1]) + tuple(samples.shape[2:])
                                    != tuple(sr.shape)):
            raise InputError("samples", f"shape {tuple(samples.shape)} is not (N, S, C, H, W) for SR "
                                        f"{tuple(sr.shape)}")
        active = self._active(lr is not None, scale, band_names, self._spread(samples))
        rows: list[MetricRow] = []
        for start in range(0, n, self.batch_size):
            sl = slice(start, start + self.batch_size)
            batch = self._batch(sr[sl], hr[sl], None if lr is None else lr[sl],
                                None if valid is None else valid[sl], band_names, scale,
                                None if samples is None else samples[sl])
            values = {spec.name: _values_of(spec, batch) for spec in active}
            rows.extend(self._rows(tile_ids[sl], band_names, values, scale))
        return rows

    @staticmethod
    def _spread(samples: np.ndarray | torch.Tensor | None) -> str | None:
        """Why the calibration scores cannot run on these samples (None when they can)."""
        if samples is None:
            return "no samples were given"
        if samples.shape[1] < 2:
            return "one sample only"
        first = samples[:, :1]
        if not bool((samples != first).any()):
            return "all samples are equal (a deterministic model)"
        return None

    def _batch(self, sr, hr, lr, valid, band_names: tuple[str, ...], scale: int | None,
               samples=None) -> ScoreBatch:
        dev, dt = self.device, self.dtype
        x = _to_tensor(sr, dev, dt)
        y = _to_tensor(hr, dev, dt)
        lo = None if lr is None else _to_tensor(lr, dev, dt)
        match = self.options.hist_match
        xe = match_histograms(x, y) if match == "hr" else match_histograms(x, lo) if match == "lr" else x
        return ScoreBatch(x, xe, y, lo, None if valid is None else _to_tensor(valid, dev, torch.bool),
                          band_names, scale, self.options, self.models, self.net_batch,
                          None if samples is None else _to_tensor(samples, dev, dt))

    def _rows(self, tile_ids: list[str], band_names: tuple[str, ...], values: dict[str, MetricValues],
              scale: int | None) -> list[MetricRow]:
        o = self.options
        rows = []
        dropped: dict[str, int] = {}
        for m, v in values.items():
            opts = {"data_range": float(o.data_range), "hist_match": o.hist_match, "scale": scale,
                    **v.options}
            overall = v.overall.detach().cpu().numpy()
            per_band = None if v.per_band is None else v.per_band.detach().cpu().numpy()
            for i, tid in enumerate(tile_ids):
                cells = [] if per_band is None else [(b, per_band[i, j]) for j, b in enumerate(band_names)]
                cells.append(("all", overall[i]))
                for band, val in cells:
                    if not np.isfinite(val):
                        dropped[m] = dropped.get(m, 0) + 1
                        continue
                    rows.append(MetricRow(tid, band, m, float(val), dict(opts)))
        for m, k in dropped.items():
            self.notes.append(f"{m}: {k} value(s) undefined (NaN/inf) and not reported")
        return rows

    def score_rasters(self, pairs: Iterable[tuple[str, GeoRaster, GeoRaster, GeoRaster | None]],
                      on_progress: ProgressFn = no_progress, total: int | None = None) -> list[MetricRow]:
        """Score (tile_id, SR, HR, LR-or-None) raster triples, batching consecutive equal shapes."""
        rows: list[MetricRow] = []
        pending: list[tuple[str, GeoRaster, GeoRaster, GeoRaster | None]] = []
        done = 0

        def flush() -> None:
            nonlocal done
            if not pending:
                return
            ids = [p[0] for p in pending]
            sr = np.stack([np.asarray(p[1].array, dtype=np.float32) for p in pending])
            hr = np.stack([np.asarray(p[2].array, dtype=np.float32) for p in pending])
            lr = (np.stack([np.asarray(p[3].array, dtype=np.float32) for p in pending])
                  if pending[0][3] is not None else None)
            valid = np.stack([p[1].valid & p[2].valid for p in pending])
            rows.extend(self.score_arrays(sr, hr, lr, band_names=pending[0][2].band_names,
                                          tile_ids=ids, valid=None if valid.all() else valid))
            done += len(pending)
            on_progress(done, total if total is not None else done)
            pending.clear()

        for tid, sr, hr, lr in pairs:
            validate_pair(sr, hr, lr, self.options.scale,
                          names=(f"SR {tid}", f"HR {tid}", f"LR {tid}"))
            key = (sr.array.shape, None if lr is None else lr.array.shape, hr.band_names)
            if pending and (key != (pending[0][1].array.shape,
                                    None if pending[0][3] is None else pending[0][3].array.shape,
                                    pending[0][2].band_names) or len(pending) >= self.batch_size):
                flush()
            pending.append((tid, sr, hr, lr))
        flush()
        return rows
