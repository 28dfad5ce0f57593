"""The batched evaluator: tidy rows, recorded options, batching invariance, strict input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from affine import Affine
from rasterio.crs import CRS
from skimage.exposure import match_histograms
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.metrics.engine import PSNR_CAP_DB, Evaluator, ScoreOptions, validate_pair
from mindgap_core.metrics.lpips_sat import LPIPSSat
from mindgap_core.metrics.lpips_std import RANDOM_TRUNK
from mindgap_core.ssl.encoder import EncoderConfig, ResNetEncoder
from mindgap_core.types import GeoRaster, MetricRow
from tests.fixtures.metric_tiles import BANDS, s2_pairs


def tiny_sat() -> LPIPSSat:
    torch.manual_seed(0)
    enc = ResNetEncoder(EncoderConfig(stem_width=8, stem_stride=2, widths=(8, 16, 16, 32)))
    return LPIPSSat(enc, BANDS, (0.06, 0.07, 0.09, 0.21), (0.02, 0.03, 0.04, 0.05), backbone_id="tiny")


@pytest.fixture(scope="module")
def data():
    sr, hr = s2_pairs(n=5, size=48, seed=4)
    lr = hr.reshape(5, 4, 24, 2, 24, 2).mean(axis=(3, 5))
    return sr.astype(np.float32), hr.astype(np.float32), lr.astype(np.float32)


@pytest.fixture(scope="module")
def evaluator():
    torch.manual_seed(0)
    return Evaluator(None, ScoreOptions(), lpips_trunk=RANDOM_TRUNK, lpips_sat=tiny_sat(), batch_size=2,
                     net_batch=3)


def as_table(rows: list[MetricRow]) -> dict:
    return {(r.tile_id, r.band, r.metric): r.value for r in rows}


def test_rows_are_tidy_with_bands_and_all(evaluator, data):
    sr, hr, lr = data
    rows = evaluator.score_arrays(sr, hr, lr, band_names=BANDS, tile_ids=[f"t{i}" for i in range(5)])
    table = as_table(rows)
    assert len(table) == len(rows)
    for m in ("psnr", "ssim", "cpsnr"):
        assert all((f"t{i}", b, m) in table for i in range(5) for b in (*BANDS, "all"))
    for m in ("sam", "ergas", "lpips", "lpips_sat", "consistency_reflectance", "consistency_spectral",
              "consistency_spatial", "synthesis", "improvement", "omission", "hallucination"):
        assert {r.band for r in rows if r.metric == m} == {"all"}
        assert sum(r.metric == m for r in rows) == 5
    assert all(np.isfinite(r.value) for r in rows)
    # values equal the references
    ref = peak_signal_noise_ratio(hr[1, 2], sr[1, 2], data_range=1.0)
    assert table[("t1", "red", "psnr")] == pytest.approx(ref, abs=1e-4)
    ref = structural_similarity(hr[3, 0], sr[3, 0], gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1)
    assert table[("t3", "blue", "ssim")] == pytest.approx(ref, abs=1e-4)


def test_options_are_recorded_and_json_safe(evaluator, data):
    sr, hr, lr = data
    rows = evaluator.score_arrays(sr[:2], hr[:2], lr[:2], band_names=BANDS)
    for r in rows:
        json.dumps(dict(r.options), allow_nan=False)
        assert r.options["hist_match"] in ("none", "hr", "lr")
        assert r.options["data_range"] == 1.0 and r.options["scale"] == 2
    by_metric = {r.metric: r.options for r in rows}
    assert by_metric["cpsnr"]["cpsnr_max_shift"] == 3
    assert "random" in by_metric["lpips"]["lpips_trunk"]
    assert by_metric["lpips_sat"]["lpips_sat_backbone"] == "tiny"
    assert by_metric["improvement"]["opensr_harmonise_spectral"] is True


def test_batching_does_not_change_values(data):
    sr, hr, lr = data
    sat = tiny_sat()
    torch.manual_seed(0)
    big = Evaluator(None, lpips_trunk=RANDOM_TRUNK, lpips_sat=sat, batch_size=64, net_batch=64)
    small = Evaluator(None, lpips_trunk=big.lpips_model, lpips_sat=sat, batch_size=1, net_batch=1)
    a = as_table(big.score_arrays(sr, hr, lr, band_names=BANDS))
    b = as_table(small.score_arrays(sr, hr, lr, band_names=BANDS))
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), k


def test_histogram_matching_is_switchable_and_recorded(data):
    sr, hr, _ = data
    ev = Evaluator(["psnr"], ScoreOptions(hist_match="hr"))
    rows = ev.score_arrays(sr, hr, band_names=BANDS)
    assert all(r.options["hist_match"] == "hr" for r in rows)
    matched = match_histograms(sr[0].astype(np.float64), hr[0].astype(np.float64), channel_axis=0)
    ref = peak_signal_noise_ratio(hr[0, 1], matched[1], data_range=1.0)
    assert as_table(rows)[("0", "green", "psnr")] == pytest.approx(ref, abs=1e-4)
    plain = as_table(Evaluator(["psnr"]).score_arrays(sr, hr, band_names=BANDS))
    assert plain[("0", "green", "psnr")] != pytest.approx(ref, abs=1e-4)
    with pytest.raises(ConfigError, match="hist_match"):
        ScoreOptions(hist_match="yes")
    with pytest.raises(ConfigError, match="needs the LR"):
        Evaluator(["psnr"], ScoreOptions(hist_match="lr")).score_arrays(sr, hr, band_names=BANDS)


def test_identical_images_give_capped_finite_psnr(data):
    _, hr, _ = data
    rows = Evaluator(["psnr", "cpsnr"]).score_arrays(hr, hr, band_names=BANDS)
    assert all(r.value == PSNR_CAP_DB for r in rows)


def test_missing_inputs_skip_in_default_suite_but_fail_when_asked(data):
    sr, hr, _ = data
    ev = Evaluator(None, lpips_trunk=RANDOM_TRUNK, lpips_sat=tiny_sat())
    rows = ev.score_arrays(sr, hr, band_names=BANDS)
    assert {r.metric for r in rows} == {"psnr", "ssim", "sam", "cpsnr", "lpips", "lpips_sat"}
    assert any("ergas needs the scale factor" in n for n in ev.notes)
    assert any("improvement needs the LR image" in n for n in ev.notes)
    assert {r.metric for r in ev.score_arrays(sr, hr, band_names=BANDS, scale=2)} >= {"ergas"}
    with pytest.raises(ConfigError, match="needs the LR image"):
        Evaluator(["omission"]).score_arrays(sr, hr, band_names=BANDS)
    with pytest.raises(ConfigError, match="needs red, green and blue"):
        Evaluator(["lpips"], lpips_trunk=RANDOM_TRUNK).score_arrays(sr[:, :1], hr[:, :1], band_names=("nir",))


def _raster(array, crs="EPSG:32618", bands=BANDS, x0=500000.0):
    return GeoRaster(array=array, transform=Affine(5.0, 0, x0, 0, -5.0, 4000000.0),
                     crs=CRS.from_string(crs) if crs else None, band_names=bands)


def test_score_rasters_checks_shapes_crs_bands_and_batches(data):
    sr, hr, lr = data
    ev = Evaluator(["psnr", "consistency_reflectance"])
    triples = [(f"tile{i}", _raster(sr[i]), _raster(hr[i]), _raster(lr[i])) for i in range(5)]
    seen = []
    rows = ev.score_rasters(triples, on_progress=lambda d, n: seen.append((d, n)), total=5)
    assert seen[-1] == (5, 5)
    assert {r.tile_id for r in rows} == {f"tile{i}" for i in range(5)}
    with pytest.raises(InputError, match="SR bad: is 48x40 pixels, HR bad is 48x48"):
        ev.score_rasters([("bad", _raster(sr[0, :, :, :40]), _raster(hr[0]), None)])
    with pytest.raises(InputError, match="CRS"):
        validate_pair(_raster(sr[0], crs="EPSG:4326"), _raster(hr[0]))
    with pytest.raises(InputError, match="bands"):
        validate_pair(_raster(sr[0], bands=("b1", "b2", "b3", "b4")), _raster(hr[0]))
    with pytest.raises(InputError, match="not an integer multiple"):
        validate_pair(_raster(sr[0]), _raster(hr[0]), _raster(lr[0, :, :, :20]))
    with pytest.raises(InputError, match="scale 4 was given"):
        validate_pair(_raster(sr[0]), _raster(hr[0]), _raster(lr[0]), scale=4)


def test_masked_pixels_are_ignored(data):
    sr, hr, _ = data
    valid = np.ones((5, 48, 48), dtype=bool)
    valid[:, :, 24:] = False
    broken = sr.copy()
    broken[:, :, :, 24:] = 1.0
    ev = Evaluator(["psnr", "sam"])
    a = as_table(ev.score_arrays(broken, hr, band_names=BANDS, valid=valid))
    b = as_table(ev.score_arrays(sr[..., :24], hr[..., :24], band_names=BANDS))
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(data):
    sr, hr, lr = data
    cpu = as_table(Evaluator(["psnr", "ssim", "sam", "cpsnr"]).score_arrays(sr, hr, band_names=BANDS))
    gpu = as_table(Evaluator(["psnr", "ssim", "sam", "cpsnr"], device="cuda").score_arrays(
        sr, hr, band_names=BANDS))
    for k in cpu:
        assert cpu[k] == pytest.approx(gpu[k], abs=1e-4)
