"""The domain gap: paired over tiles, signed so that negative means worse on the target (real) domain.

For metric k, method m, regime r, on the tiles scored in both test domains:

* ``gap`` = mean(target) − mean(source) for higher-better metrics (PSNR, SSIM, cPSNR) and
  mean(source) − mean(target) for lower-better ones (LPIPS, LPIPS-Sat, SAM, ERGAS);
* ``rel_gap_pct`` = 100 · gap / |mean(source)| (same sign rule);
* 95 % percentile CIs from a paired bootstrap over tiles; Wilcoxon signed-rank p-value.

The source domain defaults to ``synthetic``; the target to the cross-sensor domain present
(``real_cross_sensor`` first, then ``simulated_cross_sensor``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mindgap_core.analysis.bootstrap import mean_bootstrap, paired_gap_bootstrap, tile_set_rng, wilcoxon_p
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.store import views

DEFAULT_GROUP = ("method", "regime", "metric")
#: target domains tried in this order when none is named
CROSS_SENSOR_DOMAINS = ("real_cross_sensor", "simulated_cross_sensor")
STAT_COLUMNS = (
    "source_domain", "target_domain", "n_tiles", "mean_source", "mean_target", "gap", "gap_ci_low",
    "gap_ci_high", "rel_gap_pct", "rel_ci_low", "rel_ci_high", "wilcoxon_p", "higher_better",
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


def _metric_filters(
    filters: Mapping[str, Any] | None, metric: str | Sequence[str] | None, split: str | None
) -> dict[str, Any]:
    return views.merge_filters(filters, metric=metric, split=split)


def _paired_tiles(
    con: Any, *, source_domain: str, target_domain: str | None, group: Sequence[str],
    filters: Mapping[str, Any] | None, metric: str | Sequence[str] | None, split: str | None,
) -> tuple[pd.DataFrame, str]:
    """The tile pairs of :func:`views.paired_tiles` and the target domain chosen for them."""
    flt = _metric_filters(filters, metric, split)
    target = choose_target_domain(views.domains_present(con, flt), source_domain, target_domain)
    pairs = views.paired_tiles(
        con, source_domain=source_domain, target_domain=target, group=group, filters=flt
    )
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
        """One row per group: its key columns and its ``stats`` (``n_tiles`` int, ``higher_better`` bool)."""
        records = [
            {**dict(zip(keys, key, strict=True)), **stat} for key, stat in zip(self.keys, stats, strict=True)
        ]
        table = pd.DataFrame.from_records(records, columns=columns)
        return table.astype({"n_tiles": "int64", "higher_better": "bool"})


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


def _wilcoxon_columns(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Wilcoxon p per column; one vectorised scipy call where scipy's "auto" is asymptotic anyway."""
    n = source.shape[0]
    if n > 50 and np.all(np.any(target != source, axis=0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.asarray(stats.wilcoxon(target, source, axis=0).pvalue, dtype=float)
    return np.array([wilcoxon_p(source[:, j], target[:, j]) for j in range(source.shape[1])])


def gap_from_pairs(
    pairs: pd.DataFrame,
    keys: Sequence[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    interval: str = "percentile",
) -> pd.DataFrame:
    """Gap statistics per ``keys`` group of paired tile scores.

    ``pairs`` has the ``keys`` columns, ``tile_id``, ``source``, ``target`` and ``higher_better``
    (as from :func:`mindgap_core.store.views.paired_tiles`), one row per group × tile. Groups scored
    on the same tiles share their bootstrap resamples (one matrix product).
    """
    keys = list(keys)
    columns = [*keys, *[c for c in STAT_COLUMNS if c not in ("source_domain", "target_domain")]]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    groups = group_by_tile_set(pairs, keys)
    source_all = pairs["source"].to_numpy(float)
    target_all = pairs["target"].to_numpy(float)
    hb_all = pairs["higher_better"].to_numpy(bool)
    out: list[dict[str, Any]] = [{} for _ in groups.keys]
    for signature, members in groups.clusters.items():
        tiles = groups.tile_ids[signature]
        source = groups.columns(source_all, members)
        target = groups.columns(target_all, members)
        hb = np.array([hb_all[groups.rows[i][0]] for i in members])
        res = paired_gap_bootstrap(
            source, target, hb, n_boot=n_boot, rng=tile_set_rng(seed, tiles), ci=ci, interval=interval
        )
        p_values = _wilcoxon_columns(source, target)
        for j, i in enumerate(members):
            out[i] = {
                "n_tiles": len(tiles),
                "mean_source": source[:, j].mean(),
                "mean_target": target[:, j].mean(),
                "gap": res.gap[j], "gap_ci_low": res.gap_ci_low[j], "gap_ci_high": res.gap_ci_high[j],
                "rel_gap_pct": res.rel_gap_pct[j], "rel_ci_low": res.rel_ci_low[j],
                "rel_ci_high": res.rel_ci_high[j],
                "wilcoxon_p": p_values[j],
                "higher_better": bool(hb[j]),
            }
    return groups.table(keys, out, columns)


def gap_table(
    data: Any,
    *,
    metric: str | Sequence[str] | None = None,
    group: Sequence[str] = DEFAULT_GROUP,
    source_domain: str = "synthetic",
    target_domain: str | None = None,
    split: str | None = "test",
    filters: Mapping[str, Any] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    interval: str = "percentile",
) -> pd.DataFrame:
    """Gap statistics per ``group`` (+ band, aggregate, train_blocks) between two test domains.

    ``data``: a :class:`ResultsStore`, a store folder, a DuckDB connection with its views, or result
    rows. Tiles are paired by ``tile_id`` (only tiles present in both domains; ``n_tiles`` reports
    how many). Columns: the keys, ``source_domain``, ``target_domain``, ``n_tiles``, ``mean_source``,
    ``mean_target``, ``gap``, ``gap_ci_low``, ``gap_ci_high``, ``rel_gap_pct``, ``rel_ci_low``,
    ``rel_ci_high``, ``wilcoxon_p``, ``higher_better``. Empty when no tile is paired.
    ``interval``: ``"percentile"`` (default) or ``"expanded"`` (better coverage below ~30 tiles).
    """
    with views.connected(data) as con:
        pairs, target = _paired_tiles(
            con, source_domain=source_domain, target_domain=target_domain, group=group, filters=filters,
            metric=metric, split=split,
        )
    keys = views.gap_keys(group)
    table = gap_from_pairs(pairs, keys, n_boot=n_boot, seed=seed, ci=ci, interval=interval)
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
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    interval: str = "percentile",
) -> pd.DataFrame:
    """Mean score per ``group`` (+ band, aggregate) × train domain × test domain, with bootstrap CIs.

    Long form (pivot ``train_domain`` × ``test_domain`` on ``mean`` for the matrix). Rows of the
    diversity-scaling series (``train_blocks`` set) are left out unless ``include_scaling``.
    Columns: the keys, ``train_domain``, ``test_domain``, ``n_tiles``, ``mean``, ``ci_low``, ``ci_high``,
    ``higher_better``.
    """
    flt = _metric_filters(filters, metric, split)
    if not include_scaling:
        flt["train_blocks"] = None
    keys = list(dict.fromkeys([*group, "band", "aggregate", "train_domain", "test_domain"]))
    tiles = _tile_means(data, keys, flt)
    return mean_table(tiles, keys, n_boot=n_boot, seed=seed, ci=ci, interval=interval)


def _tile_means(data: Any, keys: Sequence[str], filters: Mapping[str, Any]) -> pd.DataFrame:
    with views.connected(data) as con:
        return views.tile_means(con, keys=keys, filters=filters)


def mean_table(
    tiles: pd.DataFrame,
    keys: Sequence[str],
    *,
    n_boot: int,
    seed: int,
    ci: float,
    interval: str = "percentile",
) -> pd.DataFrame:
    """Mean over tiles per ``keys`` group with a bootstrap CI, from per-tile values (``value`` column)."""
    keys = list(keys)
    columns = [*keys, "n_tiles", "mean", "ci_low", "ci_high", "higher_better"]
    if tiles.empty:
        return pd.DataFrame(columns=columns)
    groups = group_by_tile_set(tiles, keys)
    values_all = tiles["value"].to_numpy(float)
    hb_all = tiles["higher_better"].to_numpy(bool)
    out: list[dict[str, Any]] = [{} for _ in groups.keys]
    for signature, members in groups.clusters.items():
        tile_ids = groups.tile_ids[signature]
        values = groups.columns(values_all, members)
        mean, low, high = mean_bootstrap(
            values, n_boot=n_boot, rng=tile_set_rng(seed, tile_ids), ci=ci, interval=interval
        )
        for j, i in enumerate(members):
            out[i] = {
                "n_tiles": len(tile_ids), "mean": mean[j], "ci_low": low[j], "ci_high": high[j],
                "higher_better": bool(hb_all[groups.rows[i][0]]),
            }
    return groups.table(keys, out, columns)
