"""PSNR, SSIM, SAM, ERGAS, cPSNR and histogram matching equal independent references to 1e-4.

References: skimage (PSNR, SSIM, match_histograms) and numpy formulas written here, on seeded tiles
made from the real Sentinel-2 patch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.exposure import match_histograms as sk_match
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mindgap_core.metrics.pixel import cpsnr, ergas, match_histograms, psnr, sam, sam_map
from mindgap_core.metrics.ssim import ssim, ssim_map
from tests.fixtures.metric_tiles import s2_pairs

TOL = 1e-4


@pytest.fixture(scope="module")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    return s2_pairs(n=4, size=64, seed=0)


def t(a: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    return torch.from_numpy(a).to(dtype)


def test_psnr_equals_skimage_per_band_and_overall(pairs):
    sr, hr = pairs
    per_band, overall = psnr(t(sr), t(hr), data_range=1.0)
    for i in range(len(sr)):
        for b in range(4):
            ref = peak_signal_noise_ratio(hr[i, b], sr[i, b], data_range=1.0)
            assert abs(per_band[i, b].item() - ref) < TOL
        assert abs(overall[i].item() - peak_signal_noise_ratio(hr[i], sr[i], data_range=1.0)) < TOL


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ssim_equals_skimage_wang_settings(pairs, dtype):
    sr, hr = pairs
    ours = ssim(t(sr, dtype), t(hr, dtype), data_range=1.0)
    maps = ssim_map(t(sr, dtype), t(hr, dtype), data_range=1.0)
    for i in range(len(sr)):
        for b in range(4):
            ref, full = structural_similarity(hr[i, b], sr[i, b], gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False, data_range=1, full=True)
            assert abs(ours[i, b].item() - ref) < TOL
            assert np.abs(maps[i, b].double().numpy() - full).max() < TOL


def test_ssim_rejects_images_smaller_than_the_window():
    x = torch.rand(1, 1, 9, 30)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x, x)


def _sam_numpy(x: np.ndarray, y: np.ndarray) -> float:
    dot = (x * y).sum(0)
    cos = np.clip(dot / (np.linalg.norm(x, axis=0) * np.linalg.norm(y, axis=0)), -1, 1)
    return float(np.degrees(np.arccos(cos)).mean())


def test_sam_equals_numpy_formula(pairs):
    sr, hr = pairs
    ours = sam(t(sr), t(hr))
    for i in range(len(sr)):
        assert abs(ours[i].item() - _sam_numpy(sr[i], hr[i])) < TOL
    # identical spectra up to a gain have angle 0; zero spectra are excluded (NaN in the map)
    assert sam(t(hr * 1.7), t(hr)).abs().max().item() < 1e-3
    z = hr.copy()
    z[:, :, 0, 0] = 0
    assert torch.isnan(sam_map(t(z), t(hr))[:, 0, 0]).all()


def _ergas_numpy(x: np.ndarray, y: np.ndarray, scale: float) -> float:
    rmse = np.sqrt(((x - y) ** 2).mean(axis=(1, 2)))
    mu = y.mean(axis=(1, 2))
    return float(100.0 / scale * np.sqrt(np.mean((rmse / mu) ** 2)))


@pytest.mark.parametrize("scale", [2, 4])
def test_ergas_equals_numpy_formula_with_scale(pairs, scale):
    sr, hr = pairs
    ours = ergas(t(sr), t(hr), scale)
    for i in range(len(sr)):
        assert abs(ours[i].item() - _ergas_numpy(sr[i], hr[i], scale)) < TOL


def _cpsnr_numpy(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """PROBA-V cPSNR of one band (SR x, HR y), data range 1."""
    h, w = x.shape
    xc = x[k:h - k, k:w - k]
    best = -np.inf
    for u in range(2 * k + 1):
        for v in range(2 * k + 1):
            yc = y[u:u + h - 2 * k, v:v + w - 2 * k]
            b = (yc - xc).mean()
            cmse = ((yc - (xc + b)) ** 2).mean()
            best = max(best, -10 * np.log10(cmse))
    return best


def test_cpsnr_equals_numpy_reference_and_tolerates_shift_and_bias(pairs):
    sr, hr = pairs
    ours = cpsnr(t(sr), t(hr), max_shift=3)
    for i in range(2):
        for b in range(4):
            assert abs(ours[i, b].item() - _cpsnr_numpy(sr[i, b], hr[i, b], 3)) < TOL
    # a 2-pixel shift plus a bias costs PSNR but not cPSNR
    shifted = np.roll(hr, (2, -1), axis=(2, 3)) + 0.01
    plain, _ = psnr(t(shifted), t(hr))
    tolerant = cpsnr(t(shifted), t(hr), max_shift=3)
    assert (tolerant > plain + 10).all()
    assert (tolerant > 80).all()  # exact match once shift and bias are removed (float32)


def test_histogram_matching_equals_skimage_with_ties_and_smaller_reference(pairs):
    sr, hr = pairs
    lr = hr.reshape(4, 4, 32, 2, 32, 2).mean(axis=(3, 5))
    quantised = np.round(sr * 255) / 255  # many ties, as in uint8-derived data
    for src, ref in ((sr, hr), (quantised, hr), (sr, lr)):
        ours = match_histograms(t(src, torch.float64), t(ref, torch.float64)).numpy()
        for i in range(len(src)):
            assert np.abs(ours[i] - sk_match(src[i], ref[i], channel_axis=0)).max() < 1e-9


def test_metrics_leave_inputs_untouched(pairs):
    sr, hr = (t(a) for a in pairs)
    sr0, hr0 = sr.clone(), hr.clone()
    psnr(sr, hr), ssim(sr, hr), sam(sr, hr), ergas(sr, hr, 2), cpsnr(sr, hr), match_histograms(sr, hr)
    assert torch.equal(sr, sr0) and torch.equal(hr, hr0)


def test_valid_mask_restricts_pixel_metrics(pairs):
    sr, hr = pairs
    valid = np.zeros((4, 64, 64), dtype=bool)
    valid[:, :32] = True
    pb, _ = psnr(t(sr), t(hr), valid=torch.from_numpy(valid))
    ref = peak_signal_noise_ratio(hr[0, 0, :32], sr[0, 0, :32], data_range=1.0)
    assert abs(pb[0, 0].item() - ref) < TOL
