"""Tiny SRModel stand-ins (same interface as mindgap_core.models) and small georeferenced scenes.

Their timing and behaviour are fixed here, so the inference tests do not depend on the models being
trained or fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.crs import CRS

BANDS = ("blue", "green", "red", "nir")
CRS_UTM = CRS.from_epsg(32618)
LR_TRANSFORM = Affine(20.0, 0.0, 500_000.0, 0.0, -20.0, 4_400_000.0)


class ConvUpModel:
    """Deterministic: two fixed 3x3 convolutions on the LR tile (receptive field radius 2 LR px,
    zero padding, so tile borders are visible), then nearest upsampling by ``scale``."""

    method = "toy-conv"
    stochastic = False
    default_steps = 1
    band_names = BANDS

    def __init__(self, scale: int = 2) -> None:
        self.scale = scale
        gen = torch.Generator().manual_seed(1234)
        self.conv1 = torch.rand(4, 4, 3, 3, generator=gen) / 18
        self.conv2 = torch.rand(4, 4, 3, 3, generator=gen) / 18
        self.calls: list[int] = []  # batch size of every call

    def sample(self, lr, num_samples=1, steps=None, generator=None):
        self.calls.append(lr.shape[0])
        x = torch.nn.functional.conv2d(lr, self.conv1, padding=1)
        x = torch.nn.functional.conv2d(x, self.conv2, padding=1) + lr
        hr = torch.nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest")
        return hr[:, None].expand(-1, num_samples, -1, -1, -1).clone()


class NoisyModel(ConvUpModel):
    """Stochastic: ConvUpModel plus Gaussian noise drawn from ``generator``."""

    method = "toy-noisy"
    stochastic = True
    default_steps = 3

    def sample(self, lr, num_samples=1, steps=None, generator=None):
        hr = super().sample(lr, num_samples=num_samples)
        noise = torch.randn(hr.shape, generator=generator, device=hr.device)
        return hr + 0.05 * noise


def write_scene(
    path: Path,
    array: np.ndarray,
    *,
    crs: CRS | None = CRS_UTM,
    transform: Affine = LR_TRANSFORM,
    band_names: tuple[str, ...] | None = BANDS,
    nodata: float | None = None,
) -> Path:
    """Write a float32 (or integer) GeoTIFF with band descriptions."""
    profile = dict(driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
                   dtype=array.dtype.name, nodata=nodata)  # fmt: skip
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(array)
        if band_names is not None:
            ds.descriptions = band_names
    return path


def smooth_scene(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """Seeded reflectance-like (4, rows, cols) float32 in about [0.02, 0.5]."""
    rng = np.random.default_rng(seed)
    noise = rng.random((4, rows + 4, cols + 4))
    kernel = np.ones(5) / 5
    for axis in (1, 2):
        noise = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), axis, noise)
    return (0.02 + 0.48 * noise).astype(np.float32)
