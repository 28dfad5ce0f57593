"""Every metric declares direction, range, bands, HR/LR needs and map support; lookups are strict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mindgap_core.errors import ConfigError
from mindgap_core.metrics.batch import MetricValues, ScoreBatch
from mindgap_core.metrics.engine import Evaluator
from mindgap_core.metrics.registry import (
    DEFAULT_METRICS,
    METRICS,
    UNCERTAINTY_METRICS,
    MetricSpec,
    get_metric,
    metric_label,
    parse_metric_list,
)
from mindgap_core.types import CANONICAL_BANDS


def test_every_metric_is_fully_declared():
    assert {"psnr", "ssim", "sam", "ergas", "cpsnr", "lpips", "lpips_sat", "consistency_reflectance",
            "consistency_spectral", "consistency_spatial", "synthesis", "improvement", "omission",
            "hallucination", "calibration_error", "spread", "uncertainty_spearman", "uncertainty_auroc",
            "coverage_10", "coverage_20", "coverage_30", "coverage_40", "coverage_50", "coverage_60",
            "coverage_70", "coverage_80", "coverage_90", "coverage_95"} == set(METRICS)
    assert all(METRICS[m].needs_samples for m in UNCERTAINTY_METRICS)
    assert not any(METRICS[m].needs_samples for m in DEFAULT_METRICS)
    for name, spec in METRICS.items():
        assert spec.name == name
        assert isinstance(spec.higher_better, bool) and isinstance(spec.spatial_map, bool)
        lo, hi = spec.value_range
        assert lo is None or hi is None or lo < hi
        assert spec.bands and set(spec.bands) <= set(CANONICAL_BANDS)
        assert spec.needs_hr or spec.needs_lr
        assert spec.description


def test_directions_and_needs_are_the_conventional_ones():
    assert METRICS["psnr"].higher_better and METRICS["ssim"].higher_better
    assert not METRICS["lpips"].higher_better and not METRICS["sam"].higher_better
    assert not METRICS["ergas"].higher_better and not METRICS["hallucination"].higher_better
    assert METRICS["consistency_spectral"].needs_lr and not METRICS["consistency_spectral"].needs_hr
    assert METRICS["improvement"].needs_lr and METRICS["improvement"].needs_hr
    assert METRICS["synthesis"].higher_better  # opensr-test's README: synthesis ↑
    assert METRICS["synthesis"].needs_lr and METRICS["synthesis"].needs_hr
    assert METRICS["lpips"].bands == ("red", "green", "blue")
    assert METRICS["lpips_sat"].bands == CANONICAL_BANDS
    assert {n for n, s in METRICS.items() if s.spatial_map} == {"ssim", "sam", "lpips", "lpips_sat"}


def test_metric_lists_parse_strictly():
    assert parse_metric_list(None) == DEFAULT_METRICS
    assert parse_metric_list(" PSNR,ssim ,psnr") == ("psnr", "ssim")
    with pytest.raises(ConfigError, match="unknown metric 'fid'"):
        parse_metric_list("psnr,fid")
    with pytest.raises(ConfigError, match="known: psnr"):
        get_metric("nope")


def test_every_metric_has_a_label_and_a_resolvable_scorer():
    for name, spec in METRICS.items():
        assert spec.label and metric_label(name) == spec.label
        assert callable(spec.scorer()), name
    assert metric_label("not_a_metric") == "not_a_metric"
    bad = MetricSpec("bad", "Bad", True, (None, None), CANONICAL_BANDS, True, False, False, False, "", "x",
                     "mindgap_core.metrics.scorers:no_such_function")
    with pytest.raises(ConfigError, match="no_such_function"):
        bad.scorer()


def _mean_abs_difference(batch: ScoreBatch) -> MetricValues:
    """A toy metric: per band and overall mean |SR - HR|."""
    per_band = (batch.sr_matched - batch.hr).abs().mean(dim=(-2, -1)).to(torch.float64)
    return MetricValues(per_band.mean(dim=1), per_band, {"toy_option": 7})


def test_adding_a_metric_is_one_function_and_one_registry_entry(monkeypatch):
    """The engine knows no metric by name: a new registry entry is scored like a built-in one."""
    spec = MetricSpec("toy_mae", "Toy MAE", False, (0.0, None), CANONICAL_BANDS, True, False, False, True,
                      "reflectance", "mean absolute error (test metric)", _mean_abs_difference)
    monkeypatch.setitem(METRICS, "toy_mae", spec)
    rng = np.random.default_rng(0)
    hr = rng.uniform(0.0, 0.5, (3, 4, 16, 16)).astype(np.float32)
    sr = hr + np.float32(0.01) * np.arange(1, 5, dtype=np.float32)[None, :, None, None]
    rows = Evaluator(["toy_mae", "psnr"]).score_arrays(sr, hr, band_names=CANONICAL_BANDS)
    toy = {(r.tile_id, r.band): r for r in rows if r.metric == "toy_mae"}
    assert len(toy) == 3 * 5
    for (_, band), row in toy.items():
        expected = 0.025 if band == "all" else 0.01 * (CANONICAL_BANDS.index(band) + 1)
        assert row.value == pytest.approx(expected, abs=1e-6)
        assert row.options["toy_option"] == 7 and row.options["hist_match"] == "none"
    assert {r.metric for r in rows} == {"toy_mae", "psnr"}
    assert parse_metric_list("toy_mae") == ("toy_mae",)
