"""gap_table: sign convention, pairing, domains, agreement with the overview query; CIs over spatial blocks
checked against independent block-level computations, Holm against a hand computation, the excess gap,
error ratios, and adapter pipelines kept out of gap rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mindgap_core.analysis.blocks import block_map
from mindgap_core.analysis.gap import gap_table, is_inconclusive, mse_from_psnr, train_test_matrix
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.store import ResultsStore, shard_key, views
from tests.mindgap_core.analysis.synth import (
    block_correlated_rows,
    block_of,
    result_rows,
    write_block_store,
)

TILES = [f"t{i:02d}" for i in range(10)]


def exact_rows(
    metric: str, higher_better: bool, synthetic: float, real: float, domain: str = "real_cross_sensor"
) -> pd.DataFrame:
    """Rows whose per-tile values differ by tile but whose domain means are exactly given."""
    offsets = np.linspace(-1, 1, len(TILES)) * 0.1 * abs(synthetic)
    frames = []
    for test_domain, mean in (("synthetic", synthetic), (domain, real)):
        frames.append(pd.DataFrame({
            "run_id": "r1", "model": "sr3/synthetic-only", "method": "sr3", "regime": "synthetic-only",
            "train_domain": "synthetic", "test_domain": test_domain, "tile_id": TILES, "split": "test",
            "band": "all", "metric": metric, "value": mean + offsets, "higher_better": higher_better,
        }))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize(
    ("metric", "higher_better", "synthetic", "real", "gap", "ratio_of"),
    [
        ("psnr", True, 30.0, 27.0, -3.0, "mse"),     # higher-better, worse on real: real − synthetic < 0
        ("ssim", True, 0.80, 0.88, 0.08, ""),        # higher-better, better on real; no ratio of a similarity
        ("lpips", False, 0.20, 0.30, -0.10, "lpips"),  # lower-better, worse on real: sign flipped
        ("sam", False, 5.0, 4.0, 1.0, "sam"),        # lower-better, better on real
        ("ergas", False, 4.0, 5.0, -1.0, "ergas"),
    ],
)
def test_sign_convention_negative_means_worse_on_real(metric, higher_better, synthetic, real, gap, ratio_of):
    rows = exact_rows(metric, higher_better, synthetic, real)
    table = gap_table(rows)
    row = table.iloc[0]
    assert row["metric"] == metric and bool(row["higher_better"]) is higher_better
    assert row["mean_source"] == pytest.approx(synthetic) and row["mean_target"] == pytest.approx(real)
    assert row["gap"] == pytest.approx(gap)
    # every tile moved by the same amount: the paired CI collapses onto the gap
    assert row["gap_ci_low"] == pytest.approx(gap) and row["gap_ci_high"] == pytest.approx(gap)
    assert row["ratio_of"] == ratio_of
    pairs = rows.pivot(index="tile_id", columns="test_domain", values="value")
    if ratio_of == "mse":
        expected = mse_from_psnr(pairs["real_cross_sensor"]).mean() / mse_from_psnr(pairs["synthetic"]).mean()
    else:
        expected = pairs["real_cross_sensor"].mean() / pairs["synthetic"].mean() if ratio_of else np.nan
    np.testing.assert_allclose(row["ratio"], expected, rtol=1e-12)
    assert "rel_gap_pct" not in table  # no percentages of dB or of similarity indices


def test_output_columns_and_domains():
    table = gap_table(result_rows(tiles=12))
    assert list(table.columns) == [
        "method", "regime", "metric", "band", "aggregate", "train_blocks", "source_domain", "target_domain",
        "n_tiles", "n_units", "unit", "units", "mean_source", "mean_target", "gap", "gap_ci_low",
        "gap_ci_high", "p_value", "p_adjusted", "verdict", "ratio_of", "ratio", "ratio_ci_low",
        "ratio_ci_high", "excess_gap", "excess_ci_low", "excess_ci_high", "excess_p", "excess_p_adjusted",
        "excess_verdict", "ci_method", "higher_better",
    ]
    assert set(table["target_domain"]) == {"simulated_cross_sensor"}
    assert (table["gap"] < 0).all()  # synth.py makes every metric 10 % worse on the cross-sensor domain
    assert (table["gap_ci_low"] <= table["gap"]).all() and (table["gap"] <= table["gap_ci_high"]).all()
    # rows without a block map: every tile is its own unit, and the table says so
    assert (table["unit"] == "tile").all() and (table["n_units"] == 12).all()
    assert table["ci_method"].str.contains("tiles treated as independent").all()


def test_ci_over_a_stores_blocks_equals_the_t_interval_of_block_means(tmp_path):
    """Acceptance: strongly block-correlated tiles; the CI is the t-interval over the 3 block means,
    found through the store's run record -> experiment -> manifest (block_id)."""
    rows = block_correlated_rows(blocks=3, per_block=4)
    store = write_block_store(tmp_path, rows, per_block=4)
    table = gap_table(store.root).set_index("method")
    sr3 = table.loc["sr3"]
    assert (sr3["n_tiles"], sr3["n_units"], sr3["unit"], sr3["units"]) == (12, 3, "block", "b0,b1,b2")
    assert sr3["ci_method"] == "t-interval over 3 blocks (CR2, df 2)"
    wide = rows[rows["method"] == "sr3"].pivot(index="tile_id", columns="test_domain", values="value")
    diff = wide["simulated_cross_sensor"] - wide["synthetic"]
    block_means = diff.groupby(diff.index.map(lambda t: block_of(t, 4))).mean()  # independent computation
    half = stats.t.ppf(0.975, 2) * block_means.std(ddof=1) / np.sqrt(3)
    assert sr3["gap"] == pytest.approx(block_means.mean())
    assert sr3["gap_ci_low"] == pytest.approx(block_means.mean() - half)
    assert sr3["gap_ci_high"] == pytest.approx(block_means.mean() + half)
    naive = gap_table(rows).set_index("method").loc["sr3"]  # tiles as units: several times narrower
    assert (sr3["gap_ci_high"] - sr3["gap_ci_low"]) > 4 * (naive["gap_ci_high"] - naive["gap_ci_low"])
    given = gap_table(rows, blocks={t: block_of(t, 4) for t in set(rows["tile_id"])}).set_index("method")
    np.testing.assert_allclose(given.loc["sr3", ["gap_ci_low", "gap_ci_high"]].to_numpy(float),
                               sr3[["gap_ci_low", "gap_ci_high"]].to_numpy(float))
    assert len(block_map(store.root).blocks) == 12 and block_map(rows).blocks == {}


