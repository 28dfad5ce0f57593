"""Augmentations that build SimSiam's two views without any error LPIPS-Sat must see.

LPIPS-Sat has to respond to what super-resolution gets wrong: blur, resampling, noise, misplaced or
invented texture. An encoder learns *invariance* to whatever differs between its two views, so the
views here differ only by what the metric may ignore:

- **position**: each view is a ``size``-px window at an integer offset inside a shared ``region``-px
  region (pixels copied, never interpolated: no resampling blur);
- **orientation**: one of the 8 flips/90° rotations (exact pixel permutations; a nadir image has no
  preferred orientation);
- **small radiometric changes**: a global gain (log-uniform in ``brightness``) and a global offset
  (uniform in ±``global_offset`` reflectance) common to all bands, plus a smaller per-band gain
  (log-normal, σ ``band_gain_sigma``) and offset (σ ``band_offset_sigma``). Radiometry is scored by
  reflectance, SAM and PSNR; the perceptual metric may discount it.

No blur, no noise, no resizing, no texture. NIR handling: **band dropout** — a missing NIR band
(Landsat-8 here) and, with probability ``nir_dropout`` per view, a present one are replaced by the
NIR training mean (0 after standardisation), so the encoder works with and without it.

Every random draw comes from one seeded ``numpy.random.Generator``: the same seed gives the same
batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mindgap_core.ssl.data import SSLImage

NIR = 3


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (defaults are the shipped backbone's)."""

    size: int = 64
    region: int = 96
    #: relative sampling weight of each training image, in :func:`~mindgap_core.ssl.data.load_sources`
    #: order (S2, Landsat-8, HR); images beyond the tuple get weight 1
    source_weights: tuple[float, ...] = (1.0, 1.0, 1.0)
    brightness: tuple[float, float] = (0.8, 1.25)
    global_offset: float = 0.025
    band_gain_sigma: float = 0.02
    band_offset_sigma: float = 0.002
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

    def draw(self, i: int, rng: np.random.Generator, tries: int = 500) -> np.ndarray:
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


def _window(region: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A ``size``-px window at a random integer offset, under a random flip/90° rotation."""
    k = region.shape[-1]
    r, c = (int(v) for v in rng.integers(0, k - size + 1, 2))
    w = region[:, r:r + size, c:c + size]
    w = np.rot90(w, int(rng.integers(0, 4)), axes=(1, 2))
    if rng.random() < 0.5:
        w = w[:, :, ::-1]
    return w


def make_views(regions: np.ndarray, present_nir: np.ndarray, band_mean: tuple[float, ...],
               rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """One augmented (B, 4, size, size) view of each (4, R, R) region in ``regions``."""
    b = regions.shape[0]
    x = np.stack([_window(r, rng, cfg.size) for r in regions]).astype(np.float32)
    lo, hi = (math.log(v) for v in cfg.brightness)
    gains = np.exp(rng.uniform(lo, hi, (b, 1)) + rng.normal(0.0, cfg.band_gain_sigma, (b, 4)))
    offsets = rng.uniform(-cfg.global_offset, cfg.global_offset, (b, 1)) + \
        rng.normal(0.0, cfg.band_offset_sigma, (b, 4))
    x = x * gains[..., None, None].astype(np.float32) + offsets[..., None, None].astype(np.float32)
    drop = (~present_nir) | (rng.random(b) < cfg.nir_dropout)
    x[drop, NIR] = np.float32(band_mean[NIR])
    return torch.from_numpy(np.ascontiguousarray(x))


def sample_batch(sampler: RegionSampler, batch: int, band_mean: tuple[float, ...],
                 rng: np.random.Generator, cfg: AugmentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (batch, 4, size, size) views of ``batch`` regions, images drawn by ``source_weights``."""
    n = len(sampler.images)
    w = np.array([cfg.source_weights[i] if i < len(cfg.source_weights) else 1.0 for i in range(n)])
    p = w / w.sum()
    picks = rng.choice(n, size=batch, p=p)
    regions = np.stack([sampler.draw(int(i), rng) for i in picks])
    present = np.array([sampler.images[int(i)].present[NIR] for i in picks], dtype=bool)
    return (make_views(regions, present, band_mean, rng, cfg),
            make_views(regions, present, band_mean, rng, cfg))
