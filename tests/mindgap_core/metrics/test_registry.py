"""Every metric declares direction, range, bands, HR/LR needs and map support; lookups are strict."""

from __future__ import annotations

import pytest

from mindgap_core.errors import ConfigError
from mindgap_core.metrics.registry import DEFAULT_METRICS, METRICS, get_metric, parse_metric_list
from mindgap_core.types import CANONICAL_BANDS


def test_every_metric_is_fully_declared():
    assert {"psnr", "ssim", "sam", "ergas", "cpsnr", "lpips", "lpips_sat", "consistency_reflectance",
            "consistency_spectral", "consistency_spatial", "synthesis", "improvement", "omission",
            "hallucination"} == set(METRICS)
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
