"""Score super-resolved tiles against their HR reference: metric rows, metric maps, store rows.

The one path from "SR (or the diffusion samples it is the mean of), HR, optional LR" to tidy
:class:`~mindgap_core.types.MetricRow` rows (:class:`~mindgap_core.metrics.engine.Evaluator`) and
per-pixel metric maps (:func:`~mindgap_core.metrics.maps.metric_maps`). Its three callers:

- the experiment runner (``mindgap_core/experiments/runner.py``), a batch of tiles per unit of work,
  SR from a model's samples;
- on-demand inference jobs (``mindgap_core/inference/job_runner.py``), SR read from the tiled
  inference's COG;
- ``mindgap score`` (``mindgap_core/cli/score.py``), one SR file.

:func:`store_rows` turns the rows into results-store rows (``mindgap_core/store/schema.py``), so
experiments and jobs write the same table; :func:`write_rasters` writes a tile's rasters as COGs.

The module sits between :mod:`mindgap_core.metrics` (what each score is) and its callers (where SR comes
from and where results go): it reads and writes no file except in :func:`write_rasters`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mindgap_core.errors import ConfigError
from mindgap_core.io import write_cog
from mindgap_core.metrics.engine import Evaluator
from mindgap_core.metrics.maps import metric_maps
from mindgap_core.metrics.registry import METRICS
from mindgap_core.types import GeoRaster, MetricRow


@dataclass(frozen=True)
class MapOptions:
    """How metric maps are computed: data range, SR histogram-matched to HR first, torch device."""

    data_range: float = 1.0
    hist_match: bool = False
    device: str | torch.device = "cpu"


@dataclass(frozen=True)
class ScoredTile:
    """One tile's rasters on the HR grid: the SR, its uncertainty (per-pixel std over samples; None
    without several samples) and its metric maps by kind."""

    tile_id: str
    sr: GeoRaster
    uncertainty: GeoRaster | None = None
    maps: Mapping[str, GeoRaster] = field(default_factory=dict)

    def rasters(self) -> dict[str, GeoRaster]:
        """``{"sr": ..., "uncertainty": ... (when there is one), <map kind>: ...}``."""
        out = {"sr": self.sr}
        if self.uncertainty is not None:
            out["uncertainty"] = self.uncertainty
        out.update(self.maps)
        return out


@dataclass(frozen=True)
class Scored:
    """What :func:`score_pair` returns: the metric rows of every tile, and each tile's rasters."""

    rows: tuple[MetricRow, ...]
    tiles: tuple[ScoredTile, ...]


def _stack(rasters: Sequence[GeoRaster]) -> np.ndarray:
    return np.stack([np.asarray(r.array, dtype=np.float32) for r in rasters])


