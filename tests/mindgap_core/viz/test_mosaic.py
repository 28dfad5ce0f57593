"""Mosaicking per-tile rasters by their georeferencing."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from mindgap_core.errors import InputError
from mindgap_core.io import write_cog
from mindgap_core.types import GeoRaster
from mindgap_core.viz.mosaic import coarsen, display_factor, mosaic_files, mosaic_rasters, shared_range

CRS_UTM = CRS.from_epsg(32618)
LEFT, TOP, RES = 790000.0, 2050000.0, 5.0


def _tiles(scene: np.ndarray, size: int, skip: set[tuple[int, int]] = frozenset()) -> dict[str, GeoRaster]:
    tiles = {}
    for r in range(scene.shape[0] // size):
        for c in range(scene.shape[1] // size):
            if (r, c) in skip:
                continue
            transform = Affine(RES, 0, LEFT + c * size * RES, 0, -RES, TOP - r * size * RES)
            block = scene[r * size:(r + 1) * size, c * size:(c + 1) * size]
            tiles[f"r{r}c{c}"] = GeoRaster(block[None].astype(np.float32), transform, CRS_UTM, ("lpips_sat",))
    return tiles


def test_tiles_go_back_where_they_came_from() -> None:
    scene = np.random.default_rng(0).random((24, 32))
    mosaic = mosaic_rasters(_tiles(scene, 8, skip={(1, 2)}))
    expected = scene.copy()
    expected[8:16, 16:24] = np.nan
    assert mosaic.array.shape == scene.shape
    assert np.allclose(mosaic.array, expected, equal_nan=True, atol=1e-6)
    assert mosaic.transform == Affine(RES, 0, LEFT, 0, -RES, TOP)
    assert mosaic.x[0] == LEFT + RES / 2 and mosaic.y[0] == TOP - RES / 2
    places = mosaic.placements.set_index("tile_id")
    assert places.loc["r2c3", ["row0", "col0"]].tolist() == [16, 24]
    assert places.loc["r0c1", "mean"] == pytest.approx(scene[0:8, 8:16].mean(), abs=1e-6)
    assert mosaic.tile_index()[17, 25] == "r2c3" and mosaic.tile_index()[9, 17] == ""


def test_masked_pixels_are_blank() -> None:
    scene = np.ones((8, 8))
    tile = _tiles(scene, 8)["r0c0"]
    mask = np.ones((8, 8), bool)
    mask[0, 0] = False
    mosaic = mosaic_rasters({"t": tile.replace(mask=mask)})
    assert np.isnan(mosaic.array[0, 0]) and np.isfinite(mosaic.array[1:]).all()


def test_mosaic_files_reads_cogs(tmp_path) -> None:
    scene = np.random.default_rng(1).random((16, 16))
    paths = {}
    for tile_id, raster in _tiles(scene, 8).items():
        paths[tile_id] = tmp_path / f"{tile_id}.tif"
        write_cog(raster, paths[tile_id])
    mosaic = mosaic_files(paths, band="lpips_sat")
    assert np.allclose(mosaic.array, scene, atol=1e-6)
    assert mosaic.crs == CRS_UTM and mosaic.band_name == "lpips_sat"


def test_inconsistent_tiles_are_refused() -> None:
    tiles = _tiles(np.zeros((8, 16)), 8)
    other_crs = tiles["r0c1"].replace(crs=CRS.from_epsg(32619))
    with pytest.raises(InputError, match="CRS"):
        mosaic_rasters({"r0c0": tiles["r0c0"], "r0c1": other_crs})
    t = tiles["r0c1"].transform
    shifted = tiles["r0c1"].replace(transform=Affine(t.a, 0, t.c + 2.5, 0, t.e, t.f))
    with pytest.raises(InputError, match="not aligned"):
        mosaic_rasters({"r0c0": tiles["r0c0"], "r0c1": shifted})
    coarse = tiles["r0c1"].replace(transform=Affine(10.0, 0, t.c, 0, -10.0, t.f))
    with pytest.raises(InputError, match="pixel size"):
        mosaic_rasters({"r0c0": tiles["r0c0"], "r0c1": coarse})
    with pytest.raises(InputError, match="no band"):
        mosaic_rasters(tiles, band="ssim")
    with pytest.raises(InputError, match="no tiles"):
        mosaic_rasters({})


def test_coarsen_averages_blocks_ignoring_blanks() -> None:
    scene = np.arange(64, dtype=float).reshape(8, 8)
    mosaic = mosaic_rasters(_tiles(scene, 4, skip={(1, 1)}))
    small = coarsen(mosaic, 2)
    assert small.array.shape == (4, 4)
    assert small.array[0, 0] == pytest.approx(scene[0:2, 0:2].mean())
    assert np.isnan(small.array[3, 3])
    assert small.transform.a == 2 * RES and small.transform.c == LEFT
    assert small.placements.set_index("tile_id").loc["r1c0", ["row0", "rows"]].tolist() == [2, 2]
    odd = coarsen(mosaic_rasters(_tiles(np.ones((6, 6)), 6)), 4)  # padding at the edges
    assert odd.array.shape == (2, 2) and np.allclose(odd.array, 1.0)
    assert coarsen(mosaic, 1) is mosaic
    assert display_factor((512, 300), 256) == 2 and display_factor((100, 100), 256) == 1


def test_shared_range_covers_both() -> None:
    a = mosaic_rasters(_tiles(np.full((4, 4), 0.2), 4))
    b = mosaic_rasters(_tiles(np.full((4, 4), 0.8), 4))
    low, high = shared_range([a, b], upper_percentile=100)
    assert (low, high) == (pytest.approx(0.2), pytest.approx(0.8))