def test_adjusted_p_values_match_a_hand_holm_over_every_test_of_the_table():
    methods = ("sr3", "bicubic", "sinsr")
    rows = pd.concat([block_correlated_rows(blocks=5, per_block=2, methods=methods, seed=s)
                      .assign(metric=m, higher_better=hb)
                      for s, (m, hb) in enumerate((("psnr", True), ("sam", False)))])
    blocks = {t: block_of(t, 2) for t in set(rows["tile_id"])}
    table = gap_table(rows, blocks=blocks)
    hand = []  # raw p: one-sample t-test of the block means of the per-tile differences (df = G − 1)
    for row in table.itertuples():
        part = rows[(rows["method"] == row.method) & (rows["metric"] == row.metric)]
        wide = part.pivot(index="tile_id", columns="test_domain", values="value")
        sign = 1.0 if row.higher_better else -1.0
        diff = sign * (wide["simulated_cross_sensor"] - wide["synthetic"])
        means = diff.groupby(diff.index.map(blocks.get)).mean()
        hand.append(("gap", row.Index, stats.ttest_1samp(means, 0.0).pvalue))
        assert row.p_value == pytest.approx(hand[-1][2], rel=1e-9)
        if row.method != "bicubic":
            ref = rows[(rows["method"] == "bicubic") & (rows["metric"] == row.metric)]
            ref = ref.pivot(index="tile_id", columns="test_domain", values="value")
            excess = diff - sign * (ref["simulated_cross_sensor"] - ref["synthetic"])
            hand.append(("excess", row.Index, stats.ttest_1samp(excess.groupby(excess.index.map(blocks.get))
                                                                 .mean(), 0.0).pvalue))
    m = len(hand)  # Holm by hand over the 6 gap and 4 excess tests
    order = sorted(range(m), key=lambda i: hand[i][2])
    adjusted, running = {}, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * hand[i][2]))
        adjusted[hand[i][:2]] = running
    assert m == 10
    for (kind, index), value in adjusted.items():
        column = "p_adjusted" if kind == "gap" else "excess_p_adjusted"
        assert table.loc[index, column] == pytest.approx(value, rel=1e-9), (kind, index)
    bicubic = table[table["method"] == "bicubic"]
    assert bicubic["excess_gap"].isna().all() and (bicubic["excess_verdict"] == "").all()


