"""Cluster-robust inference over spatial blocks: t-intervals, the cluster bootstrap, Holm adjustment.

Neighbouring tiles share land cover, illumination and simulator draws, so tiles are not independent:
the independent units are the spatial blocks of the split (:mod:`mindgap_core.data.splits`). Every
estimate here is a mean over tiles (the point estimate); its uncertainty is measured over blocks.

``interval="t"`` (default)
    Standard error by the CR2 cluster-robust estimator (Bell & McCaffrey 2002). For a mean over N tiles
    in G blocks of sizes n_g with residuals e_i it is ``V = Σ_g (Σ_{i∈g} e_i)² / (1 − n_g/N) / N²``;
    with equal block sizes this is exactly ``s²/G`` of the G block means, i.e. the interval is the
    Student t-interval over block means. Critical value and test use t with G − 1 degrees of freedom
    (Cameron & Miller 2015, few clusters). The p-value is the two-sided t-test of "mean = 0" with the
    same SE and df, so ``p < 1 − ci`` exactly when the CI excludes 0. Valid for small G when block
    means are roughly normal; a distribution-free sign-flip test over G = 3 blocks could never go below
    p = 0.25, which is what "3 test blocks" can say without that assumption.
``interval="bootstrap"``
    Cluster bootstrap: whole blocks are resampled with replacement; expanded percentile interval
    (Hesterberg 2015: percentile levels widened by √(G/(G−1)) and Student's t with G − 1 df). Refused
    (NaN) below :data:`MIN_BOOTSTRAP_BLOCKS` blocks: 3 blocks have only 10 distinct resamples, a
    degenerate bootstrap distribution. Its p-value is the t-test's (the bootstrap gives intervals only).

When no block map is known, every tile is its own unit and the method text says so.
Holm's step-down adjustment (:func:`holm`) controls the family-wise error of the tests printed in one
table under any dependence between them (rows of a gap table share tiles and are strongly dependent,
which Benjamini–Hochberg's PRDS condition does not cover for two-sided tests).
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mindgap_core.analysis import INTERVALS, MIN_BOOTSTRAP_BLOCKS
from mindgap_core.errors import ConfigError

#: at most this many count-matrix cells are held at once (bootstrap replicates are drawn in chunks)
_MAX_CELLS = 4_000_000


def check_interval(ci: float, interval: str) -> None:
    """Raise :class:`ConfigError` unless 0 < ``ci`` < 1 and ``interval`` is one of :data:`INTERVALS`."""
    if interval not in INTERVALS:
        raise ConfigError(f"interval must be one of {INTERVALS}, got {interval!r}")
    if not 0.0 < ci < 1.0:
        raise ConfigError(f"the confidence level must be between 0 and 1, got {ci}")


@dataclass(frozen=True)
class Clusters:
    """Which unit (spatial block, or the tile itself) each of ``n`` tiles belongs to."""

    codes: np.ndarray  # (n,) int64 in [0, n_units)
    n_units: int
    unit: str  # "block" or "tile"

    @classmethod
    def from_labels(cls, labels: Sequence[object] | None, n: int) -> Clusters:
        """Units from per-tile block labels; ``None`` makes every tile its own unit."""
        if labels is None:
            return cls(np.arange(n, dtype=np.int64), n, "tile")
        labels = np.asarray(labels, dtype=object).astype(str)
        if len(labels) != n:
            raise ValueError(f"{len(labels)} block labels for {n} tiles")
        uniques, codes = np.unique(labels, return_inverse=True)
        return cls(codes.astype(np.int64), len(uniques), "block")

    @property
    def sizes(self) -> np.ndarray:
        """Tiles per unit, (G,)."""
        return np.bincount(self.codes, minlength=self.n_units).astype(np.float64)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per-unit sums of the rows of ``values`` (n, k) -> (G, k)."""
        out = np.zeros((self.n_units, values.shape[1]))
        np.add.at(out, self.codes, values)
        return out

    def describe(self, interval: str, n_boot: int = 0) -> str:
        """The CI method in words, e.g. ``t-interval over 3 blocks (CR2, df 2)``."""
        g = self.n_units
        units = f"{g} block{'s' if g != 1 else ''}" if self.unit == "block" else \
            f"{g} tiles treated as independent (no block map)"
        if interval == "bootstrap":
            if g < MIN_BOOTSTRAP_BLOCKS:
                return f"cluster bootstrap refused: {units} (< {MIN_BOOTSTRAP_BLOCKS}: degenerate)"
            return f"cluster bootstrap over {units} (expanded percentile, {n_boot} resamples)"
        return f"t-interval over {units} (CR2, df {max(g - 1, 0)})"


@dataclass(frozen=True)
class Estimate:
    """Per column: the tile mean, its cluster-robust SE, CI, two-sided p (mean = 0) and the df used."""

    mean: np.ndarray
    se: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p: np.ndarray
    df: int


def unit_rng(seed: int, unit_ids: Sequence[str]) -> np.random.Generator:
    """A generator seeded by ``seed`` and the sorted ids it resamples: a group's bootstrap does not
    change when other groups are added to or removed from a query."""
    digest = zlib.crc32("\x1f".join(sorted(map(str, unit_ids))).encode("utf-8"))
    return np.random.default_rng([int(seed), digest])


