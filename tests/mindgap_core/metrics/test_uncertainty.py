"""Calibration scores of sampled SR: coverage is nominal for a calibrated toy model, under-coverage of an
over-confident one matches its prediction, AUROC/Spearman of a perfectly informative spread are 1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from mindgap_core.metrics.uncertainty import (
    NOMINAL_LEVELS,
    auroc,
    coverage,
    error_spread_agreement,
    fit_spread_scale,
    has_spread,
    mean_spread,
    reliability,
    scale_spread,
    spearman,
)

N_SAMPLES = 8


def toy(spread_ratio: float, seed: int = 0, tiles: int = 4, size: int = 48, sigma: float = 0.02):
    """HR tiles and samples of a toy model: centre = HR + N(0, sigma), samples = centre + N(0, r sigma).
    With r = 1 the HR is exchangeable with the samples (calibrated)."""
    g = torch.Generator().manual_seed(seed)
    hr = 0.1 + 0.3 * torch.rand((tiles, 4, size, size), generator=g, dtype=torch.float64)
    centre = hr + sigma * torch.randn(hr.shape, generator=g, dtype=torch.float64)
    noise = torch.randn((tiles, N_SAMPLES, *hr.shape[1:]), generator=g, dtype=torch.float64)
    return centre[:, None] + spread_ratio * sigma * noise, hr


def predicted_coverage(spread_ratio: float, level: float, n: int = N_SAMPLES) -> float:
    """Expected rank-based coverage when truth - centre ~ N(0, 1) and samples - centre ~ N(0, r)."""
    a, b = (1 - level) / 2, (1 + level) / 2
    total = 0.0
    for k in range(n + 1):
        def density(x, k=k):
            f = stats.norm.cdf(x / spread_ratio)
            return math.comb(n, k) * f**k * (1 - f) ** (n - k) * stats.norm.pdf(x)

        p_k = integrate.quad(density, -12, 12, limit=200)[0]
        lo, hi = k / (n + 1), (k + 1) / (n + 1)
        total += p_k * max(0.0, min(hi, b) - max(lo, a)) / (hi - lo)
    return total


def test_calibrated_toy_model_covers_at_nominal_levels():
    samples, hr = toy(1.0)
    n_values = hr.numel()
    for level in NOMINAL_LEVELS:
        got = coverage(samples, hr, level).mean().item()
        # binomial sampling error of a share of n_values (pixels are independent here)
        assert abs(got - level) < 4 * math.sqrt(level * (1 - level) / n_values), (level, got)
    curve = reliability(samples, hr).mean(dim=0).numpy()
    assert np.all(np.diff(curve) > 0)


def test_overconfident_model_undercovers_as_predicted():
    samples, hr = toy(0.5, seed=1)
    for level in NOMINAL_LEVELS:
        got = coverage(samples, hr, level).mean().item()
        expected = predicted_coverage(0.5, level)
        assert expected < level - (0.05 if level < 0.95 else 0.03)  # the prediction: under-covers
        assert abs(got - expected) < 0.01, (level, got, expected)


def test_underconfident_model_overcovers_and_a_fitted_scale_recalibrates():
    samples, hr = toy(2.0, seed=2, tiles=2, size=32)
    assert all(coverage(samples, hr, p).mean() > p for p in NOMINAL_LEVELS)
    factor = fit_spread_scale([(samples, hr, None)])
    # shrinks the spread: not to 0.5, since the sample mean of 8 draws has its own error to cover
    assert 0.5 < factor < 0.7
    fixed = scale_spread(samples, factor)
    for level in NOMINAL_LEVELS:
        assert abs(coverage(fixed, hr, level).mean().item() - level) < 0.02
    # the sample mean is unchanged by the scale
    torch.testing.assert_close(fixed.mean(dim=1), samples.mean(dim=1))


def test_perfectly_informative_spread_has_auroc_and_spearman_one():
    g = torch.Generator().manual_seed(3)
    hr = torch.rand((2, 4, 32, 32), generator=g, dtype=torch.float64)
    error = 0.05 * torch.rand(hr.shape, generator=g, dtype=torch.float64) + 1e-4
    signs = torch.tensor([1.0, -1.0] * (N_SAMPLES // 2), dtype=torch.float64).view(1, -1, 1, 1, 1)
    samples = (hr + error)[:, None] + error[:, None] * signs  # mean = HR + error, std = error
    rho, area = error_spread_agreement(samples, hr)
    assert torch.allclose(rho, torch.ones(2, dtype=torch.float64))
    assert torch.allclose(area, torch.ones(2, dtype=torch.float64))
    # an uninformative spread: AUROC near 0.5, Spearman near 0
    shuffled = samples[..., torch.randperm(32, generator=g), :]
    rho, area = error_spread_agreement(shuffled, hr)
    assert (area - 0.5).abs().max() < 0.1 and rho.abs().max() < 0.1


def test_auroc_and_spearman_match_direct_computations_with_ties_and_masks():
    g = torch.Generator().manual_seed(4)
    score = torch.randint(0, 5, (1, 1, 8, 8), generator=g).to(torch.float64)
    positive = torch.rand((1, 1, 8, 8), generator=g) < 0.3
    other = score + torch.randint(0, 3, (1, 1, 8, 8), generator=g).to(torch.float64)
    valid = torch.rand((1, 8, 8), generator=g) < 0.8
    s, p, o = (t[0, 0][valid[0]].numpy() for t in (score, positive, other))
    pairs = [(a > b) + 0.5 * (a == b) for a in s[p] for b in s[~p]]  # P(score_pos > score_neg)
    assert auroc(score, positive, valid).item() == pytest.approx(np.mean(pairs), abs=1e-12)
    assert spearman(score, other, valid).item() == pytest.approx(stats.spearmanr(s, o)[0], abs=1e-12)


def test_deterministic_samples_have_no_spread():
    hr = torch.rand((2, 4, 16, 16), dtype=torch.float64)
    same = hr[:, None].expand(2, N_SAMPLES, 4, 16, 16).clone()
    assert not has_spread(same) and not has_spread(same[:, :1])
    assert mean_spread(same).abs().max() == 0
    samples, _ = toy(1.0, tiles=1)
    assert has_spread(samples)


def test_masked_pixels_do_not_count():
    samples, hr = toy(1.0, tiles=1, size=32)
    valid = torch.zeros((1, 32, 32), dtype=torch.bool)
    valid[:, :16] = True
    broken = samples.clone()
    broken[..., 16:, :] = 10.0  # far off, but masked
    for level in NOMINAL_LEVELS:
        assert coverage(broken, hr, level, valid).item() == pytest.approx(
            coverage(samples[..., :16, :], hr[..., :16, :], level).item(), abs=1e-12)


def test_engine_scores_calibration_from_samples_and_skips_deterministic_models():
    from mindgap_core.metrics.engine import Evaluator
    from mindgap_core.metrics.registry import UNCERTAINTY_METRICS, coverage_metric
    from mindgap_core.types import CANONICAL_BANDS

    samples, hr = toy(1.0, tiles=3, size=32)
    sr = samples.mean(dim=1)
    ev = Evaluator(["psnr", *UNCERTAINTY_METRICS])
    rows = ev.score_arrays(sr.numpy(), hr.numpy(), band_names=CANONICAL_BANDS, samples=samples.numpy())
    got = {(r.metric, r.tile_id): r.value for r in rows}
    direct = coverage(samples, hr, 0.9)
    for i in range(3):
        assert got[(coverage_metric(0.9), str(i))] == pytest.approx(direct[i].item(), abs=1e-6)
        assert 0 <= got[("calibration_error", str(i))] < 0.05
        assert got[("spread", str(i))] == pytest.approx(mean_spread(samples[i:i + 1]).item(), rel=1e-5)
    assert {m for m, _ in got} == {"psnr", *UNCERTAINTY_METRICS}
    # a deterministic model (equal samples) or no samples: PSNR only, one "no uncertainty" note
    for given in (sr[:, None].expand(3, 4, 4, 32, 32).numpy(), None):
        ev = Evaluator(["psnr", *UNCERTAINTY_METRICS])
        rows = ev.score_arrays(sr.numpy(), hr.numpy(), band_names=CANONICAL_BANDS, samples=given)
        assert {r.metric for r in rows} == {"psnr"}
        assert sum("no uncertainty" in n for n in ev.notes) == 1