def test_excess_gap_is_the_paired_difference_to_bicubic_with_its_own_ci():
    rows = block_correlated_rows(blocks=4, per_block=3)
    blocks = {t: block_of(t, 3) for t in set(rows["tile_id"])}
    table = gap_table(rows, blocks=blocks).set_index("method")
    difference = table.loc["sr3", "gap"] - table.loc["bicubic", "gap"]
    assert table.loc["sr3", "excess_gap"] == pytest.approx(difference)
    wide = rows.pivot_table(index="tile_id", columns=["method", "test_domain"], values="value")
    excess = ((wide["sr3"]["simulated_cross_sensor"] - wide["sr3"]["synthetic"])
              - (wide["bicubic"]["simulated_cross_sensor"] - wide["bicubic"]["synthetic"]))
    means = excess.groupby(excess.index.map(blocks.get)).mean()
    half = stats.t.ppf(0.975, 3) * means.std(ddof=1) / 2.0
    assert table.loc["sr3", "excess_ci_low"] == pytest.approx(means.mean() - half)
    assert table.loc["sr3", "excess_ci_high"] == pytest.approx(means.mean() + half)
    none = gap_table(rows, blocks=blocks, reference_method=None)
    assert none["excess_gap"].isna().all()


def test_verdicts_follow_the_ci_and_the_adjusted_p():
    rows = result_rows(tiles=40, methods=("sr3", "bicubic"), noise=0.01)
    same = result_rows(tiles=40, methods=("sinsr",), noise=0.05, seed=3,
                       domains={"synthetic": {}, "simulated_cross_sensor": {}})
    table = gap_table(pd.concat([rows, same]))
    clear = table[table["method"] == "sr3"]
    assert (clear["verdict"] == "worse").all() and not is_inconclusive(clear).any()
    flat = table[table["method"] == "sinsr"]
    assert is_inconclusive(flat).all() and (flat["verdict"] == "inconclusive").all()
    lows, highs = flat["gap_ci_low"], flat["gap_ci_high"]
    assert ((lows <= 0) & (highs >= 0) | (flat["p_adjusted"] >= 0.05)).all()


def test_adapter_pipelines_never_appear_as_gap_rows():
    rows = result_rows(tiles=8, methods=("sr3",))
    adapter = rows.assign(regime="synthetic+harmoniser", model="harmoniser+sr3/synthetic")
    table = gap_table(pd.concat([rows, adapter]))
    assert not table["regime"].str.contains("+", regex=False).any() and len(table) == 3
    pooled = gap_table(pd.concat([rows, adapter]), group=("method", "metric"))
    np.testing.assert_allclose(pooled["gap"].to_numpy(), table["gap"].to_numpy())


