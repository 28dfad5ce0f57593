"""Satellite-appropriate augmentations that build SimSiam's two views.

Every random draw comes from one seeded ``numpy.random.Generator``, so the same seed gives the same
batches. Per view: a random resized crop (area 30-100 % of a fully valid base region, aspect 3/4-4/3)
resized to ``size`` with antialiasing; horizontal/vertical flips and 90° rotations (a nadir image has
no preferred orientation); per-band gain (log-normal, sigma 0.05), a global brightness gain
(0.85-1.15) and a small per-band offset (sigma 0.005), which perturb radiometry without any hue
rotation that would mix bands; Gaussian blur (p 0.5, sigma 0.1-1.5 px, an MTF change) and Gaussian
noise (p 0.5, sigma up to 0.01 reflectance). NIR handling: **band dropout** — a missing NIR band
(Landsat-8 here) and, with probability ``nir_dropout`` per view, a present one are replaced by the
NIR training mean, i.e. 0 after standardisation, so the encoder learns to work with and without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mindgap_core.ssl.data import SSLImage

NIR = 3


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (defaults are the shipped backbone's)."""

    size: int = 64
    region: int = 96
    s2_probability: float = 0.5
    crop_area: tuple[float, float] = (0.3, 1.0)
    band_gain_sigma: float = 0.05
    brightness: tuple[float, float] = (0.85, 1.15)
    offset_sigma: float = 0.005
    blur_probability: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    noise_probability: float = 0.5
    noise_sigma_max: float = 0.01
    nir_dropout: float = 0.2


class RegionSampler:
    """Draws fully valid square regions from the training images (summed-area table of invalid)."""

    def __init__(self, images: list[SSLImage], region: int) -> None:
        self.images = images
        self.region = region
        self.tables = []
        for im in images:
            rows, cols = im.valid.shape
            if rows < region or cols < region:
                raise ValueError(f"{im.name}: {rows}x{cols} is smaller than the {region}-px region")
            bad = (~im.valid).astype(np.int64)
            sat = np.zeros((rows + 1, cols + 1), dtype=np.int64)
            sat[1:, 1:] = bad.cumsum(0).cumsum(1)
            self.tables.append(sat)

    def _clean(self, i: int, r: int, c: int) -> bool:
        s, k = self.tables[i], self.region
        return s[r + k, c + k] - s[r, c + k] - s[r + k, c] + s[r, c] == 0

    def draw(self, i: int, rng: np.random.Generator, tries: int = 200) -> np.ndarray:
        """A (4, region, region) float32 copy of a fully valid region of image ``i``."""
        im = self.images[i]
        rows, cols = im.valid.shape
        k = self.region
        for _ in range(tries):
            r = int(rng.integers(0, rows - k + 1))
            c = int(rng.integers(0, cols - k + 1))
            if self._clean(i, r, c):
                return im.array[:, r:r + k, c:c + k].copy()
        raise ValueError(f"{im.name}: no fully valid {k}-px region found in {tries} tries")


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W), reflect padding, radius ceil(3 sigma)."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[0]
    y = F.pad(x[None], (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return y[0]


def make_view(region: np.ndarray, present: tuple[bool, ...], band_mean: tuple[float, ...],
              rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """One augmented (4, size, size) view of a (4, R, R) reflectance region."""
    k = region.shape[-1]
    area = rng.uniform(*cfg.crop_area) * k * k
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    h = int(min(k, max(8, round(math.sqrt(area / aspect)))))
    w = int(min(k, max(8, round(math.sqrt(area * aspect)))))
    r = int(rng.integers(0, k - h + 1))
    c = int(rng.integers(0, k - w + 1))
    x = torch.from_numpy(np.ascontiguousarray(region[:, r:r + h, c:c + w]))
    x = F.interpolate(x[None], size=(cfg.size, cfg.size), mode="bilinear", antialias=True,
                      align_corners=False)[0]
    if rng.random() < 0.5:
        x = x.flip(-1)
    if rng.random() < 0.5:
        x = x.flip(-2)
    x = torch.rot90(x, int(rng.integers(0, 4)), dims=(-2, -1))
    gains = np.exp(rng.normal(0.0, cfg.band_gain_sigma, 4)) * rng.uniform(*cfg.brightness)
    offsets = rng.normal(0.0, cfg.offset_sigma, 4)
    x = x * torch.tensor(gains, dtype=x.dtype)[:, None, None] + torch.tensor(offsets, dtype=x.dtype)[:, None, None]
    if rng.random() < cfg.blur_probability:
        x = _gaussian_blur(x, float(rng.uniform(*cfg.blur_sigma)))
    if rng.random() < cfg.noise_probability:
        sigma = float(rng.uniform(0.0, cfg.noise_sigma_max))
        noise = rng.standard_normal(x.shape).astype(np.float32) * sigma
        x = x + torch.from_numpy(noise)
    drop_nir = (not present[NIR]) or rng.random() < cfg.nir_dropout
    if drop_nir:
        x = x.clone()
        x[NIR] = band_mean[NIR]
    return x.contiguous()


def sample_batch(sampler: RegionSampler, batch: int, band_mean: tuple[float, ...],
                 rng: np.random.Generator, cfg: AugmentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (batch, 4, size, size) views of ``batch`` regions (S2 with ``s2_probability``)."""
    v1, v2 = [], []
    for _ in range(batch):
        i = 0 if rng.random() < cfg.s2_probability else 1
        i = min(i, len(sampler.images) - 1)
        region = sampler.draw(i, rng)
        present = sampler.images[i].present
        v1.append(make_view(region, present, band_mean, rng, cfg))
        v2.append(make_view(region, present, band_mean, rng, cfg))
    return torch.stack(v1), torch.stack(v2)