def _mean_and_spread(samples: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(N, S, C, H, W) samples -> their per-pixel mean (N, C, H, W), std (None when S == 1), and S."""
    t = torch.as_tensor(samples).float().cpu()
    if t.ndim != 5:
        raise ConfigError(f"samples must be (tiles, samples, bands, rows, cols), got {tuple(t.shape)}")
    std = t.std(dim=1, unbiased=False).numpy() if t.shape[1] > 1 else None
    return t.mean(dim=1).numpy(), std, int(t.shape[1])


def _on_grid(hr: GeoRaster, array: np.ndarray, tags: Mapping[str, str] | None, description: str) -> GeoRaster:
    """``array`` as a raster on ``hr``'s grid, with its mask."""
    return hr.replace(array=array, tags={**(tags or {}), "description": description})


def score_pair(
    evaluator: Evaluator,
    hr: Sequence[GeoRaster],
    sr: Sequence[GeoRaster] | None = None,
    *,
    samples: np.ndarray | torch.Tensor | None = None,
    lr: Sequence[GeoRaster] | None = None,
    tile_ids: Sequence[str],
    scale: int | None = None,
    maps: Sequence[str] = (),
    map_options: MapOptions = MapOptions(),
    tags: Mapping[str, str] | None = None,
) -> Scored:
    """Score SR tiles against their HR references (and LR inputs); compute their metric maps.

    Give either ``sr`` (one raster per tile, on its HR grid) or ``samples`` ((tiles, samples, bands,
    rows, cols): the SR is their per-pixel mean and, with several samples, the uncertainty their
    per-pixel std; the rasters take the HR tile's grid and mask, plus ``tags``). Every tile is scored
    with ``evaluator`` in one call over the pixels valid in both SR and HR; ``scale`` as in
    :meth:`Evaluator.score_arrays`. Maps of the kinds ``maps`` are computed for every tile with
    ``map_options``. Inputs are not checked against each other here: callers that read them from
    files check them first with :func:`mindgap_core.metrics.engine.validate_pair`, naming the files.
    """
    if (sr is None) == (samples is None):
        raise ConfigError("score_pair takes the SR rasters or the samples (exactly one of them)")
    tile_ids = [str(t) for t in tile_ids]
    if len(tile_ids) != len(hr) or len(set(tile_ids)) != len(tile_ids):
        raise ConfigError(f"{len(hr)} HR tiles need as many distinct tile ids, got {tile_ids}")
    spread: list[GeoRaster | None] = [None] * len(hr)
    if samples is not None:
        sr_array, std, count = _mean_and_spread(samples)
        sr = [_on_grid(h, sr_array[i], tags, f"SR: per-pixel mean of {count} samples")
              for i, h in enumerate(hr)]
        if std is not None:
            spread = [_on_grid(h, std[i], tags, f"uncertainty: per-pixel std of {count} samples")
                      for i, h in enumerate(hr)]
    else:
        sr_array = _stack(sr)
    if len(sr) != len(hr) or (lr is not None and len(lr) != len(hr)):
        raise ConfigError(f"{len(hr)} HR tiles need as many SR (and LR) tiles")
    valid = np.stack([s.valid & h.valid for s, h in zip(sr, hr, strict=True)])
    rows = evaluator.score_arrays(
        sr_array, _stack(hr), None if lr is None else _stack(lr), band_names=hr[0].band_names,
        tile_ids=tile_ids, valid=valid, scale=scale,
        samples=None if samples is None else torch.as_tensor(samples).float().cpu().numpy(),
    )
    tiles = []
    for tile_id, s, h, u in zip(tile_ids, sr, hr, spread, strict=True):
        found = (metric_maps(s, h, maps, data_range=map_options.data_range,
                             hist_match=map_options.hist_match, lpips_model=evaluator.lpips_model,
                             lpips_sat_model=evaluator.lpips_sat_model, device=map_options.device)
                 if maps else {})
        tiles.append(ScoredTile(tile_id, s, u, found))
    return Scored(tuple(rows), tuple(tiles))


def store_rows(
    rows: Iterable[MetricRow],
    *,
    fields: Mapping[str, Any],
    split: Mapping[str, str],
    options: Mapping[str, Any],
    paths: Mapping[str, Mapping[str, str]] | None = None,
) -> pd.DataFrame:
    """Metric rows as results-store rows (``mindgap_core/store/schema.py``), one per metric row.

    ``fields``: the columns every row shares (``run_id``, ``experiment``, ``model``, ``method``,
    ``regime``, ``train_domain``, ``train_blocks``, ``test_domain``); ``split``: tile id -> split;
    ``options``: added to each row's own options (samples, steps, seed); ``paths``: tile id ->
    store-relative paths under ``"sr"``, ``"uncertainty"`` and a metric's name (its map).
    """
    paths = paths or {}
    records = []
    for row in rows:
        files = paths.get(row.tile_id, {})
        records.append({
            **fields, "tile_id": row.tile_id, "split": split[row.tile_id], "band": row.band,
            "metric": row.metric, "aggregate": "mean", "value": float(row.value),
            "higher_better": METRICS[row.metric].higher_better,
            "options": json.dumps({**dict(row.options), **options}, sort_keys=True),
            "sr_path": files.get("sr", ""), "uncertainty_path": files.get("uncertainty", ""),
            "map_path": files.get(row.metric, ""),
        })
    return pd.DataFrame.from_records(records)


def write_rasters(
    rasters: Mapping[str, GeoRaster], dest: Callable[[str], Path], *, half_float: bool = False
) -> dict[str, Path]:
    """Write each raster as a COG (atomically) at ``dest(kind)``; returns kind -> path.

    ``half_float``: 16-bit floats, for display products only (see :func:`mindgap_core.io.write_cog`).
    """
    return {kind: write_cog(raster, dest(kind), half_float=half_float) for kind, raster in rasters.items()}
