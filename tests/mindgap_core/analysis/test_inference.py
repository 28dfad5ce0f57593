"""Cluster-robust inference: the t-interval over blocks against independent computations, coverage on
block-correlated data, the cluster bootstrap, ratios on the log scale, and Holm against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg, stats

from mindgap_core.analysis.inference import (
    MIN_BOOTSTRAP_BLOCKS,
    Clusters,
    cluster_mean,
    cluster_ratio,
    holm,
    resample_counts,
    unit_rng,
)
from mindgap_core.errors import ConfigError


def block_data(rng: np.random.Generator, blocks: int, per_block: int, *, mean: float = 1.0,
               block_sd: float = 1.0, tile_sd: float = 0.1) -> tuple[np.ndarray, list[str]]:
    """Values with a strong shared effect per block (tiles of one block move together)."""
    effects = rng.normal(0.0, block_sd, blocks)
    values = np.concatenate([mean + effects[b] + rng.normal(0.0, tile_sd, per_block) for b in range(blocks)])
    return values, [f"b{b}" for b in range(blocks) for _ in range(per_block)]


def test_equal_blocks_give_exactly_the_t_interval_over_block_means():
    values, labels = block_data(np.random.default_rng(0), blocks=3, per_block=4)
    est = cluster_mean(values, Clusters.from_labels(labels, len(values)))
    means = values.reshape(3, 4).mean(axis=1)  # independent: the t-interval of 3 block means
    half = stats.t.ppf(0.975, 2) * means.std(ddof=1) / np.sqrt(3)
    assert est.mean[0] == pytest.approx(means.mean())
    assert est.low[0] == pytest.approx(means.mean() - half)
    assert est.high[0] == pytest.approx(means.mean() + half)
    assert est.df == 2
    assert est.p[0] == pytest.approx(stats.ttest_1samp(means, 0.0).pvalue)


def test_unequal_blocks_match_the_cr2_sandwich_built_from_matrices():
    """CR2 (Bell & McCaffrey) from its definition: (X'X)⁻¹ Σ_g X_g' A_g e_g e_g' A_g X_g (X'X)⁻¹ with
    A_g = (I − H_gg)^(-1/2), for an intercept-only regression."""
    rng = np.random.default_rng(3)
    sizes = [2, 5, 3, 6]
    labels = [f"g{g}" for g, n in enumerate(sizes) for _ in range(n)]
    values = rng.normal(0.0, 1.0, len(labels)) + np.repeat(rng.normal(0, 1, len(sizes)), sizes)
    est = cluster_mean(values, Clusters.from_labels(labels, len(values)))
    n = len(values)
    x = np.ones((n, 1))
    bread = np.linalg.inv(x.T @ x)
    resid = values - values.mean()
    meat = np.zeros((1, 1))
    start = 0
    for size in sizes:
        rows = slice(start, start + size)
        h = x[rows] @ bread @ x[rows].T
        a = np.real(linalg.inv(linalg.sqrtm(np.eye(size) - h)))
        score = x[rows].T @ a @ resid[rows][:, None]
        meat += score @ score.T
        start += size
    se = float(np.sqrt(bread @ meat @ bread)[0, 0])
    assert est.se[0] == pytest.approx(se, rel=1e-10)
    half = stats.t.ppf(0.975, len(sizes) - 1) * se
    assert est.high[0] - est.mean[0] == pytest.approx(half, rel=1e-10)


def test_block_intervals_cover_block_correlated_truth_where_tile_intervals_do_not():
    covered_blocks = covered_tiles = 0
    reps = 300
    for rep in range(reps):
        values, labels = block_data(np.random.default_rng(100 + rep), blocks=4, per_block=4, mean=2.0)
        blocks = cluster_mean(values, Clusters.from_labels(labels, len(values)))
        tiles = cluster_mean(values, Clusters.from_labels(None, len(values)))
        covered_blocks += bool(blocks.low[0] <= 2.0 <= blocks.high[0])
        covered_tiles += bool(tiles.low[0] <= 2.0 <= tiles.high[0])
    assert 0.90 <= covered_blocks / reps <= 0.99, covered_blocks
    assert covered_tiles / reps < 0.60, covered_tiles  # tiles treated as independent: far too narrow


def test_tiles_without_a_block_map_are_their_own_units():
    values = np.arange(6.0)
    units = Clusters.from_labels(None, 6)
    assert units.unit == "tile" and units.n_units == 6
    assert "6 tiles treated as independent (no block map)" in units.describe("t")
    est = cluster_mean(values, units)
    half = stats.t.ppf(0.975, 5) * values.std(ddof=1) / np.sqrt(6)
    assert est.high[0] - est.mean[0] == pytest.approx(half)
    assert Clusters.from_labels(["a", "b", "a"], 3).describe("t") == "t-interval over 2 blocks (CR2, df 1)"


def test_one_block_and_constant_differences():
    one = cluster_mean(np.array([1.0, 2.0, 3.0]), Clusters.from_labels(["b", "b", "b"], 3))
    assert one.mean[0] == 2.0 and np.isnan(one.low[0]) and np.isnan(one.p[0])
    const = cluster_mean(np.full(6, -2.0), Clusters.from_labels(list("aabbcc"), 6))
    assert const.low[0] == const.high[0] == -2.0 and const.p[0] == 0.0
    zero = cluster_mean(np.zeros(6), Clusters.from_labels(list("aabbcc"), 6))
    assert zero.p[0] == 1.0


def test_cluster_bootstrap_is_refused_below_five_blocks_and_close_to_t_with_many():
    values, labels = block_data(np.random.default_rng(1), blocks=3, per_block=4)
    three = Clusters.from_labels(labels, len(values))
    refused = cluster_mean(values, three, interval="bootstrap", rng=np.random.default_rng(0))
    assert np.isnan(refused.low[0]) and np.isfinite(refused.p[0])
    text = three.describe("bootstrap")
    assert "refused" in text and str(MIN_BOOTSTRAP_BLOCKS) in text
    values, labels = block_data(np.random.default_rng(2), blocks=40, per_block=3)
    many = Clusters.from_labels(labels, len(values))
    boot = cluster_mean(values, many, interval="bootstrap", n_boot=4000, rng=np.random.default_rng(0))
    t = cluster_mean(values, many)
    assert boot.low[0] == pytest.approx(t.low[0], abs=0.1 * (t.high[0] - t.low[0]))
    assert boot.high[0] == pytest.approx(t.high[0], abs=0.1 * (t.high[0] - t.low[0]))
    with pytest.raises(ConfigError, match="interval must be one of"):
        cluster_mean(values, many, interval="percentile")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        cluster_mean(values, many, ci=95)


def test_ratio_ci_is_built_on_the_log_scale():
    rng = np.random.default_rng(4)
    source = rng.uniform(0.1, 0.3, 12)
    labels = [f"b{i // 4}" for i in range(12)]
    units = Clusters.from_labels(labels, 12)
    ratio, low, high = cluster_ratio(2.5 * source, source, units)  # every tile exactly 2.5× worse
    assert ratio[0] == pytest.approx(2.5) and low[0] == pytest.approx(2.5) and high[0] == pytest.approx(2.5)
    target = source * rng.uniform(1.5, 3.5, 12)
    ratio, low, high = cluster_ratio(target, source, units)
    assert ratio[0] == pytest.approx(target.mean() / source.mean())
    assert np.log(ratio[0]) - np.log(low[0]) == pytest.approx(np.log(high[0]) - np.log(ratio[0]))
    assert low[0] < ratio[0] < high[0]
    nan = cluster_ratio(-target, source, units)
    assert np.isnan(nan[0][0]) and np.isnan(nan[1][0])


def test_holm_matches_a_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005, float("nan")]
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4) × 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 → running max
    expected = [0.03, 0.06, 0.06, 0.02, float("nan")]
    np.testing.assert_allclose(holm(p), expected)
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])
    assert holm([]).size == 0


def test_resample_counts_and_unit_rng():
    counts = np.concatenate(list(resample_counts(7, 500, np.random.default_rng(1))))
    assert counts.shape == (500, 7) and (counts.sum(axis=1) == 7).all()
    a = unit_rng(0, ["b2", "b1"]).integers(0, 10**9)
    assert a == unit_rng(0, ["b1", "b2"]).integers(0, 10**9)
    assert a != unit_rng(0, ["b1", "b3"]).integers(0, 10**9)
    assert a != unit_rng(1, ["b1", "b2"]).integers(0, 10**9)
