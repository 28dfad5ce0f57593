"""Headline findings are computed from the gap table (its verdicts), never written by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mindgap_core.analysis.gap import gap_table
from mindgap_core.analysis.headlines import (
    domain_label,
    format_value,
    headline_findings,
    scaling_findings,
    train_group,
)
from tests.mindgap_core.analysis.synth import block_correlated_rows, block_of, result_rows


def _table(gaps, train_domains, methods=None, verdicts=None, ci_high=None) -> pd.DataFrame:
    n = len(gaps)
    gaps = np.asarray(gaps, float)
    return pd.DataFrame({
        "method": methods or [f"m{i}" for i in range(n)], "regime": ["r"] * n, "train_domain": train_domains,
        "metric": "psnr", "source_domain": "synthetic", "target_domain": "simulated_cross_sensor",
        "n_tiles": 12, "n_units": 3, "unit": "block", "mean_source": 30.0, "mean_target": 30.0 + gaps,
        "gap": gaps, "gap_ci_low": gaps - 0.5, "gap_ci_high": gaps + 0.5 if ci_high is None else ci_high,
        "p_adjusted": 0.01, "verdict": verdicts or ["worse" if g < -0.5 else "inconclusive" for g in gaps],
        "ratio_of": "mse", "ratio": 10 ** (-gaps / 10), "ratio_ci_low": np.nan, "ratio_ci_high": np.nan,
        "excess_gap": np.nan, "excess_verdict": "", "higher_better": True,
    })


def test_counts_largest_gap_and_training_groups() -> None:
    domains = ["synthetic", "simulated_cross_sensor", "simulated_cross_sensor", "none"]
    table = _table([-3.0, -0.2, 1.0, -1.0], domains, methods=["sr3", "sr3", "resshift", "bicubic"])
    text = headline_findings(table, metric_label="PSNR", unit="dB")
    assert text[0].startswith("3 of 4 models score worse on the simulated cross-sensor test tiles")
    assert "for 2 of them the gap is shown (95 % CI below zero over 3 blocks" in text[0]
    assert "Largest gap: sr3 / r, trained on synthetic: -3 dB" in text[1] and "MSE ×2" in text[1]
    assert "%" not in text[1].replace("95 % CI", "")  # no percentage of a dB value
    assert "synthetic-trained models (1): mean gap -3 dB" in text[2]
    assert "cross-sensor-trained models (2): mean gap +0.4 dB" in text[2]
    assert "bicubic baseline's gap is -1 dB" in text[3]


def test_verdicts_not_point_estimates_decide_and_adapter_rows_are_left_out() -> None:
    table = _table([-3.0, -2.0], ["synthetic", "synthetic"], verdicts=["inconclusive", "inconclusive"])
    adapter = _table([-9.0], ["synthetic"], verdicts=["worse"]).assign(regime="synthetic+harmoniser")
    text = headline_findings(pd.concat([table, adapter]), metric_label="PSNR", unit="dB")
    assert text[0].startswith("2 of 2 models") and "for 0 of them the gap is shown" in text[0]
    assert "harmoniser" not in " ".join(text)


def test_no_model_worse_and_no_ci() -> None:
    table = _table([0.5, 0.1], ["synthetic", "synthetic"], ci_high=[np.nan, np.nan])
    text = headline_findings(table, metric_label="SSIM")
    assert text[0].startswith("0 of 2 models") and "too few spatial blocks" in text[0]
    assert text[1].startswith("Smallest improvement (no model is worse): m1 / r")
    assert headline_findings(table.iloc[:0], metric_label="SSIM") == []


def test_excess_gap_sentence_from_a_real_gap_table() -> None:
    rows = block_correlated_rows(blocks=6, per_block=2, methods=("sr3", "bicubic"))
    table = gap_table(rows, blocks={t: block_of(t, 2) for t in set(rows["tile_id"])})
    text = headline_findings(table, metric_label="PSNR", unit="dB")
    assert text[-1].startswith("Against interpolation (excess gap = model's gap − bicubic's on the same")
    expected = int(table["excess_verdict"].isin(["more fragile", "less fragile"]).sum())
    assert f"{expected} of 1 models differ from bicubic" in text[-1]
    flat = gap_table(result_rows(tiles=12, methods=("sr3", "bicubic")))
    psnr = headline_findings(flat[flat["metric"] == "psnr"], metric_label="PSNR")
    assert "of 3 models" not in " ".join(psnr)


def test_labels_and_groups() -> None:
    assert domain_label("simulated_cross_sensor") == "simulated cross-sensor"
    domains = ("synthetic", "real_cross_sensor", "synthetic+simulated_cross_sensor", "none", "unknown")
    assert [train_group(d) for d in domains] == ["synthetic", "cross-sensor", "mixed", "untrained", "unknown"]
    assert format_value(float("nan")) == "n/a" and format_value(1.23456, "dB", True) == "+1.23 dB"


def test_scaling_sentences_follow_the_verdict_and_name_the_series() -> None:
    trend = pd.DataFrame({
        "method": ["sr3"] * 3, "regime": ["real"] * 3, "test_domain": ["a", "b", "c"],
        "series": ["diversity", "size", "confounded"], "factor": ["blocks", "pairs", "blocks"],
        "fixed": [4.0, 4.0, np.nan], "levels": ["1,2,4", "4,8,16", "1,2,4,7"], "n_tiles": 12, "n_units": 3,
        "unit": "block", "improvement_per_doubling": [0.5, -0.5, 0.1],
        "improvement_ci_low": [0.2, -0.8, -0.2],
        "improvement_ci_high": [0.8, -0.2, 0.4], "verdict": ["better", "worse", "inconclusive"],
    })
    text = scaling_findings(trend, metric_label="PSNR", unit="dB")
    assert "same number of training pairs at 4 training pairs" in text[0]
    assert "improves with more training blocks" in text[0]
    assert "(control) at 4 blocks" in text[1] and "gets worse with more training pairs" in text[1]
    assert "confounded" in text[2] and "inconclusive" in text[2]
    assert "+0.5 dB" in text[0] and "3 blocks" in text[0]
