"""Scores computed window by window equal the in-memory engine's (pixel metrics, SSIM), and the
per-window network scores are what the module says they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from affine import Affine
from rasterio.crs import CRS
from scipy.ndimage import gaussian_filter

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io.geotiff import read_raster, write_cog
from mindgap_core.metrics.engine import Evaluator, ScoreOptions
from mindgap_core.metrics.lpips_sat import load_backbone, lpips_sat_score
from mindgap_core.metrics.windowed import WindowedOptions, score_windowed
from mindgap_core.types import GeoRaster
from tests.fixtures.metric_tiles import BANDS, s2_reflectance

EXACT = ("psnr", "sam", "ergas", "cpsnr")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """HR: the real S2 patch (300 x 300 reflectance) with a cloud-like hole; SR: a seeded blurred,
    biased, noisy copy with a few invalid pixels of its own."""
    rng = np.random.default_rng(4)
    hr = s2_reflectance().astype(np.float32)
    gain = rng.uniform(0.95, 1.05, (4, 1, 1))
    sr = np.stack([gaussian_filter(b, 0.9) for b in hr.astype(np.float64)]) * gain
    sr = (sr + rng.normal(0, 0.004, sr.shape)).astype(np.float32)
    rr, cc = np.mgrid[:300, :300]
    hr_mask = (rr - 120) ** 2 + (cc - 200) ** 2 > 25**2
    sr_mask = ~((rr > 280) & (cc < 30))
    t = Affine(5.0, 0, 600000, 0, -5.0, 5000000)
    folder = tmp_path_factory.mktemp("scores")
    hr_path = write_cog(GeoRaster(hr, t, CRS.from_epsg(32618), BANDS, mask=hr_mask), folder / "hr.tif")
    sr_path = write_cog(GeoRaster(sr, t, CRS.from_epsg(32618), BANDS, mask=sr_mask), folder / "sr.tif")
    return sr_path, hr_path


def whole_image_rows(sr_path: Path, hr_path: Path, metrics: tuple[str, ...], **kw) -> dict:
    ev = Evaluator(metrics, ScoreOptions(scale=2), "cpu", **kw)
    rows = ev.score_rasters([("t", read_raster(sr_path), read_raster(hr_path), None)])
    return {(r.metric, r.band): r.value for r in rows}


@pytest.mark.parametrize("window", [128, 300])
def test_pixel_metrics_and_ssim_equal_the_engine(files: tuple[Path, Path], window: int) -> None:
    sr_path, hr_path = files
    metrics = (*EXACT, "ssim")
    expected = whole_image_rows(sr_path, hr_path, metrics)
    rows = score_windowed(sr_path, hr_path, metrics=metrics, options=WindowedOptions(scale=2, window=window))
    got = {(r.metric, r.band): r.value for r in rows}
    assert got.keys() == expected.keys() and len(got) == 3 * 4 + 5  # sam, ergas: "all" only
    for key, value in expected.items():
        tolerance = 1e-6 if key[0] == "ssim" else 1e-10
        assert got[key] == pytest.approx(value, rel=tolerance, abs=tolerance), key
    assert {r.options["window"] for r in rows} == {window}
    assert "exact" in next(r for r in rows if r.metric == "cpsnr").options["windowed"]


def test_lpips_sat_is_the_area_weighted_mean_over_windows(files: tuple[Path, Path]) -> None:
    sr_path, hr_path = files
    model = load_backbone(None, "cpu")
    whole = whole_image_rows(sr_path, hr_path, ("lpips_sat",), lpips_sat=model)[("lpips_sat", "all")]
    one = score_windowed(sr_path, hr_path, metrics=["lpips_sat"], lpips_sat=model,
                         options=WindowedOptions(window=300))
    assert one[0].value == pytest.approx(whole, rel=1e-6)  # one window: the whole-image score
    rows = score_windowed(sr_path, hr_path, metrics=["lpips_sat"], lpips_sat=model,
                          options=WindowedOptions(window=128))
    sr, hr = read_raster(sr_path).array, read_raster(hr_path).array
    total = weight = 0.0
    for r0, r1 in ((0, 128), (128, 256), (256, 300)):
        for c0, c1 in ((0, 128), (128, 256), (256, 300)):
            # edge windows narrower than 64 pixels are widened toward the interior
            rows_, cols_ = slice(min(r0, r1 - 64), r1), slice(min(c0, c1 - 64), c1)
            x, y = (torch.from_numpy(a[None, :, rows_, cols_].copy()) for a in (sr, hr))
            total += float(lpips_sat_score(model, x, y, BANDS)[0]) * (r1 - r0) * (c1 - c0)
            weight += (r1 - r0) * (c1 - c0)
    assert rows[0].value == pytest.approx(total / weight, rel=1e-6)
    assert rows[0].value != pytest.approx(whole, rel=1e-3)  # and it is not the whole-image score
    assert "not the whole-image score" in rows[0].options["windowed"]


def test_refusals_name_what_is_wrong(files: tuple[Path, Path], tmp_path: Path) -> None:
    sr_path, hr_path = files
    with pytest.raises(ConfigError, match="consistency_reflectance need.* the whole image"):
        score_windowed(sr_path, hr_path, metrics=["psnr", "consistency_reflectance"])
    with pytest.raises(ConfigError, match="ergas needs the scale"):
        score_windowed(sr_path, hr_path, metrics=["ergas"])
    default = score_windowed(sr_path, hr_path, lpips_trunk=tmp_path / "no_alexnet.pth")
    assert {r.metric for r in default} == {"psnr", "ssim", "sam", "cpsnr", "lpips_sat"}
    hr = read_raster(hr_path)
    small = write_cog(hr.replace(array=hr.array[:, :100], mask=None), tmp_path / "s.tif")
    with pytest.raises(InputError, match="SR must be on the HR grid"):
        score_windowed(sr_path, small, metrics=["psnr"])


def test_fits_whole_image_follows_the_budget(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mindgap_core.metrics.windowed import WHOLE_IMAGE_BYTES_PER_VALUE, fits_whole_image

    needed = 300 * 300 * 4 * WHOLE_IMAGE_BYTES_PER_VALUE
    monkeypatch.setenv("MINDGAP_MEMORY_BUDGET", str(needed))
    assert fits_whole_image(files[1])
    monkeypatch.setenv("MINDGAP_MEMORY_BUDGET", str(needed - 1))
    assert not fits_whole_image(files[1])
