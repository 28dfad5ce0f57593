"""LPIPS-Sat with the shipped backbone ranks graded distortions monotonically with severity.

Test image: the demo's held-out HR image (pseudo-reflectance, calibrated as the demo does), cut into
64x64 tiles (the demo tile size). Scoring it is fine; the backbone never saw it (it is pre-trained on
the Sentinel-2 patch and the Landsat-8 scene only).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from scipy.ndimage import shift as nd_shift

from mindgap_core.metrics.lpips_sat import DEFAULT_BACKBONE_DIR, load_backbone, lpips_sat_score
from tests.fixtures.metric_tiles import BANDS, demo_hr_reflectance

SIZE = 64


@pytest.fixture(scope="module")
def tiles() -> np.ndarray:
    hr = demo_hr_reflectance().array.astype(np.float64)
    rows, cols = hr.shape[1] // SIZE, hr.shape[2] // SIZE
    return np.stack([hr[:, r * SIZE:(r + 1) * SIZE, c * SIZE:(c + 1) * SIZE]
                     for r in range(rows) for c in range(cols)])


def _per_band(t: np.ndarray, fn) -> np.ndarray:
    return np.stack([np.stack([fn(b) for b in tile]) for tile in t])


def blur(t, sigma):
    return _per_band(t, lambda b: gaussian_filter(b, sigma))


def noise(t, sigma):
    return t + np.random.default_rng(1).normal(0.0, sigma, t.shape)


def shift(t, px):
    return _per_band(t, lambda b: nd_shift(b, (px, px / 2), mode="nearest", order=3))


def spectral_shift(t, k):
    """Band-specific gains (blue +6 %, green -4 %, red +8 %, NIR -10 % per unit of severity)."""
    return t * (1 + k * np.array([0.06, -0.04, 0.08, -0.10]))[None, :, None, None]


def hallucinated_texture(t, amount):
    """Adds high-frequency detail taken from a *different* tile: plausible texture that is not there."""
    other = np.roll(t, 1, axis=0)
    return t + amount * (other - blur(other, 1.5))


DISTORTIONS = {
    "blur": (blur, (0.6, 1.0, 1.6, 2.5)),
    "noise": (noise, (0.0025, 0.005, 0.01, 0.02)),
    "shift": (shift, (0.5, 1.0, 2.0, 4.0)),
    "spectral_shift": (spectral_shift, (0.5, 1.0, 2.0, 4.0)),
    "hallucinated_texture": (hallucinated_texture, (0.25, 0.5, 1.0, 2.0)),
}


@pytest.fixture(scope="module")
def shipped():
    cfg = json.loads((DEFAULT_BACKBONE_DIR / "config.json").read_text())
    assert cfg["name"] == "mindgap-lpips-sat-simsiam"
    assert not any("hr_rgbn" in s for s in cfg["training_sources"])  # never trained on the test image
    return load_backbone(None)


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_lpips_sat_is_monotonic_in_severity(shipped, tiles, name):
    fn, levels = DISTORTIONS[name]
    ref = torch.from_numpy(tiles).float()
    scores = np.stack([
        lpips_sat_score(shipped, torch.from_numpy(fn(tiles, s)).float(), ref, BANDS).numpy()
        for s in levels
    ])  # (levels, tiles)
    assert (scores[0] > 0).all()
    means = scores.mean(axis=1)
    assert np.all(np.diff(means) > 0), f"{name}: mean LPIPS-Sat by severity {means}"
    per_tile = (np.diff(scores, axis=0) > 0).all(axis=0).mean()
    assert per_tile >= 0.9, f"{name}: only {per_tile:.0%} of tiles rank all severities in order"


def test_identity_scores_zero(shipped, tiles):
    t = torch.from_numpy(tiles).float()
    assert lpips_sat_score(shipped, t, t, BANDS).abs().max().item() < 1e-6
