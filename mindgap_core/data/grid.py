"""Put a high-resolution raster on a grid nested exactly in a low-resolution (Sentinel-2) pixel grid.

The aligned HR grid has the LR raster's CRS, pixels ``scale`` times smaller than the LR pixels, and
its origin on an LR pixel corner, so that every LR pixel covers exactly ``scale x scale`` HR pixels.
Its extent is the overlap of the two footprints, snapped to whole LR pixels: ``snap="inward"`` (the
default) keeps only LR pixels fully inside the overlap, ``"outward"`` every LR pixel the overlap
touches (the HR pixels outside the HR footprint are then invalid).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from affine import Affine

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.types import GeoRaster

#: resampling names accepted for the HR data bands (masks always use nearest)
RESAMPLING_METHODS: tuple[str, ...] = (
    "nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average",
)
SNAP_MODES: tuple[str, ...] = ("inward", "outward")
_EPS = 1e-6  # tolerance, in LR pixels, when snapping bounds to the LR grid


def _pair_name(hr_name: str | Path, lr_name: str | Path) -> str:
    return f"{lr_name} + {hr_name}"


def _check_north_up(raster: GeoRaster, name: str | Path) -> None:
    t = raster.transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
        raise InputError(name, f"only north-up rasters are supported, got transform {tuple(t)[:6]}")


def lr_window_of_overlap(
    hr: GeoRaster,
    lr: GeoRaster,
    *,
    snap: str = "inward",
    hr_name: str | Path = "HR raster",
    lr_name: str | Path = "LR raster",
) -> tuple[int, int, int, int]:
    """``(row_off, col_off, rows, cols)`` of the LR pixels covered by the HR footprint.

    Raises :class:`InputError` naming both files when a CRS is missing or the footprints do not
    overlap by at least one (snapped) LR pixel.
    """
    from rasterio.warp import transform_bounds

    if snap not in SNAP_MODES:
        raise ConfigError(f"snap must be one of {SNAP_MODES}, got {snap!r}")
    for raster, name in ((hr, hr_name), (lr, lr_name)):
        if raster.crs is None:
            raise InputError(name, "has no CRS (georeferencing); cannot align the pair")
        _check_north_up(raster, name)
    try:
        left, bottom, right, top = transform_bounds(hr.crs, lr.crs, *hr.bounds, densify_pts=21)
    except Exception as exc:  # rasterio/PROJ errors: the CRS pair cannot be transformed
        raise InputError(_pair_name(hr_name, lr_name), f"cannot transform between CRSs ({exc})") from None
    t = lr.transform
    rows, cols = lr.shape
    # fractional LR pixel coordinates of the HR footprint (x right, y down)
    c_left, c_right = (left - t.c) / t.a, (right - t.c) / t.a
    r_top, r_bottom = (top - t.f) / t.e, (bottom - t.f) / t.e
    if snap == "inward":
        c0, c1 = math.ceil(c_left - _EPS), math.floor(c_right + _EPS)
        r0, r1 = math.ceil(r_top - _EPS), math.floor(r_bottom + _EPS)
    else:
        c0, c1 = math.floor(c_left + _EPS), math.ceil(c_right - _EPS)
        r0, r1 = math.floor(r_top + _EPS), math.ceil(r_bottom - _EPS)
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, cols), min(r1, rows)
    if c1 <= c0 or r1 <= r0:
        raise InputError(
            _pair_name(hr_name, lr_name),
            f"the rasters do not overlap by a whole LR pixel (HR footprint in LR CRS: "
            f"{left:.1f}, {bottom:.1f}, {right:.1f}, {top:.1f}; LR bounds: "
            + ", ".join(f"{v:.1f}" for v in lr.bounds)
            + ")",
        )
    return r0, c0, r1 - r0, c1 - c0


def crop(raster: GeoRaster, row_off: int, col_off: int, rows: int, cols: int) -> GeoRaster:
    """The sub-raster of a pixel window (a copy), with the transform moved to the window."""
    r_end, c_end = row_off + rows, col_off + cols
    if row_off < 0 or col_off < 0 or r_end > raster.shape[0] or c_end > raster.shape[1]:
        raise ValueError(f"window {(row_off, col_off, rows, cols)} outside raster of shape {raster.shape}")
    mask = None if raster.mask is None else raster.mask[row_off:r_end, col_off:c_end].copy()
    return raster.replace(
        array=raster.array[:, row_off:r_end, col_off:c_end].copy(),
        transform=raster.transform @ Affine.translation(col_off, row_off),
        mask=mask,
    )


def crop_to_grid(lr: GeoRaster, grid: GeoRaster) -> GeoRaster:
    """Crop ``lr`` to the extent of ``grid`` (an aligned HR raster whose corners lie on LR corners)."""
    t = lr.transform
    left, bottom, right, top = grid.bounds
    c0, c1 = (left - t.c) / t.a, (right - t.c) / t.a
    r0, r1 = (top - t.f) / t.e, (bottom - t.f) / t.e
    snapped = [round(v) for v in (c0, c1, r0, r1)]
    if any(abs(v - s) > 1e-3 for v, s in zip((c0, c1, r0, r1), snapped, strict=True)):
        raise ValueError(f"grid bounds {grid.bounds} are not on the LR pixel corners of {tuple(t)[:6]}")
    c0, c1, r0, r1 = snapped
    return crop(lr, r0, c0, r1 - r0, c1 - c0)


def align_pair(
    hr: GeoRaster,
    lr: GeoRaster,
    scale: int,
    resampling: str = "cubic",
    *,
    snap: str = "inward",
    hr_name: str | Path = "HR raster",
    lr_name: str | Path = "LR raster",
) -> tuple[GeoRaster, GeoRaster]:
    """``(lr_cropped, hr_aligned)``: both rasters on the common, nested grid of their overlap.

    ``hr`` is reprojected onto the HR grid nested in ``lr``'s pixel grid over the overlap: data bands
    use ``resampling``; invalid HR pixels are excluded from the interpolation (GDAL nodata handling)
    and the validity mask is reprojected with nearest; pixels outside the HR footprint are invalid.
    The aligned HR is float32 with invalid pixels set to 0 and ``mask`` set; ``lr`` is cropped to
    the same extent.

    Raises :class:`InputError` naming both files when a CRS is missing, the footprints do not overlap,
    the overlap holds no valid pixel in either raster (all nodata or all cloud), or no LR pixel is
    valid in both.
    """
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ConfigError(f"scale must be a positive integer, got {scale!r}")
    if resampling not in RESAMPLING_METHODS:
        raise ConfigError(f"resampling must be one of {RESAMPLING_METHODS}, got {resampling!r}")
    window = lr_window_of_overlap(hr, lr, snap=snap, hr_name=hr_name, lr_name=lr_name)
    hr_aligned = _reproject_onto_window(hr, lr, window, scale, resampling)
    lr_cropped = crop_to_grid(lr, hr_aligned)
    pair = _pair_name(hr_name, lr_name)
    if not lr_cropped.valid.any():
        raise InputError(pair, f"no valid pixel of {lr_name} in the overlap (all nodata or cloud)")
    if not hr_aligned.valid.any():
        raise InputError(pair, f"no valid pixel of {hr_name} in the overlap (all nodata or cloud)")
    if not combined_valid(lr_cropped, hr_aligned, scale).any():
        raise InputError(pair, "no pixel of the overlap is valid in both rasters (nodata or cloud)")
    return lr_cropped, hr_aligned


def _reproject_onto_window(
    hr: GeoRaster, lr: GeoRaster, window: tuple[int, int, int, int], scale: int, resampling: str
) -> GeoRaster:
    """``hr`` on the grid ``scale`` times finer than ``lr``'s pixel window ``(row, col, rows, cols)``."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    r0, c0, rows, cols = window
    dst_transform = lr.transform @ Affine.translation(c0, r0) @ Affine.scale(1.0 / scale)
    shape = (rows * scale, cols * scale)

    src = hr.array.astype(np.float32)
    src = np.where(hr.valid[None] & np.isfinite(src), src, np.nan).astype(np.float32)
    data = np.full((hr.array.shape[0], *shape), np.nan, dtype=np.float32)
    reproject(
        source=src, destination=data,
        src_transform=hr.transform, src_crs=hr.crs, src_nodata=np.nan,
        dst_transform=dst_transform, dst_crs=lr.crs, dst_nodata=np.nan,
        resampling=Resampling[resampling],
    )
    valid_src = hr.valid.astype(np.uint8) + 1  # 2 = valid, 1 = invalid, 0 = outside footprint
    valid = np.zeros(shape, dtype=np.uint8)
    reproject(
        source=valid_src, destination=valid,
        src_transform=hr.transform, src_crs=hr.crs, src_nodata=0,
        dst_transform=dst_transform, dst_crs=lr.crs, dst_nodata=0,
        resampling=Resampling.nearest,
    )
    mask = (valid == 2) & np.all(np.isfinite(data), axis=0)
    data = np.where(mask[None], data, 0.0).astype(np.float32)
    return hr.replace(array=data, transform=dst_transform, crs=lr.crs, mask=mask, nodata=None)


