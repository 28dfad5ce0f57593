"""Headline findings are computed from the gap table, never written by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mindgap_core.analysis.headlines import (
    domain_label,
    format_value,
    headline_findings,
    scaling_findings,
    train_group,
)


def _table(gaps, train_domains, methods=None, ci_high=None) -> pd.DataFrame:
    n = len(gaps)
    gaps = np.asarray(gaps, float)
    return pd.DataFrame({
        "method": methods or [f"m{i}" for i in range(n)], "regime": ["r"] * n, "train_domain": train_domains,
        "metric": "psnr", "source_domain": "synthetic", "target_domain": "simulated_cross_sensor",
        "n_tiles": 12, "mean_source": 30.0, "mean_target": 30.0 + gaps, "gap": gaps,
        "gap_ci_low": gaps - 0.5, "gap_ci_high": gaps + 0.5 if ci_high is None else ci_high,
        "rel_gap_pct": gaps / 30 * 100, "wilcoxon_p": 0.01, "higher_better": True,
    })


def test_counts_largest_gap_and_training_groups() -> None:
    domains = ["synthetic", "simulated_cross_sensor", "simulated_cross_sensor", "none"]
    table = _table([-3.0, -0.2, 1.0, -1.0], domains, methods=["sr3", "sr3", "resshift", "bicubic"])
    text = headline_findings(table, metric_label="PSNR", unit="dB")
    assert text[0].startswith("3 of 4 models score worse on the simulated cross-sensor test tiles")
    assert "for 2 of them the 95 % CI" in text[0]  # -3 + 0.5 and -1 + 0.5 lie below zero; -0.2 + 0.5 does not
    assert "Largest gap: sr3 / r, trained on synthetic: -3 dB (-10 %" in text[1]
    assert "synthetic-trained models (1): mean gap -3 dB" in text[2]
    assert "cross-sensor-trained models (2): mean gap +0.4 dB" in text[2]
    assert "bicubic baseline's gap is -1 dB" in text[3]


def test_no_model_worse_and_no_ci() -> None:
    table = _table([0.5, 0.1], ["synthetic", "synthetic"], ci_high=[np.nan, np.nan])
    text = headline_findings(table, metric_label="SSIM")
    assert text[0].startswith("0 of 2 models") and "too few tiles" in text[0]
    assert text[1].startswith("Smallest improvement (no model is worse): m1 / r")
    assert headline_findings(table.iloc[:0], metric_label="SSIM") == []


def test_labels_and_groups() -> None:
    assert domain_label("simulated_cross_sensor") == "simulated cross-sensor"
    domains = ("synthetic", "real_cross_sensor", "synthetic+simulated_cross_sensor", "none", "unknown")
    assert [train_group(d) for d in domains] == ["synthetic", "cross-sensor", "mixed", "untrained", "unknown"]
    assert format_value(float("nan")) == "n/a" and format_value(1.23456, "dB", True) == "+1.23 dB"


def test_scaling_verdicts_follow_the_ci() -> None:
    trend = pd.DataFrame({
        "method": ["sr3"] * 3, "regime": ["real"] * 3, "test_domain": ["a", "b", "c"], "n_levels": 4,
        "n_tiles": 12, "improvement_per_doubling": [0.5, -0.5, 0.1], "improvement_ci_low": [0.2, -0.8, -0.2],
        "improvement_ci_high": [0.8, -0.2, 0.4],
    })
    text = scaling_findings(trend, metric_label="PSNR", unit="dB")
    assert "improves" in text[0] and "gets worse" in text[1] and "no clear change" in text[2]
    assert "+0.5 dB" in text[0]
