"""Rasters as Leaflet image overlays: an RGB image on any projected grid → an RGBA PNG data URL on
Web Mercator (EPSG:3857) plus its latitude/longitude bounds.

Leaflet draws an ``ImageOverlay`` as an axis-aligned picture between two lat/lon corners on a Web
Mercator map, so the image is first warped to EPSG:3857 (nearest neighbour: display pixels stay data
pixels). Pixels outside the source or invalid in it get alpha 0. Small tiles are enlarged by an integer
factor first so the browser does not blur a 32 × 32 LR tile into mush; big rasters are decimated so
the data URL (re-sent on every Streamlit rerun) stays small (a photo-like scene may use lossy WebP).

Scalar maps (errors, uncertainty, LPIPS-Sat) are coloured with :func:`colourise` and a named ramp from
:data:`RAMPS`; the same ramp gives the CSS gradient of a legend drawn outside the map.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mindgap_core.errors import InputError

WEB_MERCATOR = "EPSG:3857"
WGS84 = "EPSG:4326"

#: colour ramps as hex stops (evenly spaced): perceptually ordered sequential ones and a diverging one
RAMPS: dict[str, tuple[str, ...]] = {
    # matplotlib's viridis at 10 evenly spaced points
    "viridis": (
        "#440154",
        "#482878",
        "#3e4989",
        "#31688e",
        "#26828e",
        "#1f9e89",
        "#35b779",
        "#6ece58",
        "#b5de2b",
        "#fde725",
    ),
    # matplotlib's inferno at 8 evenly spaced points (errors, uncertainty: dark = small)
    "inferno": ("#000004", "#280b53", "#65156e", "#9f2a63", "#d44842", "#f57d15", "#fac228", "#fcffa4"),
    # ColorBrewer RdBu (9 classes): red = negative, white = 0, blue = positive
    "rdbu": (
        "#b2182b",
        "#d6604d",
        "#f4a582",
        "#fddbc7",
        "#f7f7f7",
        "#d1e5f0",
        "#92c5de",
        "#4393c3",
        "#2166ac",
    ),
}
#: colour of tiles without a value
NO_VALUE_COLOUR = "#9e9e9e"


@dataclass(frozen=True)
class ImageLayer:
    """An image ready for ``folium.raster_layers.ImageOverlay``.

    ``url`` is a ``data:image/png;base64,...`` URL of an RGBA PNG on EPSG:3857; ``bounds`` is
    ``((south, west), (north, east))`` in degrees; ``size`` the PNG's (rows, cols).
    """

    name: str
    url: str
    bounds: tuple[tuple[float, float], tuple[float, float]]
    size: tuple[int, int]


def _hex_to_rgb(colour: str) -> tuple[int, int, int]:
    text = colour.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def _ramp(name: str) -> np.ndarray:
    if name not in RAMPS:
        raise KeyError(f"unknown colour ramp {name!r}; known: {sorted(RAMPS)}")
    return np.array([_hex_to_rgb(c) for c in RAMPS[name]], dtype=np.float64)


def ramp_rgb(fraction: np.ndarray, ramp: str) -> np.ndarray:
    """uint8 (..., 3) colours of ``fraction`` in [0, 1] (clipped) along ``ramp`` (linear between stops)."""
    stops = _ramp(ramp)
    t = np.clip(np.nan_to_num(np.asarray(fraction, dtype=np.float64), nan=0.0), 0.0, 1.0)
    pos = t * (len(stops) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(stops) - 1)
    w = (pos - lo)[..., None]
    return np.round(stops[lo] * (1 - w) + stops[hi] * w).astype(np.uint8)


def value_colour(value: float | None, vmin: float, vmax: float, ramp: str) -> str:
    """``#rrggbb`` of ``value`` on ``ramp`` spanning [vmin, vmax]; grey for a missing/non-finite value."""
    if value is None or not math.isfinite(value):
        return NO_VALUE_COLOUR
    span = vmax - vmin
    fraction = 0.5 if span <= 0 else (value - vmin) / span
    r, g, b = ramp_rgb(np.array(fraction), ramp).tolist()
    return f"#{r:02x}{g:02x}{b:02x}"


def ramp_css(ramp: str) -> str:
    """A CSS ``linear-gradient`` (left = low) of ``ramp`` for a legend outside the map."""
    return "linear-gradient(to right, " + ", ".join(RAMPS[ramp]) + ")"


def colourise(
    values: np.ndarray, vmin: float, vmax: float, ramp: str = "viridis"
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (rows, cols, 3) image, valid (rows, cols)) of a 2-D scalar map; non-finite = invalid."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"colourise needs a 2-D array, got shape {values.shape}")
    valid = np.isfinite(values)
    span = vmax - vmin
    fraction = np.full(values.shape, 0.5) if span <= 0 else (values - vmin) / span
    image = ramp_rgb(fraction, ramp)
    image[~valid] = 0
    return image, valid


def robust_range(
    arrays: Sequence[np.ndarray], percentiles: tuple[float, float] = (2.0, 98.0), *, symmetric: bool = False
) -> tuple[float, float]:
    """One (low, high) over the finite values of every array: the same stretch for all of them."""
    finite = [np.asarray(a, dtype=np.float64) for a in arrays]
    values = np.concatenate([a[np.isfinite(a)].ravel() for a in finite]) if finite else np.array([])
    if values.size == 0:
        return (0.0, 1.0)
    if symmetric:
        bound = float(np.percentile(np.abs(values), percentiles[1]))
        bound = bound if bound > 0 else 1.0
        return (-bound, bound)
    low, high = (float(v) for v in np.percentile(values, percentiles))
    return (low, high if high > low else low + 1e-6)


