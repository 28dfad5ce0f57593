"""Diversity scaling: score vs number of distinct training blocks K and vs number of training pairs N.

Rows of a scaling series carry K in ``train_blocks`` (null elsewhere, see :mod:`mindgap_core.store.schema`);
N comes from each model's ``training.json`` (``n_train_pairs``), found through the run's experiment
(:func:`scaling_design`), or is given. The models of one curve key (method, regime, metric, band,
aggregate, test domain) are split into series (:mod:`mindgap_core.train.scaling`):

* ``diversity``: models with the same N and different K (diversity at a fixed data size: the claim);
* ``size``: models with the same K and different N (the control: more data, same diversity);
* ``confounded``: when neither exists (e.g. ``--blocks-series``, where N grows with K, or N unknown),
  K across all models, labelled as confounding diversity with size.

The same test tiles are scored at every level, so a trend (least-squares slope per doubling of the
level) is estimated paired over tiles, with a cluster-robust CI over their spatial blocks
(:mod:`mindgap_core.analysis.inference`) and Holm-adjusted p over the trend table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mindgap_core.analysis.blocks import BlockMap, block_map
from mindgap_core.analysis.gap import DEFAULT_GROUP, UNIT_COLUMNS, Inference, mean_table, tile_means, verdicts
from mindgap_core.analysis.inference import holm
from mindgap_core.store import views

SERIES = ("diversity", "size", "confounded")
SERIES_LABELS = {
    "diversity": "more blocks, same number of training pairs",
    "size": "more training pairs, same blocks (control)",
    "confounded": "more blocks and more pairs (diversity and size confounded)",
}
DESIGN_COLUMNS = ("series", "factor", "level", "fixed")


def scaling_design(data: Any, design: Mapping[str, int] | None = None) -> dict[str, int]:
    """model name -> number of training pairs N: ``design`` if given, else from the ``training.json`` of
    every model of every run of a results store ({} for other data)."""
    if design is not None:
        return {str(k): int(v) for k, v in design.items()}
    from mindgap_core.analysis.training_logs import run_model_folders, training_info
    from mindgap_core.store.results import ResultsStore

    root = data.root if isinstance(data, ResultsStore) else data
    if not isinstance(root, str | Path) or not (Path(root) / "runs").is_dir():
        return {}
    pairs: dict[str, int] = {}
    for record in sorted((Path(root) / "runs").glob("[!.]*.json")):
        for name, folder in run_model_folders(root, record.stem).items():
            n = training_info(folder).get("n_train_pairs")
            if n is not None:
                pairs[name] = int(n)
    return pairs


def _series_of(models: pd.DataFrame) -> list[tuple[str, str, float, pd.DataFrame]]:
    """(series, factor, fixed value, its models with a ``level`` column) of one curve key's models
    (columns ``model``, ``train_blocks``, ``train_pairs``)."""
    found = []
    known = models.dropna(subset=["train_pairs"])
    for n, part in known.groupby("train_pairs", sort=True):
        if part["train_blocks"].nunique() >= 2:
            found.append(("diversity", "blocks", float(n), part.assign(level=part["train_blocks"])))
    for k, part in known.groupby("train_blocks", sort=True):
        if part["train_pairs"].nunique() >= 2:
            found.append(("size", "pairs", float(k), part.assign(level=part["train_pairs"])))
    if not found and models["train_blocks"].nunique() >= 2:
        found.append(("confounded", "blocks", np.nan, models.assign(level=models["train_blocks"])))
    return found


def _scaling_tiles(
    data: Any, group: Sequence[str], metric: Any, test_domain: Any, split: str | None, filters: Any,
    design: Mapping[str, int] | None,
) -> tuple[list[str], pd.DataFrame]:
    """The curve keys and, per series level, the per-tile means (columns of :data:`DESIGN_COLUMNS` added)."""
    keys = list(dict.fromkeys([*group, "band", "aggregate", "test_domain"]))
    flt = views.merge_filters(filters, metric=metric, split=split)
    if test_domain is not None:
        flt["test_domain"] = test_domain
    tiles = tile_means(data, [*keys, "model", "train_blocks"], flt).dropna(subset=["train_blocks"])
    tiles = tiles.astype({"train_blocks": "int64"})
    pairs = scaling_design(data, design)
    tiles["train_pairs"] = tiles["model"].map(pairs).astype(float)
    frames = []
    for _, part in tiles.groupby(keys, dropna=False, sort=True):
        models = part[["model", "train_blocks", "train_pairs"]].drop_duplicates(["model", "train_blocks"])
        for series, factor, fixed, chosen in _series_of(models):
            rows = part.merge(chosen[["model", "train_blocks", "level"]], on=["model", "train_blocks"])
            frames.append(rows.assign(series=series, factor=factor, fixed=fixed))
    columns = [*keys, "model", "train_blocks", "train_pairs", "tile_id", "value", "higher_better", "level",
               *DESIGN_COLUMNS]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return keys, frame


def scaling_curve(
    data: Any,
    *,
    metric: str | Sequence[str] | None = None,
    group: Sequence[str] = DEFAULT_GROUP,
    test_domain: str | Sequence[str] | None = None,
    split: str | None = "test",
    filters: Mapping[str, Any] | None = None,
    design: Mapping[str, int] | None = None,
    blocks: BlockMap | Mapping[str, str] | str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    interval: str = "t",
) -> pd.DataFrame:
    """Mean score per curve key, series and level, with a cluster-robust CI.

    ``design``: model -> training pairs (default :func:`scaling_design`). Columns: the keys,
    ``series``, ``factor`` (``blocks`` or ``pairs``), ``fixed`` (the other factor's value; NaN for
    ``confounded``), ``level``, ``train_blocks``, ``train_pairs``, then those of
    :func:`~mindgap_core.analysis.gap.mean_table`; sorted by level within each series. A model shared
    by two series appears in both. Empty when no row has ``train_blocks``.
    """
    keys, tiles = _scaling_tiles(data, group, metric, test_domain, split, filters, design)
    curve_keys = [*keys, "series", "factor", "fixed", "level", "train_blocks", "train_pairs"]
    table = mean_table(tiles, curve_keys, blocks=block_map(data, blocks), n_boot=n_boot, seed=seed, ci=ci,
                       interval=interval)
    return table.sort_values([*keys, "series", "fixed", "level"], kind="stable").reset_index(drop=True)


TREND_COLUMNS = (
    *DESIGN_COLUMNS[:2], "fixed", "n_levels", "levels", *UNIT_COLUMNS, "slope_per_doubling",
    "improvement_per_doubling", "improvement_ci_low", "improvement_ci_high", "p_value", "p_adjusted",
    "verdict", "ci_method", "higher_better",
)


def scaling_trend(
    data: Any,
    *,
    metric: str | Sequence[str] | None = None,
    group: Sequence[str] = DEFAULT_GROUP,
    test_domain: str | Sequence[str] | None = None,
    split: str | None = "test",
    filters: Mapping[str, Any] | None = None,
    design: Mapping[str, int] | None = None,
    blocks: BlockMap | Mapping[str, str] | str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    interval: str = "t",
) -> pd.DataFrame:
    """Least-squares slope of the mean score on log2(level) per curve key and series, with a paired,
    cluster-robust CI.

    Uses the tiles scored at every level of the series. ``improvement_per_doubling`` is the slope
    signed so that positive means better with more blocks (or pairs). Columns: the keys, then
    :data:`TREND_COLUMNS`; ``verdict`` is ``better`` / ``worse`` / ``inconclusive`` (CI and
    Holm-adjusted p over this table). Series with fewer than two levels are left out.
    """
    inference = Inference(block_map(data, blocks), ci=ci, interval=interval, n_boot=n_boot, seed=seed)
    keys, tiles = _scaling_tiles(data, group, metric, test_domain, split, filters, design)
    columns = [*keys, *TREND_COLUMNS]
    records = []
    for key, frame in tiles.groupby([*keys, "series", "fixed"], dropna=False, sort=True):
        wide = frame.pivot_table(index="tile_id", columns="level", values="value", aggfunc="mean")
        wide = wide.dropna().sort_index()
        if wide.shape[1] < 2 or wide.empty:
            continue
        x = np.log2(wide.columns.to_numpy(float))
        weights = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
        per_tile = wide.to_numpy(float) @ weights  # each tile's contribution: slope = mean over tiles
        tile_ids = list(wide.index)
        clusters, info = inference.units(tile_ids)
        est = inference.mean(per_tile, clusters, tile_ids)
        sign = 1.0 if bool(frame["higher_better"].iloc[0]) else -1.0
        bounds = (est.low[0], est.high[0]) if sign > 0 else (-est.high[0], -est.low[0])
        records.append({
            **dict(zip([*keys, "series", "fixed"], key, strict=True)), "factor": frame["factor"].iloc[0],
            "n_levels": wide.shape[1], "levels": ",".join(str(int(v)) for v in wide.columns), **info,
            "slope_per_doubling": est.mean[0], "improvement_per_doubling": sign * est.mean[0],
            "improvement_ci_low": bounds[0], "improvement_ci_high": bounds[1], "p_value": est.p[0],
            "higher_better": sign > 0,
        })
    table = pd.DataFrame.from_records(records, columns=columns)
    table["p_adjusted"] = holm(table["p_value"].to_numpy(float))
    table["verdict"] = verdicts(table["improvement_ci_low"], table["improvement_ci_high"],
                                table["p_adjusted"], ci=ci, negative="worse", positive="better")
    return table
