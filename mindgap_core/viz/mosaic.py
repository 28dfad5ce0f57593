"""Per-tile rasters (metric-map COGs) placed into one scene array by their georeferencing.

Each tile is put where its geotransform says: the mosaic grid starts at the left/top-most tile corner
and uses the (shared) pixel size of the tiles. Pixels no tile covers, and masked pixels, are NaN.
Where tiles overlap, the mean of the overlapping values is kept. Tiles must share CRS and pixel size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from affine import Affine

from mindgap_core.errors import InputError
from mindgap_core.types import GeoRaster

#: relative tolerance on pixel sizes, and on tile offsets in pixels
_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Mosaic:
    """One band of many tiles on one grid.

    ``array``: (rows, cols) float64, NaN where no tile (or a masked pixel) is. ``placements``: one row
    per tile (``tile_id``, ``row0``, ``col0``, ``rows``, ``cols``, ``mean``: the tile's mean value).
    """

    array: np.ndarray
    transform: Affine
    crs: object
    band_name: str
    placements: pd.DataFrame

    @property
    def x(self) -> np.ndarray:
        """Map x coordinate of each column's pixel centre."""
        return self.transform.c + self.transform.a * (np.arange(self.array.shape[1]) + 0.5)

    @property
    def y(self) -> np.ndarray:
        """Map y coordinate of each row's pixel centre."""
        return self.transform.f + self.transform.e * (np.arange(self.array.shape[0]) + 0.5)

    def tile_index(self) -> np.ndarray:
        """(rows, cols) array of tile ids (object; "" where no tile), for hover labels."""
        ids = np.full(self.array.shape, "", dtype=object)
        for t in self.placements.itertuples():
            ids[t.row0:t.row0 + t.rows, t.col0:t.col0 + t.cols] = t.tile_id
        return ids


def _band_index(raster: GeoRaster, band: int | str, source: object) -> int:
    if isinstance(band, int):
        if not 0 <= band < raster.array.shape[0]:
            raise InputError(source, f"has {raster.array.shape[0]} band(s), no band {band}")
        return band
    if band not in raster.band_names:
        raise InputError(source, f"has no band {band!r} (bands {list(raster.band_names)})")
    return raster.band_names.index(band)


def mosaic_rasters(rasters: Mapping[str, GeoRaster], band: int | str = 0) -> Mosaic:
    """Place ``{tile_id: raster}`` on one grid (see the module docstring); one band of each."""
    if not rasters:
        raise InputError("mosaic", "no tiles to place")
    items = sorted(rasters.items())
    first_id, first = items[0]
    res_x, res_y = first.transform.a, first.transform.e
    if first.transform.b or first.transform.d:
        raise InputError(first_id, "rotated rasters cannot be mosaicked")
    for tile_id, raster in items[1:]:
        t = raster.transform
        if (t.b or t.d or not np.isclose(t.a, res_x, rtol=_TOLERANCE)
                or not np.isclose(t.e, res_y, rtol=_TOLERANCE)):
            problem = f"pixel size {(t.a, t.e)} differs from tile {first_id!r} {(res_x, res_y)}"
            raise InputError(tile_id, problem)
        if raster.crs != first.crs:
            raise InputError(tile_id, f"CRS {raster.crs} differs from tile {first_id!r} ({first.crs})")
    left = min(r.transform.c for _, r in items)
    top = max(r.transform.f for _, r in items) if res_y < 0 else min(r.transform.f for _, r in items)
    offsets = []
    for tile_id, raster in items:
        col = (raster.transform.c - left) / res_x
        row = (raster.transform.f - top) / res_y
        if abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
            raise InputError(tile_id, "tile is not aligned to the pixel grid of the other tiles")
        offsets.append((int(round(row)), int(round(col))))
    n_rows = max(o[0] + r.array.shape[1] for o, (_, r) in zip(offsets, items, strict=True))
    n_cols = max(o[1] + r.array.shape[2] for o, (_, r) in zip(offsets, items, strict=True))
    total = np.zeros((n_rows, n_cols))
    count = np.zeros((n_rows, n_cols))
    records = []
    band_name = ""
    for (row0, col0), (tile_id, raster) in zip(offsets, items, strict=True):
        index = _band_index(raster, band, tile_id)
        band_name = raster.band_names[index]
        values = raster.array[index].astype(np.float64)
        valid = np.isfinite(values) & raster.valid
        rows, cols = values.shape
        total[row0:row0 + rows, col0:col0 + cols] += np.where(valid, values, 0.0)
        count[row0:row0 + rows, col0:col0 + cols] += valid
        mean = float(values[valid].mean()) if valid.any() else float("nan")
        records.append({"tile_id": tile_id, "row0": row0, "col0": col0, "rows": rows, "cols": cols,
                        "mean": mean})
    with np.errstate(invalid="ignore", divide="ignore"):
        array = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    transform = Affine(res_x, 0.0, left, 0.0, res_y, top)
    return Mosaic(array, transform, first.crs, band_name, pd.DataFrame.from_records(records))


def mosaic_files(paths: Mapping[str, str | Path], band: int | str = 0) -> Mosaic:
    """Read ``{tile_id: COG path}`` and place the tiles (:func:`mosaic_rasters`)."""
    from mindgap_core.io import read_raster

    return mosaic_rasters({tile_id: read_raster(path) for tile_id, path in paths.items()}, band)


def shared_range(mosaics: Sequence[Mosaic], upper_percentile: float = 99.0) -> tuple[float, float]:
    """One colour range for several mosaics: min of all values to the ``upper_percentile`` of all."""
    values = np.concatenate([m.array[np.isfinite(m.array)] for m in mosaics]) if mosaics else np.array([])
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(np.percentile(values, upper_percentile))
    return low, high if high > low else low + 1e-9


def coarsen(mosaic: Mosaic, factor: int) -> Mosaic:
    """``mosaic`` with ``factor`` × ``factor`` pixel blocks averaged (NaN-aware), for light display.

    Tile placements are rescaled to the coarse grid; tile means are kept (they are of the full tiles).
    """
    if factor <= 1:
        return mosaic
    rows, cols = mosaic.array.shape
    pad_r, pad_c = (-rows) % factor, (-cols) % factor
    padded = np.pad(mosaic.array, ((0, pad_r), (0, pad_c)), constant_values=np.nan)
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    finite = np.isfinite(blocks)
    with np.errstate(invalid="ignore", divide="ignore"):
        array = np.where(finite.any(axis=(1, 3)),
                         np.nansum(blocks, axis=(1, 3)) / np.maximum(finite.sum(axis=(1, 3)), 1), np.nan)
    t = mosaic.transform
    places = mosaic.placements.assign(
        row0=mosaic.placements["row0"] // factor, col0=mosaic.placements["col0"] // factor,
        rows=-(-mosaic.placements["rows"] // factor), cols=-(-mosaic.placements["cols"] // factor),
    )
    transform = Affine(t.a * factor, 0.0, t.c, 0.0, t.e * factor, t.f)
    return Mosaic(array, transform, mosaic.crs, mosaic.band_name, places)


def display_factor(shape: tuple[int, int], max_side: int = 256) -> int:
    """The smallest integer factor that brings both sides of ``shape`` to at most ``max_side`` pixels."""
    return max(1, int(np.ceil(max(shape) / max_side)))