def enlarge(image: np.ndarray, valid: np.ndarray | None, transform, min_side: int):
    """Nearest-neighbour enlargement by the smallest integer factor giving ``min(rows, cols) >= min_side``.

    Returns (image, valid, transform) with the transform's pixel size divided by the factor.
    """
    from affine import Affine

    rows, cols = image.shape[:2]
    factor = max(1, math.ceil(min_side / max(1, min(rows, cols))))
    if factor == 1:
        return image, valid, transform
    big = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    big_valid = None if valid is None else np.repeat(np.repeat(valid, factor, axis=0), factor, axis=1)
    return big, big_valid, transform * Affine.scale(1.0 / factor)


def decimate(image: np.ndarray, valid: np.ndarray | None, transform, max_side: int):
    """Every k-th pixel so that ``max(rows, cols) <= max_side`` (k integer).

    Returns (image, valid, transform) with the transform's pixel size multiplied by k.
    """
    from affine import Affine

    rows, cols = image.shape[:2]
    step = max(1, math.ceil(max(rows, cols) / max_side))
    if step == 1:
        return image, valid, transform
    small = image[::step, ::step]
    small_valid = None if valid is None else valid[::step, ::step]
    return small, small_valid, transform * Affine.scale(step)


def warp_to_web_mercator(
    image: np.ndarray,
    transform,
    crs,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[tuple[float, float], tuple[float, float]]]:
    """(RGBA uint8 (rows, cols, 4) on EPSG:3857, ((south, west), (north, east))) of an RGB image.

    ``image`` is uint8 (rows, cols, 3) on the grid ``transform``/``crs``; ``valid`` (rows, cols) marks
    pixels to show (alpha 255), others and those outside the source get alpha 0.
    """
    from rasterio.crs import CRS
    from rasterio.warp import Resampling, calculate_default_transform, reproject
    from rasterio.warp import transform as warp_points

    if crs is None:
        raise InputError("raster", "has no coordinate reference system: it cannot be placed on a map")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (rows, cols, 3) image, got {image.dtype} {image.shape}")
    rows, cols = image.shape[:2]
    src_crs = CRS.from_user_input(crs)
    dst_crs = CRS.from_user_input(WEB_MERCATOR)
    left, top = transform @ (0, 0)
    right, bottom = transform @ (cols, rows)
    dst_transform, width, height = calculate_default_transform(
        src_crs,
        dst_crs,
        cols,
        rows,
        left=min(left, right),
        bottom=min(bottom, top),
        right=max(left, right),
        top=max(bottom, top),
    )
    bands = np.concatenate(
        [
            image.transpose(2, 0, 1),
            (np.ones((1, rows, cols)) if valid is None else valid[None]).astype(np.uint8) * 255,
        ]
    )
    out = np.zeros((4, height, width), dtype=np.uint8)
    reproject(
        bands,
        out,
        src_transform=transform,
        src_crs=src_crs,
        dst_transform=dst_transform,
        dst_crs=dst_crs,
        resampling=Resampling.nearest,
        src_nodata=None,
        dst_nodata=0,
    )
    west_m, north_m = dst_transform @ (0, 0)
    east_m, south_m = dst_transform @ (width, height)
    lons, lats = warp_points(dst_crs, WGS84, [west_m, east_m], [south_m, north_m])
    bounds = ((float(lats[0]), float(lons[0])), (float(lats[1]), float(lons[1])))
    return out.transpose(1, 2, 0).copy(), bounds


def image_data_url(rgba: np.ndarray, fmt: str = "png", quality: int = 85) -> str:
    """A ``data:`` URL of a uint8 (rows, cols, 3 or 4) image: lossless PNG (``fmt="png"``), or lossy
    WebP with alpha (``"webp"``, ~6x smaller for a photo-like scene; every current browser reads it)."""
    from PIL import Image

    if fmt not in ("png", "webp"):
        raise ValueError(f"fmt must be 'png' or 'webp', got {fmt!r}")
    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(rgba))
    if fmt == "png":
        image.save(buffer, format="PNG", optimize=True)
    else:
        image.save(buffer, format="WEBP", quality=quality, method=4)
    return f"data:image/{fmt};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_layer(
    name: str,
    image: np.ndarray,
    transform,
    crs,
    valid: np.ndarray | None = None,
    *,
    min_side: int = 256,
    max_side: int = 1024,
    fmt: str = "png",
) -> ImageLayer:
    """An :class:`ImageLayer` of a uint8 RGB image on ``transform``/``crs``.

    Small images are enlarged (nearest) to at least ``min_side`` pixels, large ones decimated to at
    most ``max_side``, then warped to EPSG:3857 and encoded as ``fmt`` (see :func:`image_data_url`).
    """
    image, valid, transform = enlarge(image, valid, transform, min_side)
    image, valid, transform = decimate(image, valid, transform, max_side)
    rgba, bounds = warp_to_web_mercator(image, transform, crs, valid)
    return ImageLayer(name=name, url=image_data_url(rgba, fmt), bounds=bounds, size=rgba.shape[:2])