def combined_valid(lr: GeoRaster, hr: GeoRaster, scale: int) -> np.ndarray:
    """HR-resolution mask, True where the HR pixel and the LR pixel containing it are both valid."""
    lr_up = np.repeat(np.repeat(lr.valid, scale, axis=0), scale, axis=1)
    if lr_up.shape != hr.shape:
        raise ValueError(f"LR {lr.shape} x {scale} does not match HR {hr.shape}")
    return lr_up & hr.valid


def _blocks_of(shape: tuple[int, ...], scale: int) -> tuple[int, int]:
    """LR rows and cols of an HR (..., rows, cols) shape; ValueError when ``scale`` does not divide it."""
    rows, cols = shape[-2:]
    if rows % scale or cols % scale:
        raise ValueError(f"shape {tuple(shape[-2:])} is not a multiple of scale {scale}")
    return rows // scale, cols // scale


def downsample_area(array: np.ndarray, scale: int) -> np.ndarray:
    """Block mean of a (bands, rows, cols) or (rows, cols) array by an integer factor (rows/cols must
    be multiples of ``scale``): the pixel-aperture ("area") resampling, used for every HR -> LR
    averaging in MindGap.

    Computed in the array's floating type (integers: float64) by summing the ``scale x scale``
    pixels of each block in row-major order, then dividing: bit-identical to torch's CPU
    ``avg_pool2d`` on float32.
    """
    arr = np.asarray(array)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    lr_rows, lr_cols = _blocks_of(arr.shape, scale)
    blocks = arr.reshape(*arr.shape[:-2], lr_rows, scale, lr_cols, scale)
    total = np.zeros((*arr.shape[:-2], lr_rows, lr_cols), dtype=arr.dtype)
    for i in range(scale):
        for j in range(scale):
            total += blocks[..., :, i, :, j]
    return total / arr.dtype.type(scale * scale)


def downsample_valid(valid: np.ndarray, scale: int) -> np.ndarray:
    """LR-resolution mask: True where all ``scale x scale`` HR pixels are valid."""
    lr_rows, lr_cols = _blocks_of(valid.shape, scale)
    return valid.reshape(lr_rows, scale, lr_cols, scale).all(axis=(1, 3))
