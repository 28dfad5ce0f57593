"""The real satellite images the LPIPS-Sat backbone is pre-trained and calibrated on, as reflectance.

Sources (shipped in ``data/demo/``; never the demo's test tiles):
- the real Sentinel-2 10 m patch (B02, B03, B04, B08; uint16 DN = reflectance x 10000);
- the real Landsat-8 OLI L1TP scene (B2, B3, B4 at 30 m; uint16 DN). Converted to top-of-atmosphere
  reflectance with the standard Landsat-8 Collection-1 rescaling ``2.0e-5 * DN - 0.1`` (the value of
  REFLECTANCE_MULT/ADD_BAND_n for every OLI reflective band); the sun-elevation correction needs the
  MTL file, which is not shipped, so it is not applied. DN 0 is USGS fill: invalid. It has no NIR
  band: its ``nir`` channel is missing and handled by band dropout during pre-training;
- the real 5 m HR image as the demo calibrates it (``data/demo/scene/hr_reflectance_5m.tif``) with
  every tile of the held-out splits (test and, by default, val; from ``data/demo/manifest.parquet``)
  marked invalid, so no training region ever overlaps a tile the metric is checked on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mindgap_core.errors import InputError
from mindgap_core.types import CANONICAL_BANDS

S2_FILE = "s2_10m_b02_b03_b04_b08_spyndex.tif"
LANDSAT_DIR = "landsat8"
#: Landsat-8 OLI file suffix -> our band name
LANDSAT_BANDS: dict[str, str] = {"_B2.TIF": "blue", "_B3.TIF": "green", "_B4.TIF": "red"}
LANDSAT_MULT = 2.0e-5
LANDSAT_ADD = -0.1
S2_QUANTIFICATION = 10000.0
#: the demo's calibrated HR scene and pair manifest, relative to the demo folder
HR_SCENE_FILE = "scene/hr_reflectance_5m.tif"
MANIFEST_FILE = "manifest.parquet"
#: splits whose tiles the backbone and the calibration never see
HELD_OUT_SPLITS: tuple[str, ...] = ("test", "val")


@dataclass(frozen=True, eq=False)
class SSLImage:
    """One training image: reflectance (4, rows, cols) float32 in CANONICAL_BANDS order.

    ``present`` says which bands exist (a missing band holds zeros); ``valid`` (rows, cols) marks
    usable pixels.
    """

    name: str
    array: np.ndarray
    present: tuple[bool, ...]
    valid: np.ndarray


def load_sentinel2_patch(path: str | Path) -> SSLImage:
    """The real S2 patch, DN / 10000."""
    from mindgap_core.io import read_raster

    r = read_raster(path, band_names=CANONICAL_BANDS, units="DN")
    arr = r.array.astype(np.float32) / np.float32(S2_QUANTIFICATION)
    return SSLImage(f"sentinel2:{Path(path).name}", arr, (True,) * 4, r.valid.copy())


def load_landsat8(folder: str | Path) -> SSLImage:
    """Landsat-8 B2/B3/B4 from ``folder`` as TOA reflectance; NIR missing."""
    from mindgap_core.io import read_raster

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "Landsat-8 folder not found")
    bands: dict[str, np.ndarray] = {}
    valid = None
    names = []
    for suffix, band in LANDSAT_BANDS.items():
        hits = sorted(folder.glob(f"*{suffix}"))
        if len(hits) != 1:
            raise InputError(folder, f"expected one *{suffix} file, found {len(hits)}")
        r = read_raster(hits[0], band_names=(band,), units="DN")
        dn = r.array[0]
        ok = r.valid & (dn > 0)
        if valid is not None and ok.shape != valid.shape:
            raise InputError(hits[0], f"shape {ok.shape} differs from the other Landsat bands")
        valid = ok if valid is None else valid & ok
        bands[band] = (dn.astype(np.float32) * np.float32(LANDSAT_MULT) + np.float32(LANDSAT_ADD))
        names.append(hits[0].name)
    assert valid is not None
    zeros = np.zeros_like(bands["blue"])
    arr = np.stack([bands.get(b, zeros) for b in CANONICAL_BANDS]).astype(np.float32)
    arr[:, ~valid] = 0.0
    present = tuple(b in bands for b in CANONICAL_BANDS)
    return SSLImage(f"landsat8:{folder.name}", arr, present, valid)


def split_tiles(demo_dir: str | Path) -> dict[str, tuple[str, ...]]:
    """split -> the HR tile ids in it, from the demo manifest (tile ids sorted)."""
    from mindgap_core.data.manifest import read_manifest

    frame = read_manifest(Path(demo_dir) / MANIFEST_FILE).drop_duplicates("tile_id")
    return {str(s): tuple(sorted(g["tile_id"])) for s, g in frame.groupby("split")}


def load_demo_hr(demo_dir: str | Path, exclude_splits: tuple[str, ...] = HELD_OUT_SPLITS) -> SSLImage:
    """The calibrated 5 m HR scene with every tile of ``exclude_splits`` marked invalid.

    Tile footprints come from the manifest's ``hr_left/right/top/bottom`` mapped through the scene's
    geotransform, so the exclusion holds whatever the scene's origin.
    """
    from rasterio.windows import from_bounds

    from mindgap_core.data.manifest import read_manifest
    from mindgap_core.io import read_raster

    demo_dir = Path(demo_dir)
    scene = read_raster(demo_dir / HR_SCENE_FILE, band_names=CANONICAL_BANDS, units="reflectance")
    frame = read_manifest(demo_dir / MANIFEST_FILE).drop_duplicates("tile_id")
    valid = scene.valid.copy()
    held = frame[frame["split"].isin(exclude_splits)]
    for row in held.itertuples():
        win = from_bounds(row.hr_left, row.hr_bottom, row.hr_right, row.hr_top, scene.transform)
        r0, c0 = int(round(win.row_off)), int(round(win.col_off))
        r1, c1 = r0 + int(round(win.height)), c0 + int(round(win.width))
        valid[max(r0, 0):max(r1, 0), max(c0, 0):max(c1, 0)] = False
    arr = scene.array.astype(np.float32).copy()
    arr[:, ~valid] = 0.0
    name = f"hr5m:{HR_SCENE_FILE} without {'+'.join(exclude_splits)} tiles"
    return SSLImage(name, arr, (True,) * 4, valid)


def demo_hr_tiles(demo_dir: str | Path, split: str) -> tuple[tuple[str, ...], np.ndarray]:
    """(tile ids, (N, 4, H, W) float64 reflectance) of the demo's HR tiles in ``split``."""
    from mindgap_core.io import read_raster

    ids = split_tiles(demo_dir).get(split, ())
    if not ids:
        raise InputError(Path(demo_dir) / MANIFEST_FILE, f"no {split!r} tiles")
    arrays = [read_raster(Path(demo_dir) / "tiles" / "hr" / f"{t}.tif", band_names=CANONICAL_BANDS,
                          units="reflectance").array.astype(np.float64) for t in ids]
    return ids, np.stack(arrays)