def test_real_cross_sensor_is_the_default_target_and_others_can_be_named():
    rows = result_rows(tiles=8, domains={"synthetic": {}, "simulated_cross_sensor": {"psnr": -0.1},
                                         "real_cross_sensor": {"psnr": -0.2}})
    assert set(gap_table(rows, n_boot=50)["target_domain"]) == {"real_cross_sensor"}
    sim = gap_table(rows, target_domain="simulated_cross_sensor", metric="psnr", n_boot=50)
    real = gap_table(rows, metric="psnr", n_boot=50)
    assert sim["gap"].iloc[0] > real["gap"].iloc[0]
    with pytest.raises(InputError, match="no rows in the target domain 'real'"):
        gap_table(rows, target_domain="real")
    with pytest.raises(InputError, match="no rows in the source domain"):
        gap_table(rows, source_domain="synthetic_v2")
    three = result_rows(tiles=4, domains={"synthetic": {}, "a": {}, "b": {}})
    with pytest.raises(ConfigError, match="name the target domain"):
        gap_table(three)


def test_pairing_uses_only_tiles_in_both_domains_and_averages_repeats():
    rows = exact_rows("psnr", True, 30.0, 27.0)
    extra = rows[rows["test_domain"] == "synthetic"].iloc[:1].assign(tile_id="only_synthetic", value=99.0)
    real = rows[rows["test_domain"] == "real_cross_sensor"]
    repeat = real.assign(run_id="r2", value=real["value"] - 2.0)
    table = gap_table(pd.concat([rows, extra, repeat]), n_boot=100)
    assert table["n_tiles"].iloc[0] == len(TILES)
    assert table["mean_source"].iloc[0] == pytest.approx(30.0)  # the unpaired 99 is ignored
    assert table["mean_target"].iloc[0] == pytest.approx(26.0)  # r1 and r2 averaged: 27 and 25
    assert table["gap"].iloc[0] == pytest.approx(-4.0)


def test_a_group_ci_does_not_depend_on_other_groups_and_bootstrap_is_seeded():
    rows = result_rows(tiles=30, methods=("sr3", "sinsr"))
    blocks = {t: f"b{int(t[1:]) // 3}" for t in set(rows["tile_id"])}  # 10 blocks: the bootstrap may run
    cols = ["gap_ci_low", "gap_ci_high", "ratio_ci_low", "ratio_ci_high"]
    for interval in ("t", "bootstrap"):
        full = gap_table(rows, blocks=blocks, n_boot=300, seed=7, interval=interval)
        one = gap_table(rows, metric="sam", filters={"method": "sinsr"}, blocks=blocks, n_boot=300, seed=7,
                        interval=interval)
        pick = full[(full["metric"] == "sam") & (full["method"] == "sinsr")]
        np.testing.assert_allclose(one[cols].to_numpy(float), pick[cols].to_numpy(float))
    other = gap_table(rows, metric="sam", filters={"method": "sinsr"}, blocks=blocks, n_boot=300, seed=8,
                      interval="bootstrap")
    assert not np.allclose(other[cols].to_numpy(float), one[cols].to_numpy(float))
    assert one["ci_method"].iloc[0] == "cluster bootstrap over 10 blocks (expanded percentile, 300 resamples)"


def test_gap_table_agrees_with_the_dashboard_overview_query(tmp_path):
    store = ResultsStore(tmp_path)
    rows = result_rows(tiles=12, methods=("sr3", "bicubic"))
    for (method, domain), part in rows.groupby(["method", "test_domain"]):
        store.write_shard(shard_key(run="r1", model=method, domain=domain), part)
    table = gap_table(store, n_boot=100)
    overview = views.gap_overview(
        store.connect(), source_domain="synthetic", target_domain="simulated_cross_sensor"
    )
    assert len(overview) == len(table) == 2 * 3
    cols = ["n_tiles", "mean_source", "mean_target", "gap"]
    np.testing.assert_allclose(overview[cols].to_numpy(float), table[cols].to_numpy(float), rtol=1e-10)
    assert (overview["higher_better"] == table["higher_better"]).all()
    # and from a folder path or a connection
    same = gap_table(tmp_path, n_boot=100)
    pd.testing.assert_frame_equal(same, table)
    con = store.connect()
    pd.testing.assert_frame_equal(gap_table(con, n_boot=100), table)


