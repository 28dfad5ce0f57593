"""Build real cross-sensor LR/HR tile pairs from a Sentinel-2 and a PlanetScope acquisition.

Steps of :func:`build_pairs`:

1. read both rasters as reflectance with the canonical bands (blue, green, red, nir) and their masks
   (S2 SCL, PlanetScope UDM2, nodata): files, products or STAC items (:mod:`mindgap_core.io.stac`).
   The HR is read first and the S2 only over the HR footprint, so a whole S2 tile is never held;
   memory grows with the HR scene, and a scene too large for the memory budget is refused before any
   pixel is read (:func:`~mindgap_core.io.memory.check_fits`, :data:`PAIRS_BYTES_PER_VALUE`);
2. reproject the HR onto the grid nested in the S2 pixel grid over the overlap (:mod:`.grid`);
3. combine the masks (S2 valid and HR valid and inside the HR footprint);
4. estimate the residual sub-pixel shift of the HR (area-downsampled to LR) relative to the S2, for the
   scene and per tile (:mod:`.coregister`); with ``correct_shift`` the scene shift is removed from the
   HR (bicubic) before tiling, and the per-tile residuals are recorded;
5. cut tiles, keep those with at least ``min_valid`` valid pixels, assign spatial block splits;
6. write ``lr/<tile_id>.tif``, ``hr/<tile_id>.tif`` (COGs, float32 reflectance, combined mask),
   with ``synthetic=METHOD`` also ``lr_synthetic/<tile_id>.tif`` (the HR tile degraded by a synthetic
   method: the "synthetic" test domain on the same HR tiles and splits, what ``mindgap gap`` compares
   the real pairs with), and then ``manifest.parquet`` (:mod:`.manifest`), each atomically. The
   manifest is written last, and removed first when rebuilding a folder: its presence means the
   folder is complete.

:func:`plan_pairs` does steps 1-5 without writing anything (every input problem surfaces there),
:func:`write_pairs` step 6; :func:`build_pairs` runs both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mindgap_core.data.coregister import UNKNOWN_SHIFT, Shift, apply_shift, estimate_shift, shifted_valid
from mindgap_core.data.grid import (
    align_pair,
    combined_valid,
    crop,
    downsample_area,
    downsample_valid,
)
from mindgap_core.data.manifest import MANIFEST_NAME, PairRecord, params_to_json, write_manifest
from mindgap_core.data.splits import DEFAULT_FRACTIONS, assign_block_splits, check_fractions
from mindgap_core.data.tiles import Tile, check_tiling, make_tiles
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.types import CANONICAL_BANDS, GeoRaster, ProgressFn, canonical_band, no_progress

if TYPE_CHECKING:
    from mindgap_core.io.geotiff import Footprint, RasterInfo

DOMAIN = "real_cross_sensor"
#: domain of the optional synthetic LR tiles (HR tiles degraded by a known operator)
SYNTHETIC_DOMAIN = "synthetic"
SYNTHETIC_FOLDER = "lr_synthetic"
#: peak bytes of pair building per HR value (pixel x band) of the HR scene, measured by
#: benchmarks/memory.py (54 with shift correction, numpy allocations), rounded up
PAIRS_BYTES_PER_VALUE: int = 64
_TILE_FILE = re.compile(r"^r\d+c\d+\.tif$")
_PLANET_NAME = re.compile(r"(AnalyticMS|_3B_|udm2|_SR_8b|_SR_harmonized)", re.IGNORECASE)


# ----------------------------------------------------------------------------------------- reading
def _canonical_names(band_names: tuple[str, ...]) -> tuple[str, ...] | None:
    """Band names mapped to canonical ones (S2 ids B02/B03/B04/B08 too) when all four are present."""
    names = tuple(canonical_band(n) for n in band_names)
    if set(CANONICAL_BANDS) <= set(names) and len(set(names)) == len(names):
        return names
    return None


def _with_canonical_bands(raster: GeoRaster, path: str | Path) -> GeoRaster:
    """Name/order the bands canonically: by name when the file names them (canonical names or
    Sentinel-2 ids, any order), else by position (blue, green, red, nir)."""
    names = _canonical_names(raster.band_names)
    if names is not None:
        return raster.replace(band_names=names).select(CANONICAL_BANDS)
    if len(raster.band_names) == len(CANONICAL_BANDS):
        return raster.replace(band_names=CANONICAL_BANDS)
    raise InputError(
        path,
        f"has {len(raster.band_names)} bands {raster.band_names}; expected 4 reflectance bands in "
        f"the order {', '.join(CANONICAL_BANDS)}",
    )


def _require(path: str | Path) -> str | Path:
    from mindgap_core.io.geotiff import is_remote

    if is_remote(path):
        return str(path)
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file or folder")
    return p


def looks_like_sentinel2_product(path: Path) -> bool:
    """A .SAFE folder / zip or a per-band folder: read with :func:`read_sentinel2`."""
    return path.is_dir() or path.suffix.lower() in (".safe", ".zip")


def looks_like_planet_product(path: Path) -> bool:
    """A PlanetScope product file (name like ``..._3B_AnalyticMS_SR...``, or a sibling ``*_udm2*``
    mask): read with :func:`read_planetscope`, which applies DN / 10000 and the UDM2 mask."""
    from mindgap_core.io.planetscope import find_udm2

    return bool(_PLANET_NAME.search(path.name)) or find_udm2(path) is not None


def read_lr_raster(path: str | Path, footprint: Footprint | None = None) -> GeoRaster:
    """A Sentinel-2 acquisition (STAC item, .SAFE / per-band folder) or a 4-band reflectance GeoTIFF;
    only the part covering ``footprint`` when given."""
    from mindgap_core.io.geotiff import read_raster
    from mindgap_core.io.sentinel2 import read_sentinel2
    from mindgap_core.io.stac import looks_like_stac_item, read_sentinel2_item

    p = _require(path)
    if looks_like_stac_item(p):
        return _with_canonical_bands(read_sentinel2_item(p, footprint=footprint), p)
    if isinstance(p, Path) and looks_like_sentinel2_product(p):
        return _with_canonical_bands(read_sentinel2(p, footprint=footprint), p)
    return read_raster(p, units="reflectance", require_crs=True, footprint=footprint)


def read_hr_raster(path: str | Path) -> GeoRaster:
    """A PlanetScope STAC item or product (with its UDM2 when found) or a 4-band reflectance GeoTIFF."""
    from mindgap_core.io.geotiff import read_raster
    from mindgap_core.io.planetscope import read_planetscope
    from mindgap_core.io.stac import looks_like_stac_item, read_planetscope_item

    p = _require(path)
    if looks_like_stac_item(p):
        return _with_canonical_bands(read_planetscope_item(p), p)
    if looks_like_planet_product(Path(p)):
        return _with_canonical_bands(read_planetscope(p), p)
    return read_raster(p, units="reflectance", require_crs=True)


def hr_header(path: str | Path) -> RasterInfo:
    """Size, bands and grid of the HR raster (of a STAC item's surface-reflectance asset), no pixels."""
    from mindgap_core.io.geotiff import WindowReader
    from mindgap_core.io.stac import load_item, looks_like_stac_item, planetscope_assets

    href = _require(path)
    if looks_like_stac_item(href):
        href, _ = planetscope_assets(load_item(href), href)
    with WindowReader.of(href) as reader:
        return reader.info


def _matched_bands(
    lr: GeoRaster, hr: GeoRaster, lr_path: str | Path, hr_path: str | Path
) -> tuple[GeoRaster, GeoRaster]:
    n_lr, n_hr = len(lr.band_names), len(hr.band_names)
    both_named = _canonical_names(lr.band_names) is not None and _canonical_names(hr.band_names) is not None
    if n_lr != n_hr and not both_named:
        raise InputError(
            f"{lr_path} + {hr_path}",
            f"band counts differ: {_name(lr_path)} has {n_lr} bands {lr.band_names}, "
            f"{_name(hr_path)} has {n_hr} bands {hr.band_names}; both need blue, green, red, nir",
        )
    return _with_canonical_bands(lr, lr_path), _with_canonical_bands(hr, hr_path)


# --------------------------------------------------------------------------------------- helpers
def _name(path: str | Path) -> str:
    """The last component of a path or URL."""
    return str(path).rstrip("/").rsplit("/", 1)[-1]


def _as_utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def dt_days(a: datetime | None, b: datetime | None) -> float:
    """``|a - b|`` in days (naive times are taken as UTC); NaN when either is unknown."""
    if a is None or b is None:
        return float("nan")
    return abs((_as_utc(a) - _as_utc(b)).total_seconds()) / 86400.0


def crs_string(crs: object) -> str:
    """``"EPSG:n"`` when the CRS has an EPSG code, else its WKT."""
    epsg = crs.to_epsg()  # type: ignore[attr-defined]
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()  # type: ignore[attr-defined]


def pair_shift(lr: GeoRaster, hr: GeoRaster, valid_hr: np.ndarray, scale: int) -> Shift:
    """Displacement of the HR (area-downsampled to LR) relative to the LR, in LR pixels."""
    valid_lr = downsample_valid(valid_hr, scale)
    if not valid_lr.any():
        return UNKNOWN_SHIFT
    return estimate_shift(lr.array, downsample_area(hr.array, scale), mask=valid_lr)


def shift_raster(raster: GeoRaster, dx: float, dy: float) -> GeoRaster:
    """Move the raster's content by ``(dx, dy)`` pixels (bicubic), invalidating pixels without
    support. Invalid pixels are filled with the band mean first so they do not ring into valid ones."""
    valid = raster.valid
    arr = raster.array.astype(np.float64)
    means = np.array([band[valid].mean() if valid.any() else 0.0 for band in arr])
    filled = np.where(valid[None], arr, means[:, None, None])
    moved = apply_shift(filled, dx, dy, method="bicubic")
    mask = shifted_valid(valid, dx, dy)
    return raster.replace(array=np.where(mask[None], moved, 0.0).astype(np.float32), mask=mask)


@dataclass(frozen=True)
class AlignedScene:
    """An aligned pair ready to tile: LR cropped to the overlap, HR on the nested grid."""

    lr: GeoRaster
    hr: GeoRaster
    valid_hr: np.ndarray  # combined validity at HR resolution
    scene_shift: Shift  # as measured before any correction
    residual_shift: Shift  # after correction (== scene_shift when not corrected)
    corrected: bool


def align_scene(
    lr_raw: GeoRaster,
    hr_raw: GeoRaster,
    scale: int,
    *,
    correct_shift: bool = False,
    resampling: str = "cubic",
    lr_name: str | Path = "LR raster",
    hr_name: str | Path = "HR raster",
) -> AlignedScene:
    """Align, combine masks, measure (and optionally remove) the scene-level shift."""
    lr, hr = align_pair(hr_raw, lr_raw, scale, resampling, hr_name=hr_name, lr_name=lr_name)
    valid_hr = combined_valid(lr, hr, scale)
    scene = pair_shift(lr, hr, valid_hr, scale)
    residual = scene
    corrected = bool(correct_shift and scene.is_valid)
    if corrected:
        hr = shift_raster(hr, -scene.dx * scale, -scene.dy * scale)
        valid_hr = combined_valid(lr, hr, scale)
        residual = pair_shift(lr, hr, valid_hr, scale)
    lr_valid = downsample_valid(valid_hr, scale)
    return AlignedScene(
        lr=lr.replace(mask=lr_valid), hr=hr.replace(mask=valid_hr), valid_hr=valid_hr,
        scene_shift=scene, residual_shift=residual, corrected=corrected,
    )


def _prepare_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / MANIFEST_NAME).unlink(missing_ok=True)  # folder is incomplete from now on
    except OSError as exc:
        raise InputError(out_dir, f"cannot write here ({exc.strerror or exc})") from None