def load_sources(source_dir: str | Path, landsat_dir: str | Path | None = None,
                 demo_dir: str | Path | None = None) -> list[SSLImage]:
    """The training images: S2 and Landsat-8 from ``source_dir`` (Landsat from ``landsat_dir`` or
    its ``landsat8/``) and, when ``demo_dir`` is given, the HR scene without its held-out tiles."""
    source_dir = Path(source_dir)
    ld = Path(landsat_dir) if landsat_dir is not None else source_dir / LANDSAT_DIR
    images = [load_sentinel2_patch(source_dir / S2_FILE), load_landsat8(ld)]
    if demo_dir is not None:
        images.append(load_demo_hr(demo_dir))
    return images


def band_statistics(images: list[SSLImage]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band mean and std of valid reflectance over the images where the band exists, each
    image weighted equally (a mixture of per-image distributions, whatever their pixel counts)."""
    means, stds = [], []
    for b in range(len(CANONICAL_BANDS)):
        per = [im.array[b][im.valid].astype(np.float64) for im in images if im.present[b]]
        m = [float(v.mean()) for v in per]
        var = [float(v.var()) for v in per]
        mu = float(np.mean(m))
        sd = float(np.sqrt(np.mean([vi + (mi - mu) ** 2 for mi, vi in zip(m, var, strict=True)])))
        means.append(round(mu, 6))
        stds.append(round(sd, 6))
    return tuple(means), tuple(stds)
