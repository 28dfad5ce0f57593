"""opensr-test-style scores follow opensr-test 1.3.3's definitions and order of operations, transcribed
per tile in numpy/skimage here (crop the border first, then resample; align on the mean of all
bands). ``test_opensr_parity.py`` checks the same scores against opensr-test's own output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import shift as nd_shift
from skimage.exposure import match_histograms
from skimage.registration import phase_cross_correlation as sk_pcc

from mindgap_core.errors import ConfigError
from mindgap_core.metrics.engine import Evaluator, ScoreOptions
from mindgap_core.metrics.opensr import (
    SCORES,
    OpensrOptions,
    consistency,
    correctness,
    correctness_maps,
    harmonise,
    opensr_scores,
    phase_cross_correlation,
    shift_image,
    synthesis,
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


def _crop(x, b):
    return x[..., b:-b, b:-b] if b else x


def _down(x, scale):
    return F.interpolate(torch.from_numpy(x)[None], scale_factor=1 / scale, mode="bilinear",
                         antialias=True)[0].numpy()


def _up(x, scale):
    return F.interpolate(torch.from_numpy(x)[None], scale_factor=scale, mode="bilinear",
                         antialias=True)[0].numpy()


def _opensr_consistency(sr, lr, scale, border):
    """opensr-test Metrics.consistency: crop (border HR px, border // scale LR px), THEN downsample
    the SR; l1, sad (degrees), PCC shift length on the RGB mean."""
    lr = _crop(lr, border // scale)
    down = _down(_crop(sr, border), scale)
    refl = np.nanmean(np.abs(lr - down).mean(axis=0))
    dot = (lr * down).sum(0)
    cos = np.clip(dot / (np.linalg.norm(lr, axis=0) * np.linalg.norm(down, axis=0)), -1, 1)
    spectral = np.nanmean(np.degrees(np.arccos(cos)))
    shift = sk_pcc(down[RGB].mean(0), lr[RGB].mean(0), upsample_factor=50, normalization="phase")[0]
    return refl, spectral, float(np.hypot(*shift))


@pytest.mark.parametrize("border", [0, 8])
def test_consistency_matches_opensr_definitions(triplets, border):
    sr, _, lr = triplets
    ours = consistency(torch.from_numpy(sr), torch.from_numpy(lr), SCALE, RGB, OpensrOptions(border=border))
    for i in range(len(sr)):
        refl, spectral, spatial = _opensr_consistency(sr[i], lr[i], SCALE, border)
        assert ours["consistency_reflectance"][i].item() == pytest.approx(refl, rel=1e-9)
        assert ours["consistency_spectral"][i].item() == pytest.approx(spectral, rel=1e-9)
        assert ours["consistency_spatial"][i].item() == pytest.approx(spatial, abs=1e-9)


def test_consistency_crops_before_downsampling(triplets):
    """The antialiased downsampling reads pixels across the crop line: downsampling the whole SR and
    cropping after (MindGap before opensr-test parity) gives measurably different scores."""
    sr, _, lr = triplets
    border = 8
    ours = consistency(torch.from_numpy(sr), torch.from_numpy(lr), SCALE, RGB, OpensrOptions(border=border))
    for i in range(len(sr)):
        late = _crop(_down(sr[i], SCALE), border // SCALE)
        refl_late = np.abs(_crop(lr[i], border // SCALE) - late).mean()
        assert abs(ours["consistency_reflectance"][i].item() - refl_late) > 1e-6 * refl_late


def _opensr_harmonise(sr, hr, spatial=True):
    """opensr-test sr_harm: skimage match_histograms, then satalign PCC on the mean of ALL bands
    (channel="mean"), bilinear shift with replicated borders (scipy order 1, mode nearest)."""
    harm = match_histograms(sr, hr, channel_axis=0)
    if spatial:
        s = sk_pcc(hr.mean(0), harm.mean(0), upsample_factor=50, normalization="phase")[0]
        if np.hypot(*s) <= 5:
            harm = np.stack([nd_shift(b, s, order=1, mode="nearest") for b in harm])
    return harm


def _opensr_synthesis_correctness(sr, lr, hr, scale, border, spatial=True):
    """opensr-test Metrics.synthesis and .correctness (crop first; nd distance, auto75 threshold,
    softmin T=0.25, lambdas 0.05): [synthesis, improvement, omission, hallucination]."""
    sr, hr = _crop(sr, border), _crop(hr, border)
    up = _up(_crop(lr, border // scale), scale)
    sr_harm = _opensr_harmonise(sr, hr, spatial)
    synth = np.nanmean(np.nanmean(np.abs(up - sr_harm), axis=0))

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
    return [synth] + [np.nanmean(p[k]) for k in range(3)]


@pytest.mark.parametrize(("border", "spatial"), [(0, False), (0, True), (8, True)])
def test_synthesis_and_correctness_match_opensr_definitions(triplets, border, spatial):
    sr, hr, lr = triplets
    t = torch.from_numpy
    opts = OpensrOptions(border=border, harmonise_spatial=spatial)
    ours = opensr_scores(t(sr), t(lr), t(hr), SCALE, RGB, opts)
    alone = {**correctness(t(sr), t(lr), t(hr), SCALE, opts), **synthesis(t(sr), t(lr), t(hr), SCALE, opts)}
    for i in range(len(sr)):
        expected = _opensr_synthesis_correctness(sr[i], lr[i], hr[i], SCALE, border, spatial)
        got = [ours[k][i].item() for k in ("synthesis", "improvement", "omission", "hallucination")]
        assert got == pytest.approx(expected, rel=1e-9)
        assert [alone[k][i].item() for k in ("synthesis", "improvement", "omission", "hallucination")] == got
        assert sum(got[1:]) == pytest.approx(1.0, abs=1e-9)


def test_alignment_uses_the_mean_of_all_bands(triplets):
    """satalign's default feature is the mean of all bands: with a high-contrast NIR band moved and
    the visible bands left in place, the all-band shift is applied, not the RGB one (which is 0)."""
    _, hr, _ = triplets
    hr = hr.copy()
    hr[:, 3] *= 6.0
    sr = hr.copy()
    sr[:, 3] = np.stack([nd_shift(b, (-3.0, 2.0), order=1, mode="nearest") for b in hr[:, 3]])
    ours = harmonise(torch.from_numpy(sr), torch.from_numpy(hr)).numpy()
    for i in range(len(sr)):
        assert np.allclose(ours[i], _opensr_harmonise(sr[i], hr[i]), atol=1e-12)
        rgb_shift = sk_pcc(hr[i][RGB].mean(0), sr[i][RGB].mean(0), upsample_factor=50)[0]
        all_shift = sk_pcc(hr[i].mean(0), sr[i].mean(0), upsample_factor=50)[0]
        assert np.hypot(*rgb_shift) == 0 and np.hypot(*all_shift) > 1  # the two features disagree


def test_correctness_separates_improvement_omission_hallucination(triplets):
    """SR = HR is improvement; SR = upsampled LR is omission; texture from elsewhere hallucinates."""
    sr, hr, lr = triplets
    t = torch.from_numpy
    up = F.interpolate(t(lr), scale_factor=SCALE, mode="bilinear", antialias=True)
    perfect = correctness(t(hr), t(lr), t(hr), SCALE)
    lazy = correctness(up, t(lr), t(hr), SCALE)
    rng = np.random.default_rng(0)
    fake = t(hr) + t(rng.normal(0, 0.05, hr.shape))
    wild = correctness(fake, t(lr), t(hr), SCALE)
    assert (perfect["improvement"] > 0.9).all()
    assert (lazy["omission"] > lazy["improvement"]).all()
    assert (wild["hallucination"] > perfect["hallucination"]).all()
    maps = correctness_maps(t(hr), t(lr), t(hr), SCALE)
    assert maps["mask"].any() and torch.isnan(maps["improvement"][~maps["mask"]]).all()


def test_synthesis_grows_with_added_detail(triplets):
    """Bilinear LR adds nothing over bilinear (near 0 after harmonisation); HR adds its detail;
    added texture adds more."""
    _, hr, lr = triplets
    t = torch.from_numpy
    up = F.interpolate(t(lr), scale_factor=SCALE, mode="bilinear", antialias=True)
    rng = np.random.default_rng(1)
    s = {name: synthesis(x, t(lr), t(hr), SCALE)["synthesis"] for name, x in (
        ("bilinear", up), ("hr", t(hr)), ("texture", t(hr) + t(rng.normal(0, 0.03, hr.shape))))}
    assert (s["bilinear"] < s["hr"]).all() and (s["hr"] < s["texture"]).all()


def test_border_must_fit_the_scale(triplets):
    sr, hr, lr = triplets
    t = torch.from_numpy
    with pytest.raises(ConfigError, match="multiple of the scale 2"):
        opensr_scores(t(sr), t(lr), t(hr), SCALE, RGB, OpensrOptions(border=3))
    with pytest.raises(ConfigError, match="leaves no pixels"):
        opensr_scores(t(sr), t(lr), t(hr), SCALE, RGB, OpensrOptions(border=32))


def test_spatial_consistency_sees_a_misregistered_sr(triplets):
    _, hr, lr = triplets
    moved = np.stack([np.stack([nd_shift(b, (2.0, 0.0), mode="nearest") for b in t]) for t in hr])
    c = consistency(torch.from_numpy(moved), torch.from_numpy(lr), SCALE, RGB)
    assert np.allclose(c["consistency_spatial"].numpy(), 1.0, atol=0.15)  # 2 HR px = 1 LR px


def test_engine_rows_are_the_opensr_scores(triplets):
    """The registry's scorers give the Evaluator exactly :func:`opensr_scores`' values (all 7)."""
    sr, hr, lr = (a.astype(np.float32) for a in triplets)
    opts = OpensrOptions(border=8)
    rows = Evaluator(list(SCORES), ScoreOptions(opensr=opts)).score_arrays(
        sr, hr, lr, band_names=("blue", "green", "red", "nir"))
    direct = opensr_scores(torch.from_numpy(sr), torch.from_numpy(lr), torch.from_numpy(hr), SCALE, RGB, opts)
    got = {(r.metric, int(r.tile_id)): r.value for r in rows}
    assert {m for m, _ in got} == set(SCORES)
    for (m, i), v in got.items():
        assert v == direct[m][i].item()
        assert next(r for r in rows if r.metric == m).options["opensr_border"] == 8


def test_synthesis_and_correctness_need_no_rgb_bands(triplets):
    """They read every band (alignment on the mean of all bands); only spatial consistency needs RGB."""
    sr, hr, lr = (np.ascontiguousarray(a[:, [0, 3]]).astype(np.float32) for a in triplets)
    rows = Evaluator(["synthesis", "improvement", "hallucination"]).score_arrays(
        sr, hr, lr, band_names=("blue", "nir"))
    assert {r.metric for r in rows} == {"synthesis", "improvement", "hallucination"} and len(rows) == 9
    with pytest.raises(ConfigError, match="red, green and blue"):
        Evaluator(["consistency_spatial"]).score_arrays(sr, hr, lr, band_names=("blue", "nir"))
