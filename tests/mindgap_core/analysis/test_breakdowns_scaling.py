"""Breakdown of the gap by tile condition, and diversity-scaling curves and trends."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mindgap_core.analysis.breakdowns import bin_edges, breakdown
from mindgap_core.analysis.scaling import scaling_curve, scaling_trend
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.store import ResultsStore

N = 40
TILES = [f"t{i:02d}" for i in range(N)]


def rows_with_dt_effect(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PSNR drops 0.1 dB per day of acquisition difference on the cross-sensor domain."""
    rng = np.random.default_rng(seed)
    dt_days = rng.uniform(0, 30, N)
    psf = rng.uniform(1.0, 3.0, N)
    source = 28 + rng.normal(0, 2, N)
    target = source - 0.1 * dt_days + rng.normal(0, 0.2, N)
    base = {
        "run_id": "r1", "model": "sr3/synthetic-only", "method": "sr3", "regime": "synthetic-only",
        "train_domain": "synthetic", "split": "test", "band": "all", "metric": "psnr", "higher_better": True,
    }
    rows = pd.concat([
        pd.DataFrame({**base, "test_domain": "synthetic", "tile_id": TILES, "value": source}),
        pd.DataFrame({**base, "test_domain": "simulated_cross_sensor", "tile_id": TILES, "value": target}),
    ], ignore_index=True)
    conditions = pd.DataFrame({
        "tile_id": TILES, "test_domain": "simulated_cross_sensor", "dt_days": dt_days, "shift_px": 0.3,
        "simulator_params": [json.dumps({"psf_sigma": float(p), "name": "gauss"}) for p in psf],
    })
    return rows, conditions


def test_gap_per_quantile_bin_of_dt(tmp_path):
    rows, cond = rows_with_dt_effect()
    store = ResultsStore(tmp_path)
    store.write_shard("rows", rows)
    store.write_conditions("cond", cond)
    table = breakdown(store, by="dt_days", bins=2, n_boot=300)
    assert list(table["condition"]) == ["dt_days", "dt_days"]
    assert table["n_tiles"].sum() == N and table["bin_high"].iloc[0] == table["bin_low"].iloc[1]
    assert table["bin"].iloc[0].endswith(")") and table["bin"].iloc[1].endswith("]")
    diff = rows.pivot(index="tile_id", columns="test_domain", values="value")
    diff = (diff["simulated_cross_sensor"] - diff["synthetic"]).reindex(cond["tile_id"]).to_numpy()
    median = np.median(cond["dt_days"])
    masks = (cond["dt_days"] <= median, cond["dt_days"] > median)
    for row, mask in zip(table.itertuples(), masks, strict=True):
        assert row.gap == pytest.approx(diff[mask.to_numpy()].mean())
        assert row.gap_ci_low <= row.gap <= row.gap_ci_high
    assert table["gap"].iloc[1] < table["gap"].iloc[0] < 0  # larger Δt, larger gap
    assert table["gap_ci_high"].iloc[1] < table["gap_ci_low"].iloc[0]


def test_explicit_edges_simulator_params_and_conditions_given_as_rows():
    rows, cond = rows_with_dt_effect()
    cond.loc[0, "dt_days"] = np.nan  # a tile without the condition is left out
    table = breakdown(rows, conditions=cond, by="dt_days", bins=[0, 10, 20, 30], n_boot=100)
    assert len(table) == 3 and table["n_tiles"].sum() == N - 1
    assert list(table["bin_low"]) == [0, 10, 20]
    sim = breakdown(rows, conditions=cond, by="simulator_params.psf_sigma", bins=3, n_boot=100)
    assert sim["n_tiles"].sum() == N and set(sim["condition"]) == {"simulator_params.psf_sigma"}
    with pytest.raises(ConfigError, match="unknown condition 'cloudiness'"):
        breakdown(rows, conditions=cond, by="cloudiness")
    one_bin = breakdown(rows, conditions=cond, by="shift_px", bins=4, n_boot=50)  # constant condition
    assert len(one_bin) == 1 and one_bin["n_tiles"].iloc[0] == N
    empty = breakdown(rows, conditions=cond, by="simulator_params.name", n_boot=50)  # not numeric
    assert empty.empty


def test_breakdown_without_condition_records_is_an_input_error():
    rows, _ = rows_with_dt_effect()
    with pytest.raises(InputError, match="no condition records for the test domain 'simulated_cross_sensor'"):
        breakdown(rows, by="dt_days")


def test_bin_edges():
    np.testing.assert_allclose(bin_edges(np.arange(9.0), 4), [0, 2, 4, 6, 8])
    np.testing.assert_allclose(bin_edges(np.array([1.0, 1.0, 1.0, 5.0]), 4), [1.0, 2.0, 5.0])
    with pytest.raises(ConfigError, match="must increase"):
        bin_edges(np.arange(3.0), [0, 2, 1])


def scaling_rows(seed: int = 0) -> pd.DataFrame:
    """PSNR +0.5 dB and LPIPS −0.01 per doubling of training blocks; SSIM flat."""
    rng = np.random.default_rng(seed)
    effect = {"psnr": rng.normal(0, 1.5, N), "lpips": rng.normal(0, 0.03, N), "ssim": rng.normal(0, 0.05, N)}
    frames = []
    for blocks in (1, 2, 4, 8):
        level = np.log2(blocks)
        for metric, hb, value in (("psnr", True, 22 + 0.5 * level), ("lpips", False, 0.35 - 0.01 * level),
                                  ("ssim", True, 0.7)):
            noise = rng.normal(0, 0.05 * abs(value) * 0.2, N)
            frames.append(pd.DataFrame({
                "run_id": "scale", "model": f"sr3/scaling-{blocks}", "method": "sr3", "regime": "scaling",
                "train_domain": "real_cross_sensor", "train_blocks": blocks,
                "test_domain": "real_cross_sensor",
                "tile_id": TILES, "split": "test", "band": "all", "metric": metric,
                "value": value + effect[metric] + noise, "higher_better": hb,
            }))
    other = frames[0].assign(train_blocks=None, regime="real-only", model="sr3/real-only")
    return pd.concat([*frames, other], ignore_index=True)


