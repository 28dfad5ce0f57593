"""The domain gap: paired over tiles, signed so that negative means worse on the target domain, with
cluster-robust inference over spatial blocks (:mod:`mindgap_core.analysis.inference`).

For metric k, model group m, on the tiles scored in both test domains:

* ``gap`` = mean(target) − mean(source) for higher-better metrics (PSNR, SSIM, cPSNR) and
  mean(source) − mean(target) for lower-better ones (LPIPS-Sat, SAM, ERGAS); its CI and the two-sided
  t-test p come from the spatial blocks of the tiles (``n_units`` blocks, ``ci_method`` in words);
* ``excess_gap`` = the group's gap minus the reference method's (bicubic's) gap on the same tiles:
  negative = more fragile than interpolation, positive = copes better than interpolation;
* ``ratio`` = mean(target) / mean(source) of an error-type metric (lower-better, zero = perfect; for
  PSNR of the per-tile MSE, exactly 10^(−PSNR/10) up to the data range, which cancels), CI on the log
  scale. No relative number for dB or similarity metrics (a percentage of dB means nothing);
* ``p_adjusted`` / ``excess_p_adjusted``: Holm over every test of the returned table (gap and excess);
* ``verdict`` / ``excess_verdict``: ``inconclusive`` when the CI includes 0 or the Holm-adjusted p is
  not below 1 − ci (see :func:`verdicts`).

Adapter pipelines (an LR adapter before an SR model, regime ``"<regime>+<adapter>"``) are designed for
the cross-sensor input only: they never appear as gap rows (see
:mod:`mindgap_core.attribution.remedies` for how they are scored).

The source domain defaults to ``synthetic``; the target to the cross-sensor domain present
(``real_cross_sensor`` first, then ``simulated_cross_sensor``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mindgap_core.analysis.blocks import BlockMap, block_map
from mindgap_core.analysis.inference import (
    Clusters,
    check_interval,
    cluster_mean,
    cluster_ratio,
    holm,
    unit_rng,
)
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.experiments.spec import is_adapter_regime
from mindgap_core.store import views

DEFAULT_GROUP = ("method", "regime", "metric")
#: target domains tried in this order when none is named
CROSS_SENSOR_DOMAINS = ("real_cross_sensor", "simulated_cross_sensor")
#: the untrained baseline every model's gap is compared with (the excess gap)
REFERENCE_METHOD = "bicubic"
#: columns that say which model a row is (the excess gap pairs a row with the reference on all others)
MODEL_KEYS = ("model", "method", "regime", "train_domain", "train_blocks")
INCONCLUSIVE = "inconclusive"
UNIT_COLUMNS = ("n_tiles", "n_units", "unit", "units")
STAT_COLUMNS = (
    "source_domain", "target_domain", *UNIT_COLUMNS, "mean_source", "mean_target", "gap", "gap_ci_low",
    "gap_ci_high", "p_value", "p_adjusted", "verdict", "ratio_of", "ratio", "ratio_ci_low", "ratio_ci_high",
    "excess_gap", "excess_ci_low", "excess_ci_high", "excess_p", "excess_p_adjusted", "excess_verdict",
    "ci_method", "higher_better",
)


def choose_target_domain(domains: Sequence[str], source_domain: str, target_domain: str | None) -> str:
    """The target domain: the one named (checked), else the cross-sensor domain present."""
    if source_domain not in domains:
        raise InputError("results", f"no rows in the source domain {source_domain!r} (found {list(domains)})")
    if target_domain is not None:
        if target_domain not in domains:
            problem = f"no rows in the target domain {target_domain!r} (found {list(domains)})"
            raise InputError("results", problem)
        return target_domain
    for name in CROSS_SENSOR_DOMAINS:
        if name in domains:
            return name
    others = [d for d in domains if d != source_domain]
    if len(others) == 1:
        return others[0]
    raise ConfigError(f"name the target domain: the results hold {list(domains)}")


def ratio_metric(metric: str) -> str:
    """What the ``ratio`` column of a metric's rows is a ratio of: ``"mse"`` for PSNR, the metric itself
    for an error-type metric (lower-better, zero = perfect), ``""`` for none (dB and similarity)."""
    from mindgap_core.metrics.registry import METRICS

    if metric == "psnr":
        return "mse"
    spec = METRICS.get(metric)
    return metric if spec is not None and not spec.higher_better and spec.value_range[0] == 0.0 else ""


def mse_from_psnr(psnr: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Per-tile MSE from PSNR (dB): data_range² · 10^(−PSNR/10), the exact inverse of the PSNR formula
    (:func:`mindgap_core.metrics.pixel.psnr_from_mse`) for PSNR below the engine's 100 dB cap."""
    return data_range**2 * np.power(10.0, -np.asarray(psnr, dtype=np.float64) / 10.0)


