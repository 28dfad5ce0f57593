"""Frozen dataclasses that cross module boundaries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from affine import Affine
from rasterio.crs import CRS

#: Canonical band names, in MindGap's order. Band order is always explicit: arrays carry names.
CANONICAL_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir")
#: Sentinel-2 band ids of the canonical bands (the one alias table: readers, uploads, tiled inference)
S2_TO_CANONICAL: dict[str, str] = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}


def canonical_band(name: str) -> str:
    """A band name as MindGap names it: Sentinel-2 ids (``B02``, any case) become canonical names; any
    other name is lower-cased and stripped (``"NIR "`` -> ``"nir"``)."""
    key = name.strip()
    return S2_TO_CANONICAL.get(key.upper(), key.lower())

#: ``on_progress(done, total)``: the CLI drives tqdm with it, the dashboard st.progress.
ProgressFn = Callable[[int, int], None]


def no_progress(done: int, total: int) -> None:
    """Progress callback that ignores progress."""


@dataclass(frozen=True, eq=False)
class GeoRaster:
    """A georeferenced multiband raster held in memory.

    ``array`` is (bands, rows, cols). ``mask`` (rows, cols) is True where pixels are valid (clear,
    not nodata); None means all valid. ``units`` is "reflectance" (float, ~[0, 1]) or "DN".
    """

    array: np.ndarray
    transform: Affine
    crs: CRS | None
    band_names: tuple[str, ...]
    nodata: float | None = None
    units: str = "reflectance"
    mask: np.ndarray | None = None
    acquired: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"GeoRaster array must be (bands, rows, cols), got shape {self.array.shape}")
        if len(self.band_names) != self.array.shape[0]:
            raise ValueError(
                f"{len(self.band_names)} band names for {self.array.shape[0]} bands: {self.band_names}"
            )
        if self.mask is not None and self.mask.shape != self.array.shape[1:]:
            raise ValueError(f"mask shape {self.mask.shape} does not match raster {self.array.shape[1:]}")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return int(self.array.shape[1]), int(self.array.shape[2])

    @property
    def resolution(self) -> float:
        """Pixel size in CRS units (square pixels assumed; x size)."""
        return float(abs(self.transform.a))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        rows, cols = self.shape
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (cols, rows)
        return (min(left, right), min(bottom, top), max(left, right), max(bottom, top))

    @property
    def valid(self) -> np.ndarray:
        """Boolean (rows, cols) validity mask, all True when no mask is set."""
        if self.mask is None:
            return np.ones(self.shape, dtype=bool)
        return self.mask

    def band(self, name: str) -> np.ndarray:
        """The 2-D array of one band, by name."""
        try:
            return self.array[self.band_names.index(name)]
        except ValueError:
            raise KeyError(f"band {name!r} not in {self.band_names}") from None

    def select(self, names: tuple[str, ...]) -> GeoRaster:
        """A new raster with the bands in ``names`` order."""
        missing = [n for n in names if n not in self.band_names]
        if missing:
            raise KeyError(f"bands {missing} not in {self.band_names}")
        idx = [self.band_names.index(n) for n in names]
        return self.replace(array=self.array[idx], band_names=tuple(names))

    def replace(self, **changes: object) -> GeoRaster:
        """A copy with some fields changed (dataclasses.replace)."""
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True)
class MetricRow:
    """One tidy score: ``metric`` of tile ``tile_id`` on ``band`` (a band name or "all").

    ``options`` is a JSON-safe dict of how it was computed (data range, histogram matching, scale,
    backbone ...), so equal options mean comparable values.
    """

    tile_id: str
    band: str
    metric: str
    value: float
    options: Mapping[str, object] = field(default_factory=dict)