def test_scaling_curve_has_one_point_per_block_count_with_cis():
    rows = scaling_rows()
    curve = scaling_curve(rows)
    psnr = curve[curve["metric"] == "psnr"]
    assert list(psnr["train_blocks"]) == [1, 2, 4, 8]  # the non-scaling regime is left out
    assert set(psnr["series"]) == {"confounded"}  # no training pairs known: N may grow with K
    scaled = rows[(rows["metric"] == "psnr") & rows["train_blocks"].notna()]
    expected = scaled.groupby("train_blocks")["value"].mean()
    np.testing.assert_allclose(psnr["mean"], expected.to_numpy())
    assert (psnr["ci_low"] < psnr["mean"]).all() and (psnr["mean"] < psnr["ci_high"]).all()
    assert (psnr["n_tiles"] == N).all()
    assert scaling_curve(rows[rows["train_blocks"].isna()]).empty


def test_scaling_trend_recovers_the_slope_per_doubling_with_direction():
    trend = scaling_trend(scaling_rows()).set_index("metric")
    assert trend.loc["psnr", "slope_per_doubling"] == pytest.approx(0.5, abs=0.05)
    assert trend.loc["psnr", "improvement_ci_low"] > 0 and trend.loc["psnr", "verdict"] == "better"
    assert trend.loc["lpips", "slope_per_doubling"] == pytest.approx(-0.01, abs=0.003)
    assert trend.loc["lpips", "improvement_per_doubling"] == pytest.approx(0.01, abs=0.003)
    assert trend.loc["lpips", "improvement_ci_low"] > 0  # lower LPIPS with more blocks is an improvement
    ssim = trend.loc["ssim"]
    assert ssim["improvement_ci_low"] < 0 < ssim["improvement_ci_high"]  # flat: no improvement detected
    assert ssim["verdict"] == "inconclusive"
    assert (trend["n_levels"] == 4).all() and (trend["n_tiles"] == N).all()
    assert (trend["levels"] == "1,2,4,8").all()


def fixed_size_rows(diversity_effect: float, size_effect: float, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """PSNR of the fixed-size design (K blocks, N pairs) = 22 + effects per doubling of K and of N; the
    test tiles sit in 10 blocks of 4 tiles with a shared block effect."""
    rng = np.random.default_rng(seed)
    block = np.repeat(rng.normal(0, 1.0, N // 4), 4)
    design = {(1, 4): "k1n4", (2, 4): "k2n4", (4, 4): "k4n4", (4, 8): "k4n8", (4, 16): "k4n16"}
    frames = []
    for (k, n), name in design.items():
        effect = diversity_effect * np.log2(k) + size_effect * np.log2(n / 4)
        value = 22 + effect + block + rng.normal(0, 0.05, N)
        frames.append(pd.DataFrame({
            "run_id": "scale", "model": f"regression/{name}", "method": "regression", "regime": "real",
            "train_domain": "simulated_cross_sensor", "train_blocks": k,
            "test_domain": "simulated_cross_sensor", "tile_id": TILES, "split": "test", "band": "all",
            "metric": "psnr", "value": value, "higher_better": True,
        }))
    return pd.concat(frames, ignore_index=True), {f"regression/{name}": n for (_, n), name in design.items()}


def test_fixed_size_series_separate_diversity_from_data_size():
    """Diversity matters, size does not: the diversity arm shows it, the size control does not; and the
    other way round. Models shared by both arms appear in both."""
    blocks = {t: f"b{int(t[1:]) // 4}" for t in TILES}
    for div, size in ((0.6, 0.0), (0.0, 0.6)):
        rows, pairs = fixed_size_rows(div, size)
        trend = scaling_trend(rows, design=pairs, blocks=blocks).set_index("series")
        assert set(trend.index) == {"diversity", "size"}
        assert trend.loc["diversity", "fixed"] == 4 and trend.loc["diversity", "levels"] == "1,2,4"
        assert trend.loc["size", "fixed"] == 4 and trend.loc["size", "levels"] == "4,8,16"
        assert trend.loc["diversity", "factor"] == "blocks" and trend.loc["size", "factor"] == "pairs"
        assert trend.loc["diversity", "improvement_per_doubling"] == pytest.approx(div, abs=0.05)
        assert trend.loc["size", "improvement_per_doubling"] == pytest.approx(size, abs=0.05)
        assert (trend["n_units"] == 10).all() and (trend["unit"] == "block").all()
        shown = trend.loc["diversity" if div else "size"]
        absent = trend.loc["size" if div else "diversity"]
        assert shown["verdict"] == "better" and absent["verdict"] == "inconclusive"
        curve = scaling_curve(rows, design=pairs, blocks=blocks)
        assert len(curve) == 6  # (4, 4) is a level of both arms
        assert set(curve.loc[curve["series"] == "size", "train_pairs"]) == {4.0, 8.0, 16.0}
    confounded = scaling_trend(rows, blocks=blocks)  # without the pairs, K and N cannot be told apart
    assert set(confounded["series"]) == {"confounded"}
