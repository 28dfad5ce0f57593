"""Satellite-appropriate augmentations that build SimSiam's two views.

Every random draw comes from one seeded ``numpy.random.Generator``, so the same seed gives the same
batches; the views of a batch are built with batched torch ops. Per view: a random resized crop
(area 30-100 % of a fully valid base region, aspect 3/4-4/3) resampled bilinearly to ``size``,
combined with one of the 8 flips/90° rotations (a nadir image has
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


def _blur_batch(x: torch.Tensor, sigmas: np.ndarray, radius: int = 5) -> torch.Tensor:
    """Per-sample separable Gaussian blur of (B, C, H, W); sigma 0 leaves a sample unchanged."""
    b, c, h, w = x.shape
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    s = torch.from_numpy(np.asarray(sigmas, dtype=np.float64))
    k = torch.exp(-0.5 * (t[None, :] / s.clamp_min(1e-6)[:, None]) ** 2)
    k = torch.where(s[:, None] > 0, k, (t[None, :] == 0).to(torch.float64))
    k = (k / k.sum(dim=1, keepdim=True)).to(x.dtype)
    k = k.repeat_interleave(c, dim=0)  # (B*C, 2r+1)
    y = F.pad(x.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(b * c, 1, 1, -1), groups=b * c)
    y = F.conv2d(y, k.view(b * c, 1, -1, 1), groups=b * c)
    return y.reshape(b, c, h, w)


#: the 8 symmetries of the square (flips and 90-degree rotations) as 2x2 matrices
_DIHEDRAL = [np.array(m, dtype=np.float64) for m in (
    [[1, 0], [0, 1]], [[-1, 0], [0, 1]], [[1, 0], [0, -1]], [[-1, 0], [0, -1]],
    [[0, 1], [1, 0]], [[0, -1], [1, 0]], [[0, 1], [-1, 0]], [[0, -1], [-1, 0]],
)]


def make_views(regions: torch.Tensor, present_nir: np.ndarray, band_mean: tuple[float, ...],
               rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """One augmented (B, 4, size, size) view of each (4, R, R) region in ``regions`` (batched)."""
    b, _, k, _ = regions.shape
    theta = np.zeros((b, 2, 3))
    for i in range(b):
        area = rng.uniform(*cfg.crop_area)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        sw = min(1.0, math.sqrt(area * aspect))  # crop width / region width
        sh = min(1.0, math.sqrt(area / aspect))
        cx = rng.uniform(-1 + sw, 1 - sw) if sw < 1 else 0.0
        cy = rng.uniform(-1 + sh, 1 - sh) if sh < 1 else 0.0
        sym = _DIHEDRAL[int(rng.integers(0, 8))]
        theta[i, :, :2] = np.diag([sw, sh]) @ sym
        theta[i, :, 2] = (cx, cy)
    grid = F.affine_grid(torch.from_numpy(theta).to(regions.dtype), [b, 4, cfg.size, cfg.size],
                         align_corners=False)
    x = F.grid_sample(regions, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gains = np.exp(rng.normal(0.0, cfg.band_gain_sigma, (b, 4))) * rng.uniform(*cfg.brightness, (b, 1))
    offsets = rng.normal(0.0, cfg.offset_sigma, (b, 4))
    x = x * torch.from_numpy(gains).to(x.dtype)[..., None, None] + \
        torch.from_numpy(offsets).to(x.dtype)[..., None, None]
    blur = rng.random(b) < cfg.blur_probability
    sigmas = np.where(blur, rng.uniform(*cfg.blur_sigma, b), 0.0)
    x = _blur_batch(x, sigmas)
    noisy = rng.random(b) < cfg.noise_probability
    nsig = np.where(noisy, rng.uniform(0.0, cfg.noise_sigma_max, b), 0.0)
    noise = rng.standard_normal(x.shape).astype(np.float32) * nsig[:, None, None, None].astype(np.float32)
    x = x + torch.from_numpy(noise).to(x.dtype)
    drop = (~present_nir) | (rng.random(b) < cfg.nir_dropout)
    nir = torch.where(torch.from_numpy(drop)[:, None, None], torch.full_like(x[:, NIR], band_mean[NIR]),
                      x[:, NIR])
    return torch.cat([x[:, :NIR], nir[:, None], x[:, NIR + 1:]], dim=1).contiguous()


def sample_batch(sampler: RegionSampler, batch: int, band_mean: tuple[float, ...],
                 rng: np.random.Generator, cfg: AugmentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (batch, 4, size, size) views of ``batch`` regions (S2 with ``s2_probability``)."""
    regions, nir = [], []
    for _ in range(batch):
        i = min(0 if rng.random() < cfg.s2_probability else 1, len(sampler.images) - 1)
        regions.append(sampler.draw(i, rng))
        nir.append(sampler.images[i].present[NIR])
    r = torch.from_numpy(np.stack(regions))
    present = np.asarray(nir, dtype=bool)
    return make_views(r, present, band_mean, rng, cfg), make_views(r, present, band_mean, rng, cfg)
