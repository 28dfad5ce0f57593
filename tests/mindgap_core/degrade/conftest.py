"""Real HR imagery for the degradation tests: a crop of the shipped 5 m B, G, R, NIR sample."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.windows import Window

from tests.fixtures import hr_sample_reflectance

#: DN 255 -> reflectance 0.5: keeps the crops in a realistic 0-0.5 range (an assumed conversion).
MAX_REFLECTANCE = 0.5


def read_hr_tile(size: int = 128, row: int = 100, col: int = 150) -> tuple[np.ndarray, Affine, object]:
    """A ``size`` x ``size`` crop as float32 reflectance (4, size, size), its transform and CRS."""
    tile = hr_sample_reflectance(MAX_REFLECTANCE, Window(col, row, size, size))
    return tile.array, tile.transform, tile.crs


@pytest.fixture(scope="session")
def hr_tile() -> np.ndarray:
    """(4, 128, 128) reflectance crop, bands blue, green, red, nir."""
    return read_hr_tile()[0]


@pytest.fixture(scope="session")
def read_tile():
    """The :func:`read_hr_tile` function, for tests that need other crops."""
    return read_hr_tile
