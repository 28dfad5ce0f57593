"""The domain gap broken down by a per-tile condition (Δt, brightness, NDVI, misregistration, simulator).

Conditions come from the store's ``conditions`` table (one record per tile × test domain). By default
the target domain's record of each tile is used (Δt and shift are properties of the cross-sensor
pair); tiles are binned on it and the paired gap of :mod:`mindgap_core.analysis.gap` is computed per bin.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mindgap_core.analysis.blocks import BlockMap, block_map
from mindgap_core.analysis.gap import DEFAULT_GROUP, STAT_COLUMNS, Inference, _paired_tiles, gap_from_pairs
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.store import schema as sch
from mindgap_core.store import views

#: numeric condition columns of the ``conditions`` table
CONDITION_NAMES = ("dt_days", "brightness", "ndvi_mean", "veg_fraction", "shift_px")
SIMULATOR_PREFIX = "simulator_params."


def condition_values(conditions: pd.DataFrame, by: str) -> pd.Series:
    """The numeric condition ``by`` per row: a column name or ``simulator_params.<name>``."""
    if by in CONDITION_NAMES:
        return pd.to_numeric(conditions[by], errors="coerce").astype(float)
    if by.startswith(SIMULATOR_PREFIX):
        name = by[len(SIMULATOR_PREFIX):]

        def extract(text: str) -> float:
            value = json.loads(text or "{}").get(name)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan

        return conditions["simulator_params"].map(extract).astype(float)
    raise ConfigError(f"unknown condition {by!r}; use one of {CONDITION_NAMES} or '{SIMULATOR_PREFIX}<name>'")


def bin_edges(values: np.ndarray, bins: int | Sequence[float]) -> np.ndarray:
    """Bin edges: explicit ``bins``, or ``bins`` quantile bins of ``values`` (ties merged)."""
    if isinstance(bins, int):
        if bins < 1:
            raise ConfigError(f"bins must be at least 1, got {bins}")
        edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
        return edges if edges.size > 1 else np.array([edges[0], edges[0]])
    edges = np.asarray(bins, dtype=float)
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ConfigError(f"bin edges must increase, got {list(bins)}")
    return edges


def breakdown(
    data: Any,
    *,
    by: str,
    bins: int | Sequence[float] = 4,
    metric: str | Sequence[str] | None = None,
    group: Sequence[str] = DEFAULT_GROUP,
    source_domain: str = "synthetic",
    target_domain: str | None = None,
    condition_domain: str | None = None,
    split: str | None = "test",
    filters: Mapping[str, Any] | None = None,
    conditions: pd.DataFrame | None = None,
    blocks: BlockMap | Mapping[str, str] | str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    interval: str = "t",
) -> pd.DataFrame:
    """The paired gap per bin of the tile condition ``by``.

    ``bins``: a number of quantile bins (over the tiles' values) or explicit edges. ``condition_domain``:
    whose condition record to use (default: the target domain). ``conditions``: condition rows to use
    instead of the store's table. Tiles without a value are left out. Columns: ``condition``, ``bin``
    (``"[lo, hi]"``), ``bin_low``, ``bin_high`` and those of :func:`~mindgap_core.analysis.gap.gap_table`
    (CIs over the blocks of each bin's tiles; Holm over the whole breakdown table).
    """
    inference = Inference(block_map(data, blocks), ci=ci, interval=interval, n_boot=n_boot, seed=seed)
    group = list(dict.fromkeys([*group, "metric"]))
    with views.connected(data) as con:
        pairs, target = _paired_tiles(
            con, source_domain=source_domain, target_domain=target_domain, group=group, filters=filters,
            metric=metric, split=split,
        )
        if conditions is None:
            cond = views.conditions(con)
        else:
            given = sch.validate_conditions(conditions, source="condition rows").to_pandas()
            cond = views.unique_conditions(given)
    domain = condition_domain or target
    cond = cond[cond["test_domain"] == domain]
    if cond.empty:
        raise InputError("conditions", f"no condition records for the test domain {domain!r}")
    values = condition_values(cond, by).to_numpy()
    cond = pd.DataFrame({"tile_id": cond["tile_id"].to_numpy(), "condition_value": values})
    cond = cond.dropna(subset=["condition_value"])
    pairs = pairs.merge(cond, on="tile_id", how="inner")
    keys = views.gap_keys(group)
    columns = ["condition", "bin", "bin_low", "bin_high", *keys, *STAT_COLUMNS]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    edges = bin_edges(cond.loc[cond["tile_id"].isin(pairs["tile_id"]), "condition_value"].to_numpy(), bins)
    index = np.searchsorted(edges, pairs["condition_value"].to_numpy(), side="right") - 1
    index = np.where(pairs["condition_value"].to_numpy() == edges[-1], len(edges) - 2, index)
    inside = (index >= 0) & (index < len(edges) - 1)
    pairs = pairs.loc[inside].assign(bin_index=index[inside])
    table = gap_from_pairs(pairs, ["bin_index", *keys], inference)
    low = edges[table["bin_index"].to_numpy(int)]
    high = edges[table["bin_index"].to_numpy(int) + 1]
    table = table.drop(columns="bin_index")
    table.insert(0, "condition", by)
    last = high == edges[-1]
    labels = [
        f"[{lo:.4g}, {hi:.4g}{']' if end else ')'}"
        for lo, hi, end in zip(low, high, last, strict=True)
    ]
    table.insert(1, "bin", labels)
    table.insert(2, "bin_low", low)
    table.insert(3, "bin_high", high)
    table.insert(4 + len(keys), "source_domain", source_domain)
    table.insert(5 + len(keys), "target_domain", target)
    return table[columns]
