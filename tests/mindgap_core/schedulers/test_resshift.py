"""ResShiftScheduler against the defining equations of ResShift (Yue et al. 2023)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mindgap_core.schedulers.resshift import ResShiftScheduler, resshift_sqrt_etas

KAPPA = 2.0


@pytest.fixture()
def sched() -> ResShiftScheduler:
    return ResShiftScheduler(kappa=KAPPA, clip_sample=False)


def _xy(n: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 4, 3, 3, generator=g, dtype=torch.float64)
    y = x0 + 0.5 * torch.randn(n, 4, 3, 3, generator=g, dtype=torch.float64)
    return x0, y


def test_shifting_sequence_matches_official_schedule(sched: ResShiftScheduler) -> None:
    sqrt_etas = sched.sqrt_etas.numpy()
    assert sqrt_etas.shape == (15,)
    # official: sqrt(eta_1) = min(min_noise_level / kappa, min_noise_level), sqrt(eta_T) = etas_end
    assert sqrt_etas[0] == pytest.approx(min(0.04 / KAPPA, 0.04))
    assert sqrt_etas[-1] == pytest.approx(0.99)
    assert np.all(np.diff(sqrt_etas) > 0)
    # power p = 1 makes the sequence geometric: constant ratio between neighbours
    geo = resshift_sqrt_etas(10, kappa=1.0, min_noise_level=0.01, etas_end=0.9, power=1.0)
    ratios = geo[1:] / geo[:-1]
    assert np.allclose(ratios, ratios[0])
    # power p < 1 spends more steps near eta_T (the shifting sequence bends upward early)
    p03 = resshift_sqrt_etas(10, kappa=1.0, min_noise_level=0.01, etas_end=0.9, power=0.3)
    assert np.all(p03[1:-1] > geo[1:-1])


def test_add_noise_closed_form(sched: ResShiftScheduler) -> None:
    x0, y = _xy()
    for t in (0, 5, 14):
        eta = float(sched.etas[t])
        ts = torch.tensor([t])
        mean = sched.add_noise(x0, torch.zeros_like(x0), ts, y)
        assert torch.allclose(mean, x0 + eta * (y - x0))
        unit = sched.add_noise(x0, torch.ones_like(x0), ts, y) - mean
        assert torch.allclose(unit, torch.full_like(x0, KAPPA * math.sqrt(eta)))


def test_add_noise_monte_carlo_mean_and_variance(sched: ResShiftScheduler) -> None:
    x0, y = _xy()
    n = 20000
    g = torch.Generator().manual_seed(1)
    for t in (0, 7, 14):
        eta = float(sched.etas[t])
        noise = torch.randn(n, *x0.shape[1:], generator=g, dtype=torch.float64)
        xt = sched.add_noise(x0.expand(n, -1, -1, -1), noise, torch.full((n,), t), y.expand(n, -1, -1, -1))
        sd = KAPPA * math.sqrt(eta)
        assert torch.allclose(xt.mean(0), (x0 + eta * (y - x0))[0], atol=5 * sd / math.sqrt(n))
        assert torch.allclose(xt.var(0), torch.full_like(x0[0], sd**2), rtol=0.06)


def test_posterior_equals_gaussian_conditioning(sched: ResShiftScheduler) -> None:
    """q(x_s | x_t, x_0) from the joint Gaussian of the marginals: Cov(x_s, x_t) = kappa^2 eta_s."""
    x0, y = _xy()
    g = torch.Generator().manual_seed(2)
    xt = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    for t, s in ((14, 13), (5, 4), (1, 0), (14, 7), (9, 2)):
        eta_t, eta_s = float(sched.etas[t]), float(sched.etas[s])
        mu_t, mu_s = x0 + eta_t * (y - x0), x0 + eta_s * (y - x0)
        cov, var_t, var_s = KAPPA**2 * eta_s, KAPPA**2 * eta_t, KAPPA**2 * eta_s
        expect_mean = mu_s + cov / var_t * (xt - mu_t)
        expect_var = var_s - cov**2 / var_t
        mean, var = sched.posterior_mean_variance(x0, xt, t, s)
        assert torch.allclose(mean, expect_mean)
        assert torch.allclose(var, torch.full_like(var, expect_var))
        # the paper's form for s = t - 1: mean (eta_{t-1}/eta_t) x_t + (alpha_t/eta_t) x_0
        alpha = eta_t - eta_s
        assert torch.allclose(mean, eta_s / eta_t * xt + alpha / eta_t * x0)
        assert float(var.flatten()[0]) == pytest.approx(KAPPA**2 * eta_s * alpha / eta_t)


def test_posterior_step_keeps_the_marginals(sched: ResShiftScheduler) -> None:
    """x_t ~ q(x_t|x0,y), then a posterior step with the true x0 gives x_s ~ q(x_s|x0,y)."""
    x0, y = _xy()
    n = 20000
    g = torch.Generator().manual_seed(3)
    sched.set_timesteps(15)
    for t in (14, 8, 1):
        s = t - 1
        noise = torch.randn(n, *x0.shape[1:], generator=g, dtype=torch.float64)
        xt = sched.add_noise(x0.expand(n, -1, -1, -1), noise, torch.full((n,), t), y.expand(n, -1, -1, -1))
        out = sched.step(x0.expand(n, -1, -1, -1), t, xt, generator=g)
        eta_s = float(sched.etas[s])
        sd = KAPPA * math.sqrt(eta_s)
        expected_mean = (x0 + eta_s * (y - x0))[0]
        assert torch.allclose(out.prev_sample.mean(0), expected_mean, atol=5 * sd / math.sqrt(n) + 1e-9)
        assert torch.allclose(out.prev_sample.var(0), torch.full_like(x0[0], sd**2), rtol=0.06)
        assert torch.equal(out.pred_original_sample, x0.expand(n, -1, -1, -1))


def test_deterministic_step_keeps_the_standardised_noise(sched: ResShiftScheduler) -> None:
    x0, y = _xy()
    g = torch.Generator().manual_seed(4)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    sched.set_timesteps(5)
    t = int(sched.timesteps[0])
    xt = sched.add_noise(x0, eps, torch.tensor([t]), y)
    s = sched.previous_timestep(t)
    prev = sched.step(x0, t, xt, y=y, deterministic=True).prev_sample
    assert torch.allclose(prev, sched.add_noise(x0, eps, torch.tensor([s]), y))
    with pytest.raises(ValueError, match="needs y"):
        sched.step(x0, t, xt, deterministic=True)


@pytest.mark.parametrize("steps", [15, 4, 2, 1])
@pytest.mark.parametrize("deterministic", [False, True])
def test_chain_with_an_oracle_ends_at_x0(sched: ResShiftScheduler, steps: int, deterministic: bool) -> None:
    x0, y = _xy(2)
    g = torch.Generator().manual_seed(5)
    sched.set_timesteps(steps)
    assert int(sched.timesteps[0]) == 14 and int(sched.timesteps[-1]) == (0 if steps > 1 else 14)
    assert len(sched.timesteps) == steps and bool(torch.all(sched.timesteps[:-1] > sched.timesteps[1:]))
    x = sched.prior_sample(y, torch.randn(y.shape, generator=g, dtype=torch.float64))
    for t in sched.timesteps:
        x = sched.step(x0, int(t), x, generator=g, y=y, deterministic=deterministic).prev_sample
    assert torch.allclose(x, x0)


def test_prior_clip_scale_and_config_round_trip(tmp_path) -> None:
    sched = ResShiftScheduler(kappa=KAPPA, clip_sample=True, clip_sample_range=1.0)
    y = torch.zeros(1, 4, 2, 2)
    assert torch.allclose(sched.prior_sample(y, torch.ones_like(y)), torch.full_like(y, KAPPA * 0.99))
    x = torch.full((2, 4, 2, 2), 3.0)
    scaled = sched.scale_model_input(x, torch.tensor([0, 14]))
    assert scaled[0, 0, 0, 0] == pytest.approx(3.0 / math.sqrt(KAPPA**2 * float(sched.etas[0]) + 1), rel=1e-6)
    last = 3.0 / math.sqrt(KAPPA**2 * float(sched.etas[14]) + 1)
    assert scaled[1, 0, 0, 0] == pytest.approx(last, rel=1e-6)
    sched.set_timesteps(3)
    out = sched.step(x, int(sched.timesteps[0]), x, generator=torch.Generator().manual_seed(0))
    assert float(out.pred_original_sample.max()) == 1.0  # x0 clipped to the range
    sched.save_pretrained(tmp_path)
    again = ResShiftScheduler.from_pretrained(tmp_path)
    public = lambda c: {k: v for k, v in c.items() if not k.startswith("_")}  # noqa: E731
    assert public(again.config) == public(sched.config)
    assert torch.equal(again.etas, sched.etas)
    with pytest.raises(ValueError):
        ResShiftScheduler(prediction_type="epsilon")
