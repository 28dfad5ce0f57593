"""Raster → Web Mercator RGBA overlay: geometry, alpha, encodings, colour ramps."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from affine import Affine
from PIL import Image
from rasterio.warp import transform_bounds

from mindgap_core.errors import InputError
from mindgap_core.viz.overlays import (
    NO_VALUE_COLOUR,
    RAMPS,
    colourise,
    decimate,
    enlarge,
    image_data_url,
    image_layer,
    ramp_css,
    robust_range,
    value_colour,
    warp_to_web_mercator,
)

UTM = "EPSG:32618"
TRANSFORM = Affine(5.0, 0.0, 792988.0, 0.0, -5.0, 2050382.0)  # the demo scene's grid


def _decode(url: str) -> np.ndarray:
    header, data = url.split(",", 1)
    assert header in ("data:image/png;base64", "data:image/webp;base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def _quadrants(rows: int = 64, cols: int = 64) -> np.ndarray:
    image = np.zeros((rows, cols, 3), np.uint8)
    image[: rows // 2, : cols // 2] = (255, 0, 0)  # north-west red
    image[rows // 2 :, cols // 2 :] = (0, 0, 255)  # south-east blue
    return image


def test_warp_bounds_and_orientation() -> None:
    rgba, ((south, west), (north, east)) = warp_to_web_mercator(_quadrants(), TRANSFORM, UTM)
    w, s, e, n = transform_bounds(UTM, "EPSG:4326", 792988.0, 2050382.0 - 320, 792988.0 + 320, 2050382.0)
    # the warped image's box is the tile's geographic box to within a pixel (5 m ~ 4.5e-5 deg)
    assert max(abs(w - west), abs(east - e), abs(s - south), abs(north - n)) < 5e-5
    assert west < east and south < north
    rows, cols = rgba.shape[:2]
    nw = rgba[rows // 4, cols // 4]
    se = rgba[3 * rows // 4, 3 * cols // 4]
    assert tuple(nw) == (255, 0, 0, 255) and tuple(se) == (0, 0, 255, 255)
    assert (rgba[..., 3] == 255).mean() > 0.9  # UTM -> 3857 rotates a little: thin transparent corners


def test_invalid_pixels_are_transparent() -> None:
    valid = np.ones((64, 64), bool)
    valid[:, :32] = False
    rgba, _ = warp_to_web_mercator(_quadrants(), TRANSFORM, UTM, valid)
    rows, cols = rgba.shape[:2]
    assert rgba[rows // 2, cols // 4, 3] == 0 and rgba[rows // 2, 3 * cols // 4, 3] == 255


def test_no_crs_or_wrong_image_is_refused() -> None:
    with pytest.raises(InputError, match="no coordinate reference system"):
        warp_to_web_mercator(_quadrants(), TRANSFORM, None)
    with pytest.raises(ValueError, match="uint8"):
        warp_to_web_mercator(_quadrants().astype(np.float32), TRANSFORM, UTM)


def test_enlarge_and_decimate_keep_the_footprint() -> None:
    image = _quadrants(32, 32)
    big, valid, t = enlarge(image, np.ones((32, 32), bool), Affine(10, 0, 0, 0, -10, 320), 256)
    assert big.shape == (256, 256, 3) and valid.shape == (256, 256)
    assert t @ (256, 256) == Affine(10, 0, 0, 0, -10, 320) @ (32, 32)
    np.testing.assert_array_equal(big[::8, ::8], image)  # nearest neighbour: data pixels stay pixels
    small, _, t2 = decimate(np.zeros((1000, 500, 3), np.uint8), None, Affine(1, 0, 0, 0, -1, 0), 256)
    assert small.shape == (250, 125, 3) and t2.a == 4


def test_data_urls_round_trip() -> None:
    rgba = np.dstack([_quadrants(), np.full((64, 64), 200, np.uint8)])
    np.testing.assert_array_equal(_decode(image_data_url(rgba)), rgba)
    webp = _decode(image_data_url(rgba, "webp"))
    assert webp.shape == rgba.shape and np.abs(webp.astype(int) - rgba).mean() < 8
    with pytest.raises(ValueError):
        image_data_url(rgba, "gif")


def test_image_layer_is_a_small_png_on_the_tile() -> None:
    layer = image_layer("LR", _quadrants(32, 32), Affine(10, 0, 792988, 0, -10, 2050382), UTM)
    assert layer.name == "LR" and layer.url.startswith("data:image/png;base64,")
    assert min(layer.size) >= 256 and _decode(layer.url).shape[2] == 4


def test_colour_ramps_and_legend() -> None:
    image, valid = colourise(np.array([[0.0, 1.0], [np.nan, 0.5]]), 0.0, 1.0, "viridis")
    assert tuple(image[0, 0]) == (0x44, 0x01, 0x54) and tuple(image[0, 1]) == (0xFD, 0xE7, 0x25)
    assert valid.tolist() == [[True, True], [False, True]] and tuple(image[1, 0]) == (0, 0, 0)
    assert value_colour(None, 0, 1, "viridis") == NO_VALUE_COLOUR
    assert value_colour(float("nan"), 0, 1, "viridis") == NO_VALUE_COLOUR
    assert value_colour(-5.0, 0, 1, "rdbu") == RAMPS["rdbu"][0]  # clipped to the ends
    assert value_colour(0.0, -1, 1, "rdbu") == RAMPS["rdbu"][4]  # zero is white on the diverging ramp
    assert ramp_css("inferno").startswith("linear-gradient(to right, #000004")
    with pytest.raises(KeyError):
        value_colour(0.5, 0, 1, "jet")


def test_robust_range_is_shared_and_symmetric_when_asked() -> None:
    a, b = np.linspace(0, 1, 101), np.linspace(-3, 0, 101)
    low, high = robust_range([a, b])
    assert low == pytest.approx(np.percentile(np.concatenate([a, b]), 2))
    assert high == pytest.approx(np.percentile(np.concatenate([a, b]), 98))
    lo, hi = robust_range([a, b], symmetric=True)
    assert lo == -hi and hi == pytest.approx(np.percentile(np.abs(np.concatenate([a, b])), 98))
    assert robust_range([np.array([np.nan])]) == (0.0, 1.0)
