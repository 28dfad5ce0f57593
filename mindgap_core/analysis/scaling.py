"""Diversity-scaling curves: score vs number of distinct training blocks, with bootstrap CIs over tiles.

Rows of the scaling series carry the block count in the ``train_blocks`` column (null elsewhere; see
:mod:`mindgap_core.store.schema`). The same test tiles are scored at every block count, so the trend
(slope per doubling of blocks) is estimated paired over tiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mindgap_core.analysis.bootstrap import mean_bootstrap, tile_set_rng
from mindgap_core.analysis.gap import DEFAULT_GROUP, _metric_filters, _tile_means, mean_table


def _scaling_tiles(
    data: Any, group: Sequence[str], metric: Any, test_domain: Any, split: str | None, filters: Any
) -> tuple[list[str], pd.DataFrame]:
    """The curve keys (``group`` + band, aggregate, test domain) and the per-tile means of the rows
    that have a block count."""
    keys = list(dict.fromkeys([*group, "band", "aggregate", "test_domain"]))
    flt = _metric_filters(filters, metric, split)
    if test_domain is not None:
        flt["test_domain"] = test_domain
    tiles = _tile_means(data, [*keys, "train_blocks"], flt)
    return keys, tiles.dropna(subset=["train_blocks"]).astype({"train_blocks": "int64"})


def scaling_curve(
    data: Any,
    *,
    metric: str | Sequence[str] | None = None,
    group: Sequence[str] = DEFAULT_GROUP,
    test_domain: str | Sequence[str] | None = None,
    split: str | None = "test",
    filters: Mapping[str, Any] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    interval: str = "percentile",
) -> pd.DataFrame:
    """Mean score per ``group`` (+ band, aggregate, test domain) and block count, with a bootstrap CI.

    Columns: the keys, ``train_blocks``, ``n_tiles``, ``mean``, ``ci_low``, ``ci_high``, ``higher_better``;
    sorted by block count within each curve. Empty when no row has ``train_blocks``.
    """
    keys, tiles = _scaling_tiles(data, group, metric, test_domain, split, filters)
    table = mean_table(tiles, [*keys, "train_blocks"], n_boot=n_boot, seed=seed, ci=ci, interval=interval)
    return table.sort_values([*keys, "train_blocks"], kind="stable").reset_index(drop=True)


def scaling_trend(
    data: Any,
    *,
    metric: str | Sequence[str] | None = None,
    group: Sequence[str] = DEFAULT_GROUP,
    test_domain: str | Sequence[str] | None = None,
    split: str | None = "test",
    filters: Mapping[str, Any] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    interval: str = "percentile",
) -> pd.DataFrame:
    """Least-squares slope of the mean score on log2(blocks) per curve, with a paired bootstrap CI.

    Uses the tiles scored at every block count of the curve. ``improvement_per_doubling`` is the slope
    signed so that positive means better with more diverse training data (the paper's claim 4 says
    it is not, for models trained on real pairs). Columns: the keys, ``n_levels``, ``n_tiles``,
    ``slope_per_doubling``, ``improvement_per_doubling``, ``improvement_ci_low``, ``improvement_ci_high``,
    ``higher_better``. Curves with fewer than two block counts are left out.
    """
    keys, tiles = _scaling_tiles(data, group, metric, test_domain, split, filters)
    columns = [*keys, "n_levels", "n_tiles", "slope_per_doubling", "improvement_per_doubling",
               "improvement_ci_low", "improvement_ci_high", "higher_better"]
    records = []
    for key, frame in tiles.groupby(keys, dropna=False, sort=True):
        wide = frame.pivot_table(index="tile_id", columns="train_blocks", values="value", aggfunc="mean")
        wide = wide.dropna().sort_index()
        if wide.shape[1] < 2 or wide.empty:
            continue
        x = np.log2(wide.columns.to_numpy(float))
        weights = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
        per_tile = wide.to_numpy(float) @ weights  # each tile's contribution: slope = mean over tiles
        slope, low, high = mean_bootstrap(
            per_tile, n_boot=n_boot, rng=tile_set_rng(seed, list(wide.index)), ci=ci, interval=interval
        )
        sign = 1.0 if bool(frame["higher_better"].iloc[0]) else -1.0
        bounds = (low[0], high[0]) if sign > 0 else (-high[0], -low[0])
        key = key if isinstance(key, tuple) else (key,)
        records.append({
            **dict(zip(keys, key, strict=True)), "n_levels": wide.shape[1], "n_tiles": wide.shape[0],
            "slope_per_doubling": slope[0], "improvement_per_doubling": sign * slope[0],
            "improvement_ci_low": bounds[0], "improvement_ci_high": bounds[1],
            "higher_better": sign > 0,
        })
    return pd.DataFrame.from_records(records, columns=columns)