def resample_counts(n: int, n_boot: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Count matrices (chunk × n) of ``n_boot`` resamples of ``n`` units with replacement, in chunks."""
    chunk = max(1, min(n_boot, _MAX_CELLS // max(n, 1)))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def _cr2_se(residuals: np.ndarray, clusters: Clusters) -> np.ndarray:
    """CR2 standard error of a tile mean from per-tile residuals (n, k)."""
    n = residuals.shape[0]
    sums = clusters.sums(residuals)
    leverage = clusters.sizes / n
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.sum(sums**2 / (1.0 - leverage)[:, None], axis=0) / n**2
    return np.sqrt(var)


def _expanded_tail(g: int, ci: float) -> float:
    from scipy import stats

    alpha = (1.0 - ci) / 2.0
    return float(stats.norm.cdf(-np.sqrt(g / (g - 1)) * stats.t.ppf(1.0 - alpha, g - 1)))


def _bootstrap_bounds(replicates: np.ndarray, g: int, ci: float) -> tuple[np.ndarray, np.ndarray]:
    tail = _expanded_tail(g, ci)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        low, high = np.nanpercentile(replicates, [100.0 * tail, 100.0 * (1.0 - tail)], axis=0)
    return low, high


def _as_matrix(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[:, None] if values.ndim == 1 else values


def cluster_mean(
    values: np.ndarray, clusters: Clusters, *, ci: float = 0.95, interval: str = "t", n_boot: int = 2000,
    rng: np.random.Generator | None = None,
) -> Estimate:
    """Column means of ``values`` (tiles × k) with cluster-robust CIs and t-test p-values (see the module
    docstring). NaN CIs and p with fewer than 2 units."""
    from scipy import stats

    check_interval(ci, interval)
    x = _as_matrix(values)
    n, k = x.shape
    mean = x.mean(axis=0) if n else np.full(k, np.nan)
    g = clusters.n_units
    nan = np.full(k, np.nan)
    if g < 2:
        return Estimate(mean, nan, nan.copy(), nan.copy(), nan.copy(), 0)
    se = _cr2_se(x - mean, clusters)
    df = g - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stat = mean / se
    p = np.where(se > 0, 2.0 * stats.t.sf(np.abs(t_stat), df), np.where(mean == 0, 1.0, 0.0))
    if interval == "t":
        half = stats.t.ppf(0.5 + ci / 2.0, df) * se
        return Estimate(mean, se, mean - half, mean + half, p, df)
    if g < MIN_BOOTSTRAP_BLOCKS or n_boot < 1:
        return Estimate(mean, se, nan.copy(), nan.copy(), p, df)
    sums, sizes = clusters.sums(x), clusters.sizes
    rng = rng if rng is not None else np.random.default_rng(0)
    boots = np.concatenate([(c @ sums) / (c @ sizes)[:, None] for c in resample_counts(g, n_boot, rng)])
    low, high = _bootstrap_bounds(boots, g, ci)
    return Estimate(mean, se, low, high, p, df)


def cluster_ratio(
    numerator: np.ndarray, denominator: np.ndarray, clusters: Clusters, *, ci: float = 0.95,
    interval: str = "t", n_boot: int = 2000, rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratio of column means mean(numerator) / mean(denominator) and its CI, built on the log scale.

    ``"t"``: log ratio ± t(G−1) · SE, SE by the delta method (per-tile influence
    (a_i − ā)/ā − (b_i − b̄)/b̄) with CR2 block sums; ``"bootstrap"``: cluster-bootstrap percentiles of
    the log ratio of resampled means. NaN where a mean is not positive or with fewer than 2 units.
    """
    from scipy import stats

    check_interval(ci, interval)
    a, b = _as_matrix(numerator), _as_matrix(denominator)
    n, k = a.shape
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    positive = (ma > 0) & (mb > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(positive, ma / mb, np.nan)
    nan = np.full(k, np.nan)
    g = clusters.n_units
    if g < 2:
        return ratio, nan, nan.copy()
    if interval == "t":
        with np.errstate(divide="ignore", invalid="ignore"):
            influence = (a - ma) / ma - (b - mb) / mb
            se = _cr2_se(np.where(positive, influence, 0.0), clusters)
            half = stats.t.ppf(0.5 + ci / 2.0, g - 1) * se
            log_r = np.log(ratio)
        return ratio, np.exp(log_r - half), np.exp(log_r + half)
    if g < MIN_BOOTSTRAP_BLOCKS or n_boot < 1:
        return ratio, nan, nan.copy()
    sa, sb = clusters.sums(a), clusters.sums(b)
    rng = rng if rng is not None else np.random.default_rng(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        boots = np.concatenate([np.log((c @ sa) / (c @ sb)) for c in resample_counts(g, n_boot, rng)])
    low, high = _bootstrap_bounds(np.where(np.isfinite(boots), boots, np.nan), g, ci)
    return ratio, np.where(positive, np.exp(low), np.nan), np.where(positive, np.exp(high), np.nan)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order; NaN stays NaN and does not count as a test).

    Sorted ascending p_(1) ≤ … ≤ p_(m): adjusted p_(i) = max_{j ≤ i} min(1, (m − j + 1) · p_(j)).
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out
