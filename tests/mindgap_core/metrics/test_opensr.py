"""opensr-test-style scores follow opensr-test's definitions (transcribed per tile in numpy here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import shift as nd_shift
from skimage.exposure import match_histograms
from skimage.registration import phase_cross_correlation as sk_pcc

from mindgap_core.metrics.opensr import (
    OpensrOptions,
    consistency,
    correctness,
    correctness_maps,
    phase_cross_correlation,
    shift_image,
)
from tests.fixtures.metric_tiles import s2_pairs

RGB = [2, 1, 0]  # red, green, blue indices in (blue, green, red, nir)
SCALE = 2


@pytest.fixture(scope="module")
def triplets():
    sr, hr = s2_pairs(n=3, size=64, seed=3)
    lr = F.interpolate(torch.from_numpy(hr), scale_factor=0.5, mode="bilinear", antialias=True).numpy()
    return sr, hr, lr


def test_phase_correlation_equals_skimage(triplets):
    _, hr, _ = triplets
    ref = hr[:, RGB].mean(axis=1)
    moved = np.stack([nd_shift(r, (1.3, -2.6), mode="nearest") for r in ref])
    ours = phase_cross_correlation(torch.from_numpy(ref), torch.from_numpy(moved), 50).numpy()
    for i in range(len(ref)):
        expected = sk_pcc(ref[i], moved[i], upsample_factor=50, normalization="phase")[0]
        assert np.allclose(ours[i], expected, atol=1e-9)
    assert np.allclose(ours.mean(axis=0), (-1.3, 2.6), atol=0.15)


def test_shift_image_moves_content_by_the_shift(triplets):
    _, hr, _ = triplets
    x = torch.from_numpy(hr)
    out = shift_image(x, torch.tensor([[2.0, -1.0]] * 3, dtype=torch.float64))
    assert torch.allclose(out[..., 2:, :-1], x[..., :-2, 1:], atol=1e-10)


def _opensr_consistency(sr, lr, scale):
    """opensr-test Metrics.consistency (border 0): l1, sad (degrees), PCC shift length."""
    down = F.interpolate(torch.from_numpy(sr)[None], scale_factor=1 / scale, mode="bilinear",
                         antialias=True)[0].numpy()
    refl = np.nanmean(np.abs(lr - down).mean(axis=0))
    dot = (lr * down).sum(0)
    cos = np.clip(dot / (np.linalg.norm(lr, axis=0) * np.linalg.norm(down, axis=0)), -1, 1)
    spectral = np.nanmean(np.degrees(np.arccos(cos)))
    shift = sk_pcc(down[RGB].mean(0), lr[RGB].mean(0), upsample_factor=50, normalization="phase")[0]
    return refl, spectral, float(np.hypot(*shift))


def test_consistency_matches_opensr_definitions(triplets):
    sr, _, lr = triplets
    ours = consistency(torch.from_numpy(sr), torch.from_numpy(lr), SCALE, RGB)
    for i in range(len(sr)):
        refl, spectral, spatial = _opensr_consistency(sr[i], lr[i], SCALE)
        assert ours["consistency_reflectance"][i].item() == pytest.approx(refl, abs=1e-6)
        assert ours["consistency_spectral"][i].item() == pytest.approx(spectral, abs=1e-4)
        assert ours["consistency_spatial"][i].item() == pytest.approx(spatial, abs=1e-9)


def _opensr_correctness(sr, lr, hr, scale):
    """opensr-test Metrics.correctness with nd distance, auto75 threshold, softmin T=0.25,
    lambdas 0.05, spectral harmonisation only (spatial harmonisation off)."""
    sr_harm = match_histograms(sr, hr, channel_axis=0)
    up = F.interpolate(torch.from_numpy(lr)[None], scale_factor=scale, mode="bilinear",
                       antialias=True)[0].numpy()

    def nd(a, b):
        return np.nanmean(np.abs(a - b) / np.abs(a + b + 1e-8), axis=0)

    d_ref, d_im, d_om = nd(up, hr), nd(sr_harm, hr), nd(sr_harm, up)
    flat = np.sort(d_ref.ravel())
    thr = flat[int(0.75 * flat.size) - 1]  # torch.kthvalue(k) is the k-th smallest, 1-based
    mask = ((d_ref > thr) | (d_im > thr) | (d_om > thr)).astype(float)
    mask[mask == 0] = np.nan
    a, b = d_im * mask / (d_ref * mask), d_om * mask / (d_ref * mask)
    h = a + b - 1
    im = a + b * (1 - np.exp(-h * 0.05))
    om = b + a * (1 - np.exp(-h * 0.05))
    ha = np.exp(-a * b * 0.05)
    e = np.exp(-np.stack([im, om, ha]) / 0.25)
    p = e / e.sum(axis=0)
    return [np.nanmean(p[k]) for k in range(3)]


def test_correctness_matches_opensr_definitions(triplets):
    sr, hr, lr = triplets
    opts = OpensrOptions(harmonise_spatial=False)
    ours = correctness(torch.from_numpy(sr), torch.from_numpy(lr), torch.from_numpy(hr), SCALE, RGB, opts)
    for i in range(len(sr)):
        expected = _opensr_correctness(sr[i], lr[i], hr[i], SCALE)
        got = [ours[k][i].item() for k in ("improvement", "omission", "hallucination")]
        assert got == pytest.approx(expected, abs=1e-6)
        assert sum(got) == pytest.approx(1.0, abs=1e-9)


def test_correctness_separates_improvement_omission_hallucination(triplets):
    """SR = HR is improvement; SR = upsampled LR is omission; texture from elsewhere hallucinates."""
    sr, hr, lr = triplets
    t = torch.from_numpy
    up = F.interpolate(t(lr), scale_factor=SCALE, mode="bilinear", antialias=True)
    perfect = correctness(t(hr), t(lr), t(hr), SCALE, RGB)
    lazy = correctness(up, t(lr), t(hr), SCALE, RGB)
    rng = np.random.default_rng(0)
    fake = t(hr) + t(rng.normal(0, 0.05, hr.shape))
    wild = correctness(fake, t(lr), t(hr), SCALE, RGB)
    assert (perfect["improvement"] > 0.9).all()
    assert (lazy["omission"] > lazy["improvement"]).all()
    assert (wild["hallucination"] > perfect["hallucination"]).all()
    maps = correctness_maps(t(hr), t(lr), t(hr), SCALE, RGB)
    assert maps["mask"].any() and torch.isnan(maps["improvement"][~maps["mask"]]).all()


def test_spatial_consistency_sees_a_misregistered_sr(triplets):
    _, hr, lr = triplets
    moved = np.stack([np.stack([nd_shift(b, (2.0, 0.0), mode="nearest") for b in t]) for t in hr])
    c = consistency(torch.from_numpy(moved), torch.from_numpy(lr), SCALE, RGB)
    assert np.allclose(c["consistency_spatial"].numpy(), 1.0, atol=0.15)  # 2 HR px = 1 LR px
