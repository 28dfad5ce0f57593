"""Read-only views of a pair manifest for display: counts, a tile's images, the scene's tile grid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mindgap_core.data.manifest import read_manifest, resolve
from mindgap_core.io import read_raster
from mindgap_core.viz.render import render, stretch_limits

#: display label of each domain; simulated domains say so in their label
DOMAIN_LABELS: dict[str, str] = {
    "synthetic": "Synthetic LR (HR degraded)",
    "simulated_cross_sensor": "Simulated cross-sensor LR",
    "real_cross_sensor": "Real cross-sensor LR (Sentinel-2)",
}


@dataclass(frozen=True)
class TileViews:
    """uint8 RGB renderings of one tile's HR and LR images, all with the HR's stretch."""

    tile_id: str
    split: str
    images: dict[str, np.ndarray]


def domain_split_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """Pairs per domain (rows) and split (columns), with a total column."""
    table = pd.crosstab(manifest["domain"], manifest["split"])
    ordered = [s for s in ("train", "val", "test") if s in table.columns]
    table = table[ordered + [c for c in table.columns if c not in ordered]]
    table["total"] = table.sum(axis=1)
    return table


def tile_views(manifest_path: str | Path, tile_id: str, rendering: str = "true_colour") -> TileViews:
    """Render the HR tile and every domain's LR tile of ``tile_id`` with one shared stretch."""
    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path)
    rows = manifest[manifest["tile_id"] == tile_id]
    if rows.empty:
        raise KeyError(f"tile {tile_id!r} not in {manifest_path}")
    root = manifest_path.parent
    hr = read_raster(resolve(root, rows.iloc[0]["hr_path"]))
    limits = stretch_limits(hr.array, hr.band_names, rendering, valid=hr.valid)
    images = {"HR (reference)": render(hr.array, hr.band_names, rendering, limits)}
    for _, row in rows.sort_values("domain").iterrows():
        lr = read_raster(resolve(root, row["lr_path"]))
        label = DOMAIN_LABELS.get(row["domain"], row["domain"])
        images[label] = render(lr.array, lr.band_names, rendering, limits)
    return TileViews(tile_id=tile_id, split=str(rows.iloc[0]["split"]), images=images)


def tile_grid(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per tile: tile id, split, block, grid row/col and HR bounds."""
    columns = ["tile_id", "split", "block_id", "row", "col", "hr_left", "hr_bottom", "hr_right", "hr_top"]
    return manifest[columns].drop_duplicates("tile_id").sort_values(["row", "col"]).reset_index(drop=True)