def test_split_and_metric_filters_and_bad_group():
    rows = result_rows(tiles=6)
    rows = pd.concat([rows, rows.assign(split="val", value=0.0)])
    table = gap_table(rows, metric=["psnr", "sam"], n_boot=50)
    assert sorted(table["metric"]) == ["psnr", "sam"]
    assert table.loc[table["metric"] == "psnr", "mean_source"].iloc[0] > 20  # val rows (0.0) excluded
    with pytest.raises(InputError, match=r"no rows in the source domain 'synthetic' \(found \[\]\)"):
        gap_table(rows, metric="nope", n_boot=50)
    with pytest.raises(ConfigError, match="cannot group a gap by"):
        gap_table(rows, group=("method", "tile_id"))
    by_band = gap_table(rows, group=("metric",), n_boot=50)
    assert list(by_band.columns[:4]) == ["metric", "band", "aggregate", "train_blocks"]


def test_conflicting_metric_direction_is_reported(tmp_path):
    rows = result_rows(tiles=4)
    rows.loc[(rows["metric"] == "psnr") & (rows["test_domain"] == "synthetic"), "higher_better"] = False
    with pytest.raises(InputError, match=r"results rows: metric\(s\) \['psnr'\] have both higher_better"):
        gap_table(rows, n_boot=10)  # caught when rows are validated
    store = ResultsStore(tmp_path)  # each shard is consistent on its own: caught by the query
    for domain, part in rows.groupby("test_domain"):
        store.write_shard(domain, part)
    with pytest.raises(InputError, match=r"\['psnr'\] have rows with both higher_better"):
        gap_table(store, n_boot=10)


def test_no_paired_tiles_gives_an_empty_table():
    rows = result_rows(tiles=4)
    rows.loc[rows["test_domain"] == "synthetic", "tile_id"] += "_s"
    table = gap_table(rows, n_boot=10)
    assert table.empty and "gap_ci_low" in table.columns


def test_train_test_matrix_means_per_train_and_test_domain():
    syn = result_rows(tiles=10, regime="synthetic-only", seed=1)
    real = result_rows(tiles=10, regime="real-only", seed=2).assign(train_domain="real_cross_sensor")
    scaling = result_rows(tiles=10, regime="real-only", train_blocks=2, seed=3).assign(
        train_domain="real_cross_sensor", value=-1.0)
    matrix = train_test_matrix(pd.concat([syn, real, scaling]), metric="psnr", n_boot=100)
    assert len(matrix) == 4  # 2 regimes (train domains) × 2 test domains; scaling rows excluded
    for regime, frame in ((("synthetic-only"), syn), (("real-only"), real)):
        for domain in ("synthetic", "simulated_cross_sensor"):
            cell = matrix[(matrix["regime"] == regime) & (matrix["test_domain"] == domain)].iloc[0]
            expected = frame[(frame["metric"] == "psnr") & (frame["test_domain"] == domain)]["value"].mean()
            assert cell["mean"] == pytest.approx(expected)
            assert cell["ci_low"] < cell["mean"] < cell["ci_high"] and cell["n_tiles"] == 10
    assert set(matrix["train_domain"]) == {"synthetic", "real_cross_sensor"}
    all_rows = pd.concat([syn, real, scaling])
    with_scaling = train_test_matrix(all_rows, metric="psnr", include_scaling=True, n_boot=10)
    assert (with_scaling["mean"] < matrix["mean"].max()).any()
