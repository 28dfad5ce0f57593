"""Metric maps are georeferenced rasters on the HR grid and equal the per-pixel references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from affine import Affine
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from mindgap_core.errors import ConfigError
from mindgap_core.io import read_raster, write_cog
from mindgap_core.metrics.lpips_sat import LPIPSSat, lpips_sat_score
from mindgap_core.metrics.lpips_std import RANDOM_TRUNK, load_lpips
from mindgap_core.metrics.maps import metric_maps
from mindgap_core.ssl.encoder import EncoderConfig, ResNetEncoder
from tests.fixtures.metric_tiles import BANDS, demo_hr_reflectance


@pytest.fixture(scope="module")
def pair():
    full = demo_hr_reflectance()
    hr = full.replace(array=full.array[:, 100:164, 200:264].copy(),
                      transform=full.transform @ Affine.translation(200, 100), mask=None)
    sr = hr.replace(array=np.stack([gaussian_filter(b, 1.0) for b in hr.array]).astype(np.float32))
    return sr, hr


def test_maps_are_aligned_to_the_hr_grid_and_match_references(pair, tmp_path):
    sr, hr = pair
    torch.manual_seed(0)
    sat = LPIPSSat(ResNetEncoder(EncoderConfig(stem_width=8, stem_stride=2, widths=(8, 16, 16, 32))),
                   BANDS, (0.05, 0.07, 0.08, 0.2), (0.02, 0.03, 0.04, 0.05), backbone_id="tiny")
    maps = metric_maps(sr, hr, ("abs_error", "ssim", "sam", "lpips", "lpips_sat"),
                       lpips_model=load_lpips(RANDOM_TRUNK), lpips_sat_model=sat)
    for kind, m in maps.items():
        assert m.transform == hr.transform and m.crs == hr.crs and m.shape == hr.shape, kind
        assert m.array.dtype == np.float32
    assert maps["abs_error"].band_names == tuple(f"abs_error_{b}" for b in BANDS)
    assert np.allclose(maps["abs_error"].array, np.abs(sr.array - hr.array), atol=1e-7)
    _, full = structural_similarity(hr.array[2].astype(np.float64), sr.array[2].astype(np.float64),
                                    gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=1, full=True)
    assert np.abs(maps["ssim"].array[2] - full).max() < 1e-4
    heat = lpips_sat_score(sat, torch.from_numpy(sr.array)[None], torch.from_numpy(hr.array)[None], BANDS,
                           spatial=True)[0].numpy()
    assert np.allclose(maps["lpips_sat"].array[0], heat, atol=1e-6)
    # round trip through a COG keeps the georeferencing
    path = write_cog(maps["lpips_sat"], tmp_path / "lpips_sat.tif")
    back = read_raster(path)
    assert back.transform == hr.transform and back.crs == hr.crs
    assert np.allclose(back.array, maps["lpips_sat"].array)


def test_network_maps_need_their_model(pair):
    sr, hr = pair
    with pytest.raises(ConfigError, match="LPIPS map needs"):
        metric_maps(sr, hr, ("lpips",))
    with pytest.raises(ConfigError, match="unknown map"):
        metric_maps(sr, hr, ("fid",))