def _ratio_inputs(metric: str, source: np.ndarray, target: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    kind = ratio_metric(metric)
    if kind == "mse":
        return mse_from_psnr(target), mse_from_psnr(source)
    return (target, source) if kind else None


def verdicts(low: np.ndarray, high: np.ndarray, p_adjusted: np.ndarray, *, ci: float = 0.95,
             negative: str = "worse", positive: str = "better") -> np.ndarray:
    """Per row: ``negative`` / ``positive`` when the CI excludes 0 on that side and the Holm-adjusted p is
    below 1 − ci; :data:`INCONCLUSIVE` otherwise; ``"no CI"`` when there is no interval."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    p = np.asarray(p_adjusted, dtype=float)
    significant = np.isfinite(p) & (p < 1.0 - ci)
    out = np.where(significant & (high < 0), negative,
                   np.where(significant & (low > 0), positive, INCONCLUSIVE))
    return np.where(np.isfinite(low) & np.isfinite(high), out, "no CI").astype(object)


def is_inconclusive(table: pd.DataFrame, column: str = "verdict") -> pd.Series:
    """Rows of a gap (or remedy / attribution) table whose ``column`` verdict is not a conclusion."""
    return table[column].isin([INCONCLUSIVE, "no CI"])


def _paired_tiles(
    con: Any, *, source_domain: str, target_domain: str | None, group: Sequence[str],
    filters: Mapping[str, Any] | None, metric: str | Sequence[str] | None, split: str | None,
) -> tuple[pd.DataFrame, str]:
    """The tile pairs of :func:`views.paired_tiles` without adapter pipelines, and the target domain.

    Adapter pipelines have no synthetic-input gap (an adapter is designed for cross-sensor input only).
    When ``group`` pools several regimes, each regime's pairs are averaged per tile first.
    """
    flt = views.merge_filters(filters, metric=metric, split=split)
    target = choose_target_domain(views.domains_present(con, flt), source_domain, target_domain)
    with_regime = list(dict.fromkeys([*group, "regime"]))
    pairs = views.paired_tiles(con, source_domain=source_domain, target_domain=target, group=with_regime,
                               filters=flt)
    pairs = pairs[~pairs["regime"].map(is_adapter_regime).astype(bool)]
    if "regime" not in group:
        keys = [*views.gap_keys(group), "tile_id"]
        agg = {"source": "mean", "target": "mean", "higher_better": "first"}
        pairs = pairs.groupby(keys, dropna=False, sort=False, as_index=False).agg(agg)
    return pairs, target


@dataclass(frozen=True)
class TileSetGroups:
    """Groups of per-tile rows, each with its rows ordered by tile id, clustered by identical tile set."""

    keys: list[tuple[Any, ...]]  # one key tuple per group, in sorted group order
    rows: list[np.ndarray]  # per group: positions in the frame, ordered by tile id
    clusters: dict[bytes, list[int]]  # tile set -> the groups that have exactly these tiles
    tile_ids: dict[bytes, list[str]]  # tile set -> its sorted tile ids

    def columns(self, values: np.ndarray, members: Sequence[int]) -> np.ndarray:
        """Per-row ``values`` of the frame as a (tiles, len(members)) matrix: one column per group."""
        return np.column_stack([values[self.rows[i]] for i in members])

    def table(self, keys: Sequence[str], stats: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
        """One row per group: its key columns and its ``stats``."""
        records = [
            {**dict(zip(keys, key, strict=True)), **stat} for key, stat in zip(self.keys, stats, strict=True)
        ]
        table = pd.DataFrame.from_records(records, columns=columns)
        types = {"train_blocks": "Int64", "n_tiles": "int64", "n_units": "int64", "higher_better": "bool"}
        return table.astype({c: t for c, t in types.items() if c in table})


def group_by_tile_set(frame: pd.DataFrame, keys: Sequence[str]) -> TileSetGroups:
    """Group ``frame`` (one row per key × tile) by ``keys``; cluster groups scored on the same tiles."""
    codes, uniques = pd.factorize(frame["tile_id"], sort=True)
    uniques = np.asarray(uniques, dtype=object)
    key_list, rows = [], []
    clusters: dict[bytes, list[int]] = {}
    tile_ids: dict[bytes, list[str]] = {}
    for key, idx in frame.groupby(list(keys), dropna=False, sort=True).indices.items():
        idx = idx[np.argsort(codes[idx], kind="stable")]
        tiles = codes[idx]
        signature = tiles.tobytes()
        clusters.setdefault(signature, []).append(len(rows))
        if signature not in tile_ids:
            tile_ids[signature] = uniques[tiles].tolist()
        key_list.append(key if isinstance(key, tuple) else (key,))
        rows.append(idx)
    return TileSetGroups(key_list, rows, clusters, tile_ids)


@dataclass(frozen=True)
class Inference:
    """How every CI of one table is computed: the units, the interval, its level, bootstrap settings."""

    blocks: BlockMap
    ci: float = 0.95
    interval: str = "t"
    n_boot: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        check_interval(self.ci, self.interval)

    def units(self, tile_ids: Sequence[str]) -> tuple[Clusters, dict[str, Any]]:
        """The units of ``tile_ids`` and the table columns that report them."""
        clusters = self.blocks.clusters(tile_ids)
        info = {"n_tiles": len(tile_ids), "n_units": clusters.n_units, "unit": clusters.unit,
                "units": ",".join(self.blocks.unit_ids(tile_ids)) if clusters.unit == "block" else "",
                "ci_method": clusters.describe(self.interval, self.n_boot)}
        return clusters, info

    def mean(self, values: np.ndarray, clusters: Clusters, tile_ids: Sequence[str]):
        """:func:`cluster_mean` with this table's settings (bootstrap seeded by the tiles)."""
        return cluster_mean(values, clusters, ci=self.ci, interval=self.interval, n_boot=self.n_boot,
                            rng=unit_rng(self.seed, tile_ids))

    def ratio(self, numerator: np.ndarray, denominator: np.ndarray, clusters: Clusters,
              tile_ids: Sequence[str]):
        """:func:`cluster_ratio` with this table's settings."""
        return cluster_ratio(numerator, denominator, clusters, ci=self.ci, interval=self.interval,
                             n_boot=self.n_boot, rng=unit_rng(self.seed, tile_ids))


def _reference_of(keys: Sequence[str], group_keys: list[tuple[Any, ...]], reference_method: str | None
                  ) -> dict[int, list[int]]:
    """group -> the reference-method groups that match it on every non-model key."""
    if reference_method is None or "method" not in keys:
        return {}
    method_at = list(keys).index("method")
    shared = [i for i, k in enumerate(keys) if k not in MODEL_KEYS]
    refs: dict[tuple[Any, ...], list[int]] = {}
    for g, key in enumerate(group_keys):
        if key[method_at] == reference_method:
            refs.setdefault(tuple(key[i] for i in shared), []).append(g)
    return {g: refs[tuple(key[i] for i in shared)] for g, key in enumerate(group_keys)
            if key[method_at] != reference_method and tuple(key[i] for i in shared) in refs}


def gap_from_pairs(
    pairs: pd.DataFrame, keys: Sequence[str], inference: Inference, *,
    reference_method: str | None = REFERENCE_METHOD,
) -> pd.DataFrame:
    """Gap statistics per ``keys`` group of paired tile scores (see the module docstring).

    ``pairs`` has the ``keys`` columns, ``tile_id``, ``source``, ``target`` and ``higher_better`` (as
    from :func:`mindgap_core.store.views.paired_tiles`), one row per group × tile; ``keys`` must include
    ``metric``. The Holm adjustment runs over the rows returned.
    """
    keys = list(keys)
    columns = [*keys, *[c for c in STAT_COLUMNS if c not in ("source_domain", "target_domain")]]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    groups = group_by_tile_set(pairs, keys)
    metric_at = keys.index("metric")
    source_all = pairs["source"].to_numpy(float)
    target_all = pairs["target"].to_numpy(float)
    hb_all = pairs["higher_better"].to_numpy(bool)
    out: list[dict[str, Any]] = [{} for _ in groups.keys]
    diffs: list[tuple[np.ndarray, np.ndarray]] = [(np.array([]), np.array([]))] * len(groups.keys)
    for signature, members in groups.clusters.items():
        tiles = groups.tile_ids[signature]
        clusters, info = inference.units(tiles)
        source = groups.columns(source_all, members)
        target = groups.columns(target_all, members)
        hb = np.array([hb_all[groups.rows[i][0]] for i in members])
        diff = (target - source) * np.where(hb, 1.0, -1.0)
        est = inference.mean(diff, clusters, tiles)
        for j, i in enumerate(members):
            metric = str(groups.keys[i][metric_at])
            ratio = (np.nan, np.nan, np.nan)
            parts = _ratio_inputs(metric, source[:, j], target[:, j])
            if parts is not None:
                ratio = tuple(float(v[0]) for v in inference.ratio(*parts, clusters, tiles))
            diffs[i] = (np.asarray(tiles, dtype=object), diff[:, j])
            out[i] = {
                **info, "mean_source": source[:, j].mean(), "mean_target": target[:, j].mean(),
                "gap": est.mean[j], "gap_ci_low": est.low[j], "gap_ci_high": est.high[j], "p_value": est.p[j],
                "ratio_of": ratio_metric(metric), "ratio": ratio[0], "ratio_ci_low": ratio[1],
                "ratio_ci_high": ratio[2], "higher_better": bool(hb[j]),
            }
    for i, refs in _reference_of(keys, groups.keys, reference_method).items():
        tiles, diff = diffs[i]
        reference = np.zeros(len(tiles))
        for r in refs:  # several reference groups (e.g. repeated bicubic models): their mean
            _, mine, theirs = np.intersect1d(tiles, diffs[r][0], assume_unique=True, return_indices=True)
            keep = np.zeros(len(tiles), dtype=bool)
            keep[mine] = True
            reference = np.where(keep, reference, np.nan)
            reference[mine] += diffs[r][1][theirs] / len(refs)
        common = np.isfinite(reference)
        if not common.any():
            continue
        common_tiles = list(tiles[common])
        clusters, _ = inference.units(common_tiles)
        est = inference.mean(diff[common] - reference[common], clusters, common_tiles)
        out[i].update(excess_gap=est.mean[0], excess_ci_low=est.low[0], excess_ci_high=est.high[0],
                      excess_p=est.p[0])
    table = groups.table(keys, out, columns)
    return adjust_table(table, ci=inference.ci)


def adjust_table(table: pd.DataFrame, *, ci: float = 0.95) -> pd.DataFrame:
    """Holm-adjusted p-values over every gap and excess-gap test of ``table`` (one family), and verdicts."""
    p = np.concatenate([table["p_value"].to_numpy(float), table["excess_p"].to_numpy(float)])
    adjusted = holm(p)
    n = len(table)
    table = table.assign(p_adjusted=adjusted[:n], excess_p_adjusted=adjusted[n:])
    table["verdict"] = verdicts(table["gap_ci_low"], table["gap_ci_high"], table["p_adjusted"], ci=ci)
    table["excess_verdict"] = verdicts(table["excess_ci_low"], table["excess_ci_high"],
                                       table["excess_p_adjusted"], ci=ci, negative="more fragile",
                                       positive="less fragile")
    table.loc[table["excess_p"].isna() & table["excess_gap"].isna(), "excess_verdict"] = ""
    return table


def target_minus_source(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (rows of :func:`gap_table`) with ``change``, ``change_ci_low``, ``change_ci_high``: the
    paired difference target − source and its CI for every metric, whatever its direction (``gap`` is
    source − target for lower-better metrics)."""
    sign = table["higher_better"].map({True: 1.0, False: -1.0}).astype(float)
    low, high = sign * table["gap_ci_low"], sign * table["gap_ci_high"]
    return table.assign(change=sign * table["gap"], change_ci_low=low.where(sign > 0, high),
                        change_ci_high=high.where(sign > 0, low))


def gap_table(
    data: Any,
    *,
    metric: str | Sequence[str] | None = None,
    group: Sequence[str] = DEFAULT_GROUP,
    source_domain: str = "synthetic",
    target_domain: str | None = None,
    split: str | None = "test",
    filters: Mapping[str, Any] | None = None,
    blocks: BlockMap | Mapping[str, str] | str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    interval: str = "t",
    reference_method: str | None = REFERENCE_METHOD,
) -> pd.DataFrame:
    """Gap statistics per ``group`` (+ band, aggregate, train_blocks) between two test domains.

    ``data``: a :class:`ResultsStore`, a store folder, a DuckDB connection with its views, or result
    rows. Tiles are paired by ``tile_id`` (only tiles present in both domains). ``blocks``: the tiles'
    spatial blocks (default: from the store's manifests, :func:`mindgap_core.analysis.blocks.block_map`;
    without any, every tile is its own unit and ``ci_method`` says so). Columns: the keys, then
    :data:`STAT_COLUMNS` (see the module docstring). ``interval``: ``"t"`` or ``"bootstrap"``
    (:mod:`mindgap_core.analysis.inference`). Empty when no tile is paired.
    """
    inference = Inference(block_map(data, blocks), ci=ci, interval=interval, n_boot=n_boot, seed=seed)
    group = list(dict.fromkeys([*group, "metric"]))
    with views.connected(data) as con:
        pairs, target = _paired_tiles(
            con, source_domain=source_domain, target_domain=target_domain, group=group, filters=filters,
            metric=metric, split=split,
        )
    keys = views.gap_keys(group)
    table = gap_from_pairs(pairs, keys, inference, reference_method=reference_method)
    table.insert(len(keys), "source_domain", source_domain)
    table.insert(len(keys) + 1, "target_domain", target)
    return table


def train_test_matrix(
    data: Any,
    *,
    metric: str | Sequence[str] | None = None,
    group: Sequence[str] = DEFAULT_GROUP,
    split: str | None = "test",
    filters: Mapping[str, Any] | None = None,
    include_scaling: bool = False,
    blocks: BlockMap | Mapping[str, str] | str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    interval: str = "t",
) -> pd.DataFrame:
    """Mean score per ``group`` (+ band, aggregate) × train domain × test domain, with cluster-robust CIs.

    Long form (pivot ``train_domain`` × ``test_domain`` on ``mean`` for the matrix). Rows of the
    diversity-scaling series (``train_blocks`` set) are left out unless ``include_scaling``.
    Columns: the keys, ``train_domain``, ``test_domain``, then those of :func:`mean_table`.
    """
    flt = views.merge_filters(filters, metric=metric, split=split)
    if not include_scaling:
        flt["train_blocks"] = None
    keys = list(dict.fromkeys([*group, "band", "aggregate", "train_domain", "test_domain"]))
    return mean_table(tile_means(data, keys, flt), keys, blocks=block_map(data, blocks), n_boot=n_boot,
                      seed=seed, ci=ci, interval=interval)


def tile_means(data: Any, keys: Sequence[str], filters: Mapping[str, Any]) -> pd.DataFrame:
    """Per ``keys`` × tile mean value (see :func:`mindgap_core.store.views.tile_means`)."""
    with views.connected(data) as con:
        return views.tile_means(con, keys=keys, filters=filters)


MEAN_COLUMNS = (*UNIT_COLUMNS, "mean", "ci_low", "ci_high", "ci_method", "higher_better")


def mean_table(
    tiles: pd.DataFrame, keys: Sequence[str], *, blocks: BlockMap | Mapping[str, str] | str | None = None,
    n_boot: int = 2000, seed: int = 0, ci: float = 0.95, interval: str = "t",
) -> pd.DataFrame:
    """Mean over tiles per ``keys`` group with a cluster-robust CI, from per-tile values (``value``
    column, as from :func:`tile_means`). ``blocks``: the tiles' spatial blocks (a :class:`BlockMap`,
    mapping or manifest; None: tiles are their own units). Columns: the keys, then :data:`MEAN_COLUMNS`."""
    inference = Inference(block_map(None, blocks), ci=ci, interval=interval, n_boot=n_boot, seed=seed)
    keys = list(keys)
    columns = [*keys, *MEAN_COLUMNS]
    if tiles.empty:
        return pd.DataFrame(columns=columns)
    groups = group_by_tile_set(tiles, keys)
    values_all = tiles["value"].to_numpy(float)
    hb_all = tiles["higher_better"].to_numpy(bool)
    out: list[dict[str, Any]] = [{} for _ in groups.keys]
    for signature, members in groups.clusters.items():
        tile_ids = groups.tile_ids[signature]
        clusters, info = inference.units(tile_ids)
        est = inference.mean(groups.columns(values_all, members), clusters, tile_ids)
        for j, i in enumerate(members):
            out[i] = {**info, "mean": est.mean[j], "ci_low": est.low[j], "ci_high": est.high[j],
                      "higher_better": bool(hb_all[groups.rows[i][0]])}
    return groups.table(keys, out, columns)
