"""gap_table: sign convention per metric direction, pairing, domains, agreement with the overview query."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mindgap_core.analysis.gap import gap_table, train_test_matrix
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.store import ResultsStore, shard_key, views
from tests.mindgap_core.analysis.synth import result_rows

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
    ("metric", "higher_better", "synthetic", "real", "gap", "rel"),
    [
        ("psnr", True, 30.0, 27.0, -3.0, -10.0),     # higher-better, worse on real: real − synthetic < 0
        ("ssim", True, 0.80, 0.88, 0.08, 10.0),      # higher-better, better on real
        ("lpips", False, 0.20, 0.30, -0.10, -50.0),  # lower-better, worse on real: sign flipped
        ("sam", False, 5.0, 4.0, 1.0, 20.0),         # lower-better, better on real
        ("ergas", False, 4.0, 5.0, -1.0, -25.0),
    ],
)
def test_sign_convention_negative_means_worse_on_real(metric, higher_better, synthetic, real, gap, rel):
    table = gap_table(exact_rows(metric, higher_better, synthetic, real), n_boot=200)
    row = table.iloc[0]
    assert row["metric"] == metric and bool(row["higher_better"]) is higher_better
    assert row["mean_source"] == pytest.approx(synthetic) and row["mean_target"] == pytest.approx(real)
    assert row["gap"] == pytest.approx(gap)
    assert row["rel_gap_pct"] == pytest.approx(rel)
    # every tile moved by the same amount: the paired CI collapses onto the gap
    assert row["gap_ci_low"] == pytest.approx(gap) and row["gap_ci_high"] == pytest.approx(gap)
    assert row["rel_ci_low"] <= row["rel_gap_pct"] <= row["rel_ci_high"]
    assert np.sign(row["rel_ci_low"]) == np.sign(row["rel_ci_high"]) == np.sign(gap)


def test_output_columns_and_domains():
    table = gap_table(result_rows(tiles=12), n_boot=100)
    assert list(table.columns) == [
        "method", "regime", "metric", "band", "aggregate", "train_blocks", "source_domain", "target_domain",
        "n_tiles", "mean_source", "mean_target", "gap", "gap_ci_low", "gap_ci_high", "rel_gap_pct",
        "rel_ci_low", "rel_ci_high", "wilcoxon_p", "higher_better",
    ]
    assert set(table["target_domain"]) == {"simulated_cross_sensor"}
    assert (table["gap"] < 0).all()  # synth.py makes every metric 10 % worse on the cross-sensor domain
    assert (table["gap_ci_low"] <= table["gap"]).all() and (table["gap"] <= table["gap_ci_high"]).all()


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


def test_wilcoxon_p_and_ci_match_a_direct_computation():
    rows = result_rows(tiles=25, seed=4)
    table = gap_table(rows, metric="lpips", n_boot=500).iloc[0]
    lp = rows[rows["metric"] == "lpips"].pivot(index="tile_id", columns="test_domain", values="value")
    expected = stats.wilcoxon(lp["simulated_cross_sensor"], lp["synthetic"]).pvalue
    assert table["wilcoxon_p"] == pytest.approx(expected, rel=1e-12)
    assert table["gap"] == pytest.approx((lp["synthetic"] - lp["simulated_cross_sensor"]).mean())


def test_wilcoxon_p_matches_scipy_per_group_on_many_tiles_with_zeros_and_ties():
    rows = result_rows(tiles=64, seed=9)  # > 50 tiles: the vectorised (asymptotic) path
    cross = rows["test_domain"] == "simulated_cross_sensor"
    same_tiles = rows["tile_id"].isin(["t000", "t001", "t002"])
    syn = rows[~cross].set_index(["metric", "tile_id"])["value"]
    copy = rows.loc[cross & same_tiles]
    rows.loc[cross & same_tiles, "value"] = syn.loc[list(zip(copy["metric"], copy["tile_id"]))].to_numpy()
    rows.loc[rows["metric"] == "sam", "value"] = rows.loc[rows["metric"] == "sam", "value"].round(1)  # ties
    table = gap_table(rows, n_boot=50)
    for row in table.itertuples():
        part = rows[rows["metric"] == row.metric]
        part = part.pivot(index="tile_id", columns="test_domain", values="value")
        expected = stats.wilcoxon(part["simulated_cross_sensor"], part["synthetic"]).pvalue
        assert row.wilcoxon_p == pytest.approx(expected, rel=1e-12), row.metric


def test_a_group_ci_does_not_depend_on_other_groups_and_is_seeded():
    rows = result_rows(tiles=15, methods=("sr3", "sinsr"))
    full = gap_table(rows, n_boot=300, seed=7)
    one = gap_table(rows, metric="sam", filters={"method": "sinsr"}, n_boot=300, seed=7)
    pick = full[(full["metric"] == "sam") & (full["method"] == "sinsr")]
    cols = ["gap_ci_low", "gap_ci_high", "rel_ci_low", "rel_ci_high"]
    np.testing.assert_allclose(one[cols].to_numpy(float), pick[cols].to_numpy(float))
    other = gap_table(rows, metric="sam", filters={"method": "sinsr"}, n_boot=300, seed=8)
    assert not np.allclose(other[cols].to_numpy(float), one[cols].to_numpy(float))


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
    cols = ["n_tiles", "mean_source", "mean_target", "gap", "rel_gap_pct"]
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
