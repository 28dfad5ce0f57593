"""The batched evaluator: many SR/HR(/LR) tile pairs in, tidy :class:`MetricRow` rows out.

Everything runs in torch on the given device (CPU or CUDA), a batch of tiles at a time. Scores are
finite (PSNR/cPSNR of identical images are capped at :data:`PSNR_CAP_DB`); a score that is undefined
for a tile (e.g. opensr-test's spatial consistency when the shift exceeds its limit) gives no row and
a note in :attr:`Evaluator.notes`.

Options recorded with every row: ``data_range``, ``hist_match`` (``none``/``hr``/``lr``: SR matched
per band to that image before the HR-referenced metrics; never before consistency, whose point is the
SR-LR agreement, nor before correctness, which harmonises SR to HR itself as opensr-test does) and
``scale``; plus each metric's own (``cpsnr_max_shift``, ``lpips_trunk``,
``lpips_sat_backbone``, ``opensr_*``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.metrics import opensr
from mindgap_core.metrics.lpips_sat import LPIPSSat, load_backbone, lpips_sat_score
from mindgap_core.metrics.lpips_std import LPIPSModel, LPIPSUnavailable, load_lpips, lpips_score
from mindgap_core.metrics.pixel import cpsnr, ergas, match_histograms, psnr, sam
from mindgap_core.metrics.registry import DEFAULT_METRICS, METRICS, RGB_BANDS, get_metric
from mindgap_core.metrics.ssim import ssim
from mindgap_core.types import GeoRaster, MetricRow, ProgressFn, no_progress

PSNR_CAP_DB = 100.0
HIST_MATCH_CHOICES = ("none", "hr", "lr")
OPENSR_METRICS = opensr.SCORES


@dataclass(frozen=True)
class ScoreOptions:
    """How scores are computed; recorded with each row."""

    data_range: float = 1.0
    hist_match: str = "none"
    scale: int | None = None
    cpsnr_max_shift: int = 3
    opensr: opensr.OpensrOptions = field(default_factory=opensr.OpensrOptions)

    def __post_init__(self) -> None:
        if self.hist_match not in HIST_MATCH_CHOICES:
            raise ConfigError(f"hist_match must be one of {HIST_MATCH_CHOICES}, got {self.hist_match!r}")
        if not self.data_range > 0:
            raise ConfigError(f"data_range must be positive, got {self.data_range}")
        if self.scale is not None and self.scale < 1:
            raise ConfigError(f"scale must be a positive integer, got {self.scale}")
        if self.cpsnr_max_shift < 0:
            raise ConfigError(f"cpsnr_max_shift must be >= 0, got {self.cpsnr_max_shift}")


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


class Evaluator:
    """Scores batches of tiles with a fixed metric list, options, device and backbones.

    ``metrics=None`` means the default suite: metrics that cannot run (LPIPS without its ImageNet
    weights, LR-based metrics without LR, ERGAS without a scale) are skipped with one note each.
    An explicit list makes the same situations errors (:class:`ConfigError`).
    ``lpips_trunk``: a loaded :class:`LPIPSModel`, a path to torchvision's AlexNet weights, None
    for ``$TORCH_HOME``'s cache, or ``"random"`` (tests only). ``lpips_sat``: a loaded
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
        for n in names:
            get_metric(n)
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
        self.lpips_model: LPIPSModel | None = None
        self.lpips_sat_model: LPIPSSat | None = None
        keep = []
        for n in names:
            if n == "lpips":
                try:
                    self.lpips_model = (lpips_trunk if isinstance(lpips_trunk, LPIPSModel)
                                        else load_lpips(lpips_trunk, self.device))
                except LPIPSUnavailable as exc:
                    if self.explicit:
                        raise
                    self._note("lpips", str(exc))
                    continue
            if n == "lpips_sat":
                if isinstance(lpips_sat, LPIPSSat):
                    on = next(lpips_sat.buffers()).device
                    # never move the caller's module: copy it when it lives elsewhere
                    self.lpips_sat_model = (lpips_sat if on == self.device
                                            else copy.deepcopy(lpips_sat).to(self.device))
                else:
                    self.lpips_sat_model = load_backbone(lpips_sat, self.device, ssl4eo_arch)
            keep.append(n)
        self.metrics: tuple[str, ...] = tuple(keep)

    # ------------------------------------------------------------------ helpers
    def _note(self, key: str, text: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.notes.append(text)

    def _row_options(self, metric: str, scale: int | None) -> dict:
        o = self.options
        base = {"data_range": float(o.data_range), "hist_match": o.hist_match, "scale": scale}
        if metric in OPENSR_METRICS:  # opensr-test harmonises on its own (opensr_harmonise_*)
            base["hist_match"] = "none"
        if metric == "cpsnr":
            base["cpsnr_max_shift"] = int(o.cpsnr_max_shift)
        elif metric == "lpips" and self.lpips_model is not None:
            base["lpips_trunk"] = self.lpips_model.trunk
            base["lpips_view"] = "red,green,blue scaled to [-1, 1]"
        elif metric == "lpips_sat" and self.lpips_sat_model is not None:
            base["lpips_sat_backbone"] = self.lpips_sat_model.backbone_id
        elif metric in OPENSR_METRICS:
            base.update(o.opensr.as_dict())
        return base

    def _active(self, has_lr: bool, scale: int | None, band_names: tuple[str, ...]) -> list[str]:
        """Metrics that can run on this input (skips or errors per the explicit/default rule)."""
        active = []
        for n in self.metrics:
            spec = METRICS[n]
            problem = None
            if spec.needs_lr and not has_lr:
                problem = f"{n} needs the LR image (give --lr)"
            elif (n == "ergas" or spec.needs_lr) and scale is None:
                problem = f"{n} needs the scale factor (give --scale or --lr)"
            elif n in ("lpips", "consistency_spatial") \
                    and not set(RGB_BANDS) <= set(band_names):
                problem = f"{n} needs red, green and blue bands, the input has {list(band_names)}"
            elif n == "lpips_sat" and self.lpips_sat_model is not None \
                    and not set(self.lpips_sat_model.band_names) <= set(band_names):
                problem = (f"lpips_sat needs bands {list(self.lpips_sat_model.band_names)}, the input "
                           f"has {list(band_names)}")
            if problem is not None:
                if self.explicit:
                    raise ConfigError(problem)
                self._note(n, f"{n}: skipped: {problem}")
                continue
            active.append(n)
        if self.options.hist_match == "lr" and not has_lr:
            raise ConfigError("hist_match='lr' needs the LR image")
        return active

    # ------------------------------------------------------------------ scoring
    def score_arrays(self, sr: np.ndarray | torch.Tensor, hr: np.ndarray | torch.Tensor,
                     lr: np.ndarray | torch.Tensor | None = None, *, band_names: Sequence[str],
                     tile_ids: Sequence[str] | None = None, valid: np.ndarray | torch.Tensor | None = None,
                     scale: int | None = None) -> list[MetricRow]:
        """Score (N, C, H, W) SR against HR (and (N, C, h, w) LR); ``valid`` (N, H, W) bool."""
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
        active = self._active(lr is not None, scale, band_names)
        rows: list[MetricRow] = []
        for start in range(0, n, self.batch_size):
            sl = slice(start, start + self.batch_size)
            rows.extend(self._score_batch(
                sr[sl], hr[sl], None if lr is None else lr[sl], band_names, tile_ids[sl],
                None if valid is None else valid[sl], scale, active))
        return rows

    def _score_batch(self, sr, hr, lr, band_names, tile_ids, valid, scale, active) -> list[MetricRow]:
        dev, dt = self.device, self.dtype
        x = _to_tensor(sr, dev, dt)
        y = _to_tensor(hr, dev, dt)
        lo = None if lr is None else _to_tensor(lr, dev, dt)
        v = None if valid is None else _to_tensor(valid, dev, torch.bool)
        o = self.options
        r = o.data_range
        if o.hist_match == "hr":
            xe = match_histograms(x, y)
        elif o.hist_match == "lr":
            xe = match_histograms(x, lo)
        else:
            xe = x
        rgb_idx = [band_names.index(b) for b in RGB_BANDS] if set(RGB_BANDS) <= set(band_names) else []
        per_band: dict[str, torch.Tensor] = {}
        overall: dict[str, torch.Tensor] = {}
        if "psnr" in active:
            pb, pa = psnr(xe, y, r, v)
            per_band["psnr"], overall["psnr"] = pb.clamp(max=PSNR_CAP_DB), pa.clamp(max=PSNR_CAP_DB)
        if "ssim" in active:
            sb = ssim(xe, y, r, v)
            per_band["ssim"], overall["ssim"] = sb, sb.mean(dim=1)
        if "sam" in active:
            overall["sam"] = sam(xe, y, v)
        if "ergas" in active:
            overall["ergas"] = ergas(xe, y, float(scale), v)
        if "cpsnr" in active:
            cb = cpsnr(xe, y, o.cpsnr_max_shift, r, v).clamp(max=PSNR_CAP_DB)
            per_band["cpsnr"], overall["cpsnr"] = cb, cb.mean(dim=1)
        if "lpips" in active:
            overall["lpips"] = torch.cat([
                lpips_score(self.lpips_model, xe[i:i + self.net_batch], y[i:i + self.net_batch],
                            band_names, r) for i in range(0, x.shape[0], self.net_batch)])
        if "lpips_sat" in active:
            overall["lpips_sat"] = torch.cat([
                lpips_sat_score(self.lpips_sat_model, xe[i:i + self.net_batch], y[i:i + self.net_batch],
                                band_names, r) for i in range(0, x.shape[0], self.net_batch)])
        wanted = tuple(m for m in active if m in OPENSR_METRICS)
        if wanted:
            overall.update(opensr.opensr_scores(x, lo, y, scale, rgb_idx, o.opensr, wanted))
        return self._rows(tile_ids, band_names, per_band, overall, scale, active)

    def _rows(self, tile_ids, band_names, per_band, overall, scale, active) -> list[MetricRow]:
        rows = []
        dropped: dict[str, int] = {}
        per_band = {k: val.detach().cpu().numpy() for k, val in per_band.items()}
        overall = {k: val.detach().cpu().numpy() for k, val in overall.items()}
        for m in active:
            opts = self._row_options(m, scale)
            for i, tid in enumerate(tile_ids):
                values = []
                if m in per_band:
                    values += [(b, per_band[m][i, j]) for j, b in enumerate(band_names)]
                values.append(("all", overall[m][i]))
                for band, val in values:
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
