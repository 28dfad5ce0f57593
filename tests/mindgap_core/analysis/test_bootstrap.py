"""Paired bootstrap: coverage on data with a known gap, resampling mechanics, Wilcoxon vs scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mindgap_core.analysis.bootstrap import (
    mean_bootstrap,
    paired_gap_bootstrap,
    resample_counts,
    tail_probability,
    tile_set_rng,
    wilcoxon_p,
)
from mindgap_core.analysis.gap import gap_table
from mindgap_core.errors import ConfigError

REPS, TILES, N_BOOT = 200, 40, 1000


def simulate(rep: int, *, true_gap: float, higher_better: bool, base: float) -> tuple[np.ndarray, np.ndarray]:
    """Paired scores whose population gap (in the sign convention) is exactly ``true_gap``.

    Tile difficulty is shared by both domains (the paired design); the domain difference is noisy.
    """
    rng = np.random.default_rng(10_000 + rep)
    source = base + rng.normal(0.0, 0.15 * base, TILES)
    raw_shift = true_gap if higher_better else -true_gap
    target = source + raw_shift + rng.normal(0.0, 0.1 * base, TILES)
    return source, target


@pytest.mark.parametrize(("higher_better", "base", "true_gap"), [(True, 25.0, -1.5), (False, 0.3, -0.04)])
def test_percentile_ci_covers_the_true_gap_in_at_least_90_percent_of_200_repetitions(
    higher_better, base, true_gap
):
    covered = 0
    for rep in range(REPS):
        source, target = simulate(rep, true_gap=true_gap, higher_better=higher_better, base=base)
        rng = np.random.default_rng(rep)
        res = paired_gap_bootstrap(source, target, higher_better, n_boot=N_BOOT, rng=rng)
        assert res.gap_ci_low[0] <= res.gap[0] <= res.gap_ci_high[0]
        covered += bool(res.gap_ci_low[0] <= true_gap <= res.gap_ci_high[0])
    assert covered / REPS >= 0.90, covered
    assert covered / REPS <= 0.995, f"suspiciously wide intervals: {covered}/{REPS}"


def test_gap_table_coverage_in_one_vectorised_call():
    """Same check through gap_table: 200 groups (one per repetition), each with its own tiles."""
    true_gap = -1.5
    frames = []
    for rep in range(REPS):
        source, target = simulate(rep, true_gap=true_gap, higher_better=True, base=25.0)
        tiles = [f"r{rep:03d}t{i:02d}" for i in range(TILES)]
        for domain, values in (("synthetic", source), ("real_cross_sensor", target)):
            frames.append(pd.DataFrame({
                "run_id": "cov", "model": f"m{rep:03d}/synthetic-only", "method": f"m{rep:03d}",
                "regime": "synthetic-only", "train_domain": "synthetic", "test_domain": domain,
                "tile_id": tiles,
                "split": "test", "band": "all", "metric": "psnr", "value": values, "higher_better": True,
            }))
    table = gap_table(pd.concat(frames, ignore_index=True), n_boot=N_BOOT, seed=3)
    assert len(table) == REPS and (table["n_tiles"] == TILES).all()
    assert set(table["target_domain"]) == {"real_cross_sensor"}
    covered = ((table["gap_ci_low"] <= true_gap) & (true_gap <= table["gap_ci_high"])).mean()
    assert 0.90 <= covered <= 0.995, covered


def test_expanded_interval_is_wider_for_few_tiles_and_converges_to_percentile():
    assert tail_probability(12, 0.95, "percentile") == pytest.approx(0.025)
    assert tail_probability(12, 0.95, "expanded") < 0.015
    assert tail_probability(2000, 0.95, "expanded") == pytest.approx(0.025, abs=2e-4)
    rng = np.random.default_rng(2)
    source = rng.normal(25, 2, 12)
    target = source + rng.normal(-1, 1, 12)
    plain = paired_gap_bootstrap(source, target, True, n_boot=2000, rng=np.random.default_rng(0))
    wide = paired_gap_bootstrap(
        source, target, True, n_boot=2000, rng=np.random.default_rng(0), interval="expanded"
    )
    assert wide.gap_ci_low[0] < plain.gap_ci_low[0] < plain.gap_ci_high[0] < wide.gap_ci_high[0]
    with pytest.raises(ConfigError, match="interval must be one of"):
        tail_probability(12, 0.95, "bca")
    with pytest.raises(ConfigError, match="interval must be one of"):  # checked even without resampling
        rng = np.random.default_rng(0)
        paired_gap_bootstrap(source[:1], target[:1], True, n_boot=10, rng=rng, interval="x")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        mean_bootstrap(source, n_boot=10, rng=np.random.default_rng(0), ci=95)


def test_resample_counts_are_multinomial_rows_and_chunking_is_reproducible(monkeypatch):
    chunks = list(resample_counts(7, 500, np.random.default_rng(1)))
    counts = np.concatenate(chunks)
    assert counts.shape == (500, 7)
    assert (counts.sum(axis=1) == 7).all() and counts.min() >= 0
    assert abs(counts.mean() - 1.0) < 0.05  # each tile drawn once per replicate on average
    import mindgap_core.analysis.bootstrap as bs

    monkeypatch.setattr(bs, "_MAX_CELLS", 7 * 64)  # force chunks of 64 replicates
    chunked = list(bs.resample_counts(7, 500, np.random.default_rng(1)))
    assert len(chunked) == 8 and all(c.shape[1] == 7 for c in chunked)


def test_bootstrap_of_a_constant_difference_has_a_zero_width_ci():
    source = np.linspace(20, 30, 25)
    res = paired_gap_bootstrap(source, source - 2.0, True, n_boot=300, rng=np.random.default_rng(0))
    np.testing.assert_allclose([res.gap[0], res.gap_ci_low[0], res.gap_ci_high[0]], -2.0)
    assert res.rel_ci_low[0] < res.rel_gap_pct[0] < res.rel_ci_high[0]  # the source mean still varies


def test_fewer_than_two_tiles_give_nan_intervals():
    one = np.array([3.0])
    res = paired_gap_bootstrap(one, one - 1.0, True, n_boot=100, rng=np.random.default_rng(0))
    assert res.gap[0] == -1.0 and np.isnan(res.gap_ci_low[0]) and np.isnan(res.rel_ci_high[0])
    mean, low, high = mean_bootstrap(np.array([3.0]), n_boot=100, rng=np.random.default_rng(0))
    assert mean[0] == 3.0 and np.isnan(low[0]) and np.isnan(high[0])


def test_mean_bootstrap_brackets_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(5)
    small = rng.normal(10, 2, 20)
    big = rng.normal(10, 2, 400)
    m1, l1, h1 = mean_bootstrap(small, n_boot=800, rng=np.random.default_rng(0))
    m2, l2, h2 = mean_bootstrap(big, n_boot=800, rng=np.random.default_rng(0))
    assert l1[0] < m1[0] < h1[0] and l2[0] < m2[0] < h2[0]
    assert (h2 - l2)[0] < (h1 - l1)[0] / 2


def test_tile_set_rng_depends_on_the_tile_set_not_its_order():
    a = tile_set_rng(0, ["t2", "t1", "t3"]).integers(0, 10**9)
    assert a == tile_set_rng(0, ["t1", "t2", "t3"]).integers(0, 10**9)
    assert a != tile_set_rng(0, ["t1", "t2", "t4"]).integers(0, 10**9)
    assert a != tile_set_rng(1, ["t1", "t2", "t3"]).integers(0, 10**9)


@pytest.mark.parametrize("n", [6, 15, 49, 80])
def test_wilcoxon_matches_scipy(n):
    rng = np.random.default_rng(n)
    source = rng.normal(20, 2, n)
    target = source + rng.normal(-0.4, 1.0, n)
    assert wilcoxon_p(source, target) == pytest.approx(stats.wilcoxon(target, source).pvalue, rel=1e-12)
    assert wilcoxon_p(source, target) == pytest.approx(stats.wilcoxon(source, target).pvalue, rel=1e-12)


def test_wilcoxon_with_ties_and_zero_differences_matches_scipy():
    source = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0])
    target = source + np.array([0.0, 0.5, 0.5, -0.5, 1.0, 1.0, 0.0, 2.0, 0.5, 1.5, -1.0, 2.0])
    assert wilcoxon_p(source, target) == pytest.approx(stats.wilcoxon(target, source).pvalue, rel=1e-12)


def test_wilcoxon_degenerate_cases():
    assert wilcoxon_p(np.ones(5), np.ones(5)) == 1.0
    assert np.isnan(wilcoxon_p(np.array([]), np.array([])))
