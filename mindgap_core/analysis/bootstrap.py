"""Vectorised bootstrap over tiles, and the Wilcoxon signed-rank test.

A bootstrap replicate resamples tile indices with replacement; it is stored as a count matrix
``W`` (replicates × tiles), so the replicate means of many columns that share one tile set are a
single matrix product ``W @ X / n``. Percentile confidence intervals by default; ``"expanded"``
percentile intervals (Hesterberg 2015: percentile levels widened by the factor √(n/(n−1)) and
Student's t) correct the narrowness of the plain percentile interval with few tiles (n < ~30).

Random numbers depend only on ``seed`` and the sorted tile ids (:func:`tile_set_rng`): a group's CI
does not change when other groups are added to or removed from a query.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mindgap_core.errors import ConfigError

#: at most this many count-matrix cells are held at once (replicates are drawn in chunks)
_MAX_CELLS = 4_000_000


def tile_set_rng(seed: int, tile_ids: Sequence[str]) -> np.random.Generator:
    """A generator seeded by ``seed`` and the (sorted) tile ids it resamples."""
    digest = zlib.crc32("\x1f".join(sorted(map(str, tile_ids))).encode("utf-8"))
    return np.random.default_rng([int(seed), digest])


def resample_counts(n: int, n_boot: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield count matrices (chunk × n) of ``n_boot`` resamples of ``n`` tiles, in chunks."""
    chunk = max(1, min(n_boot, _MAX_CELLS // max(n, 1)))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


INTERVALS = ("percentile", "expanded")


def check_interval(ci: float, interval: str) -> None:
    """Raise :class:`ConfigError` unless 0 < ``ci`` < 1 and ``interval`` is known."""
    if interval not in INTERVALS:
        raise ConfigError(f"interval must be one of {INTERVALS}, got {interval!r}")
    if not 0.0 < ci < 1.0:
        raise ConfigError(f"the confidence level must be between 0 and 1, got {ci}")


def tail_probability(n: int, ci: float, interval: str = "percentile") -> float:
    """The lower percentile level (as a probability) of a two-sided ``ci`` interval from ``n`` tiles."""
    check_interval(ci, interval)
    alpha = (1.0 - ci) / 2.0
    if interval == "expanded" and n > 1:
        return float(stats.norm.cdf(-np.sqrt(n / (n - 1)) * stats.t.ppf(1.0 - alpha, n - 1)))
    return alpha


def _percentiles(replicates: np.ndarray, tail: float) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (zero source mean)
        low, high = np.nanpercentile(replicates, [100.0 * tail, 100.0 * (1.0 - tail)], axis=0)
    return low, high


@dataclass(frozen=True)
class PairedGapCI:
    """Per column: the gap, its relative form in %, and their bootstrap CIs."""

    gap: np.ndarray
    gap_ci_low: np.ndarray
    gap_ci_high: np.ndarray
    rel_gap_pct: np.ndarray
    rel_ci_low: np.ndarray
    rel_ci_high: np.ndarray


def paired_gap_bootstrap(
    source: np.ndarray,
    target: np.ndarray,
    higher_better: np.ndarray | bool,
    *,
    n_boot: int,
    rng: np.random.Generator,
    ci: float = 0.95,
    interval: str = "percentile",
) -> PairedGapCI:
    """Paired gaps of columns of ``(tiles, k)`` scores and their percentile bootstrap CIs.

    gap = mean(target − source) for higher-better columns, mean(source − target) otherwise, so a
    negative gap always means worse on the target domain. rel_gap_pct = 100 · gap / |mean(source)|,
    computed on each replicate from the same resampled tiles. With fewer than 2 tiles the CIs are NaN.
    ``interval``: ``"percentile"`` or ``"expanded"`` (see the module docstring).
    """
    check_interval(ci, interval)
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.ndim == 1:
        source, target = source[:, None], target[:, None]
    if source.shape != target.shape:
        raise ValueError(f"source {source.shape} and target {target.shape} differ in shape")
    n, k = source.shape
    sign = np.where(np.broadcast_to(np.asarray(higher_better, dtype=bool), (k,)), 1.0, -1.0)
    diff = (target - source) * sign
    gap = diff.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 100.0 * gap / np.abs(source.mean(axis=0))
    nan = np.full(k, np.nan)
    if n < 2 or n_boot < 1:
        return PairedGapCI(gap, nan, nan.copy(), rel, nan.copy(), nan.copy())
    boot_gap, boot_rel = [], []
    for counts in resample_counts(n, n_boot, rng):
        g = counts @ diff / n
        s = counts @ source / n
        with np.errstate(divide="ignore", invalid="ignore"):
            r = 100.0 * g / np.abs(s)
        boot_gap.append(g)
        boot_rel.append(np.where(np.isfinite(r), r, np.nan))
    tail = tail_probability(n, ci, interval)
    g_low, g_high = _percentiles(np.concatenate(boot_gap), tail)
    r_low, r_high = _percentiles(np.concatenate(boot_rel), tail)
    return PairedGapCI(gap, g_low, g_high, rel, r_low, r_high)


def mean_bootstrap(
    values: np.ndarray,
    *,
    n_boot: int,
    rng: np.random.Generator,
    ci: float = 0.95,
    interval: str = "percentile",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column means of ``(tiles, k)`` values and their percentile bootstrap CIs (NaN below 2 tiles)."""
    check_interval(ci, interval)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n, k = values.shape
    mean = values.mean(axis=0)
    if n < 2 or n_boot < 1:
        return mean, np.full(k, np.nan), np.full(k, np.nan)
    boots = np.concatenate([counts @ values / n for counts in resample_counts(n, n_boot, rng)])
    low, high = _percentiles(boots, tail_probability(n, ci, interval))
    return mean, low, high


def wilcoxon_p(source: np.ndarray, target: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired scores (``scipy.stats.wilcoxon`` defaults).

    NaN when there are no pairs; 1.0 when every difference is zero (no evidence of a gap).
    """
    diff = np.asarray(target, dtype=np.float64) - np.asarray(source, dtype=np.float64)
    if diff.size == 0:
        return float("nan")
    if not np.any(diff):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            return float(stats.wilcoxon(target, source).pvalue)
        except ValueError:
            return float("nan")