def _remove_stale_tiles(out_dir: Path, keep: set[str], synthetic: bool) -> None:
    """Remove tile files of an earlier build that this one did not write."""
    for sub in ("lr", "hr", SYNTHETIC_FOLDER):
        kept = keep if sub != SYNTHETIC_FOLDER or synthetic else set()
        folder = out_dir / sub
        if folder.is_dir():
            for f in folder.iterdir():
                if _TILE_FILE.match(f.name) and f.stem not in kept:
                    f.unlink()


def _nan_to_none(v: float) -> float | None:
    return None if not np.isfinite(v) else round(float(v), 6)


# ----------------------------------------------------------------------------------------- build
@dataclass(frozen=True)
class PairPlan:
    """Everything :func:`write_pairs` needs, computed and validated without writing anything."""

    scene: AlignedScene
    tiles: tuple[Tile, ...]
    splits: tuple[tuple[str, str], ...]  # (block_id, split) per tile
    lr_path: str | Path
    hr_path: str | Path
    crs: str
    dt_days: float
    seed: int
    params: dict[str, object]
    synthetic: str | None = None  #: synthetic degradation of the HR tiles, written as a second domain


def plan_pairs(
    s2_path: str | Path,
    ps_path: str | Path,
    *,
    scale: int,
    tile_size: int = 64,
    min_valid: float = 0.9,
    block_size: int = 2,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    correct_shift: bool = False,
    seed: int = 0,
    resampling: str = "cubic",
    synthetic: str | None = None,
) -> PairPlan:
    """Read, align, co-register, tile and split (steps 1-5 of the module docstring); no writes.

    ``scale`` is the number of HR pixels per S2 pixel (per axis); the HR is resampled to
    ``S2 pixel size / scale``. ``tile_size`` is the HR tile side (a multiple of ``scale``); tiles
    keep at least ``min_valid`` valid pixels; splits are assigned by blocks of ``block_size`` x
    ``block_size`` tiles in ``fractions`` (train, val, test) with ``seed``. ``synthetic``: a synthetic
    degradation (bicubic, gaussian_mtf, opensr_like) whose LR tiles of the HR tiles are written too.

    Raises :class:`InputError` / :class:`ConfigError` naming the file(s) or values on bad input.
    """
    check_tiling(tile_size, scale)
    fractions = check_fractions(fractions)
    if synthetic is not None:
        from mindgap_core.degrade.synthetic import SYNTHETIC_DEGRADATIONS

        if synthetic not in SYNTHETIC_DEGRADATIONS:
            raise ConfigError(f"unknown synthetic degradation {synthetic!r}; known: "
                              f"{', '.join(SYNTHETIC_DEGRADATIONS)}")
    if not 0.0 <= min_valid <= 1.0:
        raise ConfigError(f"min_valid must be in [0, 1], got {min_valid!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise ConfigError(f"block size must be a positive integer, got {block_size!r}")
    from mindgap_core.io.geotiff import Footprint
    from mindgap_core.io.memory import check_fits

    lr_path, hr_path = _source(s2_path), _source(ps_path)
    info = hr_header(hr_path)
    check_fits(hr_path, info.rows * info.cols * info.count * PAIRS_BYTES_PER_VALUE,
               f"building pairs over the HR scene of {info.rows} x {info.cols} pixels x {info.count} bands",
               "cut the HR scene into parts (e.g. gdal_translate -srcwin) and build pairs from each")
    hr_read = read_hr_raster(hr_path)
    lr_read = read_lr_raster(lr_path, footprint=Footprint.of(hr_read, hr_path))
    lr_raw, hr_raw = _matched_bands(lr_read, hr_read, lr_path, hr_path)
    scene = align_scene(
        lr_raw, hr_raw, scale, correct_shift=correct_shift, resampling=resampling,
        lr_name=lr_path, hr_name=hr_path,
    )
    tiles = make_tiles(scene.valid_hr, scene.hr.transform, tile_size, scale, min_valid=min_valid)
    if not tiles:
        rows, cols = scene.valid_hr.shape
        if rows < tile_size or cols < tile_size:
            problem = (f"the overlap ({rows}x{cols} HR pixels) is smaller than one {tile_size}x{tile_size} "
                       "tile; choose a smaller --tile")
        else:
            problem = (f"no {tile_size}x{tile_size} HR tile has at least {min_valid:.0%} valid pixels "
                       f"(overlap {rows}x{cols} HR pixels, {scene.valid_hr.mean():.0%} valid); lower "
                       "--min-valid or --tile")
        raise InputError(f"{lr_path} + {hr_path}", problem)
    splits = assign_block_splits([t.row for t in tiles], [t.col for t in tiles], block_size, fractions, seed)
    params = {
        "acquired_hr": hr_raw.acquired.isoformat() if hr_raw.acquired else None,
        "acquired_lr": lr_raw.acquired.isoformat() if lr_raw.acquired else None,
        "block_size": block_size,
        "correction": "scene_bicubic" if scene.corrected else "none",
        "fractions": list(fractions),
        "hr_resolution": scene.hr.resolution,
        "lr_resolution": scene.lr.resolution,
        "min_valid": min_valid,
        "resampling": resampling,
        "scene_shift_lr": [_nan_to_none(scene.scene_shift.dx), _nan_to_none(scene.scene_shift.dy)],
        "scene_shift_peak": _nan_to_none(scene.scene_shift.peak),
        "scene_residual_shift_lr": [
            _nan_to_none(scene.residual_shift.dx), _nan_to_none(scene.residual_shift.dy)
        ],
        "tile_size_lr": tile_size // scale,
    }
    return PairPlan(
        scene=scene, tiles=tuple(tiles), splits=tuple(splits), lr_path=lr_path, hr_path=hr_path,
        crs=crs_string(scene.lr.crs), dt_days=dt_days(lr_raw.acquired, hr_raw.acquired), seed=seed,
        params=params, synthetic=synthetic,
    )


def _source(path: str | Path) -> str | Path:
    """URLs stay strings (``Path`` would fold their ``//``); everything else is a path."""
    from mindgap_core.io.geotiff import is_remote

    return str(path) if is_remote(path) else Path(path)


def check_out_dir(out_dir: str | Path) -> Path:
    """Raise :class:`InputError` when ``out_dir`` cannot be the output folder: it exists and is not a
    folder, or it cannot be created or written (:func:`check_writable`; nothing is created)."""
    from mindgap_core.io.atomic import check_writable

    return check_writable(out_dir, folder=True)


def write_pairs(plan: PairPlan, out_dir: str | Path, *, on_progress: ProgressFn = no_progress) -> Path:
    """Write the planned tiles and then the manifest into ``out_dir`` (step 6); returns the manifest
    path. ``on_progress(done, total)`` counts tiles, plus one for the manifest."""
    from mindgap_core.io.geotiff import write_cog

    out = check_out_dir(out_dir)
    _prepare_out_dir(out)
    total = len(plan.tiles) + 1
    on_progress(0, total)
    records: list[PairRecord] = []
    for i, (tile, (block, split)) in enumerate(zip(plan.tiles, plan.splits, strict=True)):
        records.extend(_write_tile(tile, block, split, plan, out, write_cog))
        on_progress(i + 1, total)
    _remove_stale_tiles(out, {t.tile_id for t in plan.tiles}, plan.synthetic is not None)
    manifest = write_manifest(records, out / MANIFEST_NAME)
    on_progress(total, total)
    return manifest


def build_pairs(
    s2_path: str | Path,
    ps_path: str | Path,
    *,
    out_dir: str | Path,
    on_progress: ProgressFn = no_progress,
    **options: Any,
) -> Path:
    """Cut real S2 (LR) / PlanetScope (HR) tile pairs into ``out_dir``; returns the manifest path.

    ``options`` are those of :func:`plan_pairs` (``scale`` is required: the number of HR pixels per
    S2 pixel per axis; the HR is resampled to ``S2 pixel size / scale``). ``plan_pairs`` then
    ``write_pairs``: every input problem raises :class:`InputError` / :class:`ConfigError` naming the
    file(s) or values before anything is written.
    """
    check_out_dir(out_dir)
    return write_pairs(plan_pairs(s2_path, ps_path, **options), out_dir, on_progress=on_progress)


def _write_tile(tile: Tile, block: str, split: str, plan: PairPlan, out: Path, write_cog) -> list[PairRecord]:
    """Write one tile's LR and HR (and synthetic LR) COGs; their manifest records."""
    lr_tile = crop(plan.scene.lr, *tile.lr_window)
    hr_tile = crop(plan.scene.hr, *tile.hr_window)
    shift = pair_shift(lr_tile, hr_tile, hr_tile.valid, tile.scale)
    lr_rel, hr_rel = f"lr/{tile.tile_id}.tif", f"hr/{tile.tile_id}.tif"
    write_cog(lr_tile, out / lr_rel)
    write_cog(hr_tile, out / hr_rel)
    left, bottom, right, top = tile.bounds
    real = PairRecord(
        pair_id=f"{DOMAIN}/{tile.tile_id}", tile_id=tile.tile_id, domain=DOMAIN, split=split,
        block_id=block, row=tile.row, col=tile.col, lr_path=lr_rel, hr_path=hr_rel,
        scale=tile.scale, tile_size_hr=tile.size_hr, crs=plan.crs,
        hr_left=float(left), hr_bottom=float(bottom), hr_right=float(right), hr_top=float(top),
        dt_days=plan.dt_days, shift_x_lr=shift.dx, shift_y_lr=shift.dy,
        shift_corrected=plan.scene.corrected, valid_fraction=tile.valid_fraction,
        source_lr=str(plan.lr_path), source_hr=str(plan.hr_path), degradation="",
        params_json=params_to_json({**plan.params, "shift_peak": _nan_to_none(shift.peak)}),
        seed=plan.seed,
    )
    if plan.synthetic is None:
        return [real]
    from dataclasses import replace

    from mindgap_core.degrade.apply import degrade_raster

    synthetic, record = degrade_raster(hr_tile, plan.synthetic, tile.scale, seed=plan.seed, source=hr_rel)
    syn_rel = f"{SYNTHETIC_FOLDER}/{tile.tile_id}.tif"
    write_cog(synthetic, out / syn_rel)
    syn_shift = pair_shift(synthetic, hr_tile, hr_tile.valid, tile.scale)
    return [real, replace(
        real, pair_id=f"{SYNTHETIC_DOMAIN}/{tile.tile_id}", domain=SYNTHETIC_DOMAIN, lr_path=syn_rel,
        dt_days=0.0, shift_x_lr=syn_shift.dx, shift_y_lr=syn_shift.dy, shift_corrected=False,
        source_lr=f"synthetic ({plan.synthetic}) from {plan.hr_path}", degradation=plan.synthetic,
        params_json=params_to_json({**record, "shift_peak": _nan_to_none(syn_shift.peak)}),
    )]
