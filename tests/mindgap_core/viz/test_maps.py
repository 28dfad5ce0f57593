"""Folium map builders: only local JS/CSS, no web basemap shown by default, escaped tooltips, the
grid's geometry and colours, the swipe map's panes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import folium
import folium.plugins
import numpy as np
import pytest
from affine import Affine
from rasterio.warp import transform_bounds

from mindgap_core.data import catalog
from mindgap_core.data.manifest import read_manifest
from mindgap_core.viz import maps as vmaps
from mindgap_core.viz.overlays import NO_VALUE_COLOUR, RAMPS, image_layer

REPO = Path(__file__).resolve().parents[3]
MANIFEST = REPO / "data" / "demo" / "manifest.parquet"


@pytest.fixture(scope="module")
def grid():
    table = read_manifest(MANIFEST)
    return catalog.tile_grid(table), str(table["crs"].iloc[0])


def _layer(name: str, colour: tuple[int, int, int], x0: float = 792988.0) -> object:
    image = np.zeros((32, 32, 3), np.uint8) + np.array(colour, np.uint8)
    return image_layer(name, image, Affine(10, 0, x0, 0, -10, 2050382), "EPSG:32618")


def _assets(element) -> tuple[list[str], list[str]]:
    """Every default_js/default_css URL in the map tree: what streamlit-folium loads."""
    js, css = [], []
    for child in [element, *element._children.values()]:
        js += [url for _, url in getattr(child, "default_js", [])]
        css += [url for _, url in getattr(child, "default_css", [])]
        if child is not element:
            more_js, more_css = _assets(child)
            js, css = js + more_js, css + more_css
    return js, css


def test_every_asset_is_served_locally(grid) -> None:
    tiles, crs = grid
    scene = vmaps.scene_map(_layer("scene", (10, 200, 10)), vmaps.grid_geojson(tiles, crs))
    split = vmaps.split_map(_layer("a", (255, 0, 0)), _layer("b", (0, 0, 255)))
    for m in (scene, split):
        js, css = _assets(m)
        assert js and all(url.startswith("/app/static/") for url in js + css), js + css
        html = vmaps.map_html(m)
        assert "d3.min.js" not in html and "cdn.jsdelivr" not in html and "code.jquery" not in html
    js, _ = _assets(split)
    assert "/app/static/leaflet-side-by-side/leaflet-side-by-side.js" in js
    for url in set(_assets(split)[0] + _assets(split)[1]):
        assert (REPO / "static" / url.removeprefix("/app/static/")).is_file(), url  # vendored for real


def test_web_basemaps_are_optional_and_off(grid) -> None:
    tiles, crs = grid
    m = vmaps.scene_map(None, vmaps.grid_geojson(tiles, crs))
    html = vmaps.map_html(m)
    layers = [c for c in m._children.values() if isinstance(c, folium.raster_layers.TileLayer)]
    assert len(layers) == len(vmaps.WEB_BASEMAPS) and all(
        not layer.show and layer.overlay for layer in layers
    )
    for layer in layers:
        assert f"{layer.get_name()}.addTo(" not in html  # never requested until ticked
    assert any(isinstance(c, folium.LayerControl) for c in m._children.values())
    bare = vmaps.scene_map(None, None, basemaps={})
    assert "tile.openstreetmap.org" not in vmaps.map_html(bare)


def test_grid_geometry_values_and_colours(grid) -> None:
    tiles, crs = grid
    values = {"r0c0": 20.0, "r0c1": 30.0}
    geo = vmaps.grid_geojson(
        tiles,
        crs,
        values,
        vmin=20.0,
        vmax=30.0,
        ramp="viridis",
        value_name="psnr",
        unit="dB",
        selected="r0c1",
    )
    assert vmaps.feature_ids(geo) == tiles["tile_id"].tolist() and len(geo["features"]) == 48
    first = geo["features"][0]
    row = tiles.iloc[0]
    w, s, e, n = transform_bounds(crs, "EPSG:4326", row.hr_left, row.hr_bottom, row.hr_right, row.hr_top)
    ring = np.array(first["geometry"]["coordinates"][0])
    assert ring.shape == (5, 2) and tuple(ring[0]) == tuple(ring[-1])
    np.testing.assert_allclose(
        [ring[:, 0].min(), ring[:, 1].min(), ring[:, 0].max(), ring[:, 1].max()], [w, s, e, n], atol=1e-9
    )
    props = {f["properties"]["id"]: f["properties"] for f in geo["features"]}
    assert props["r0c0"]["fill"] == RAMPS["viridis"][0] and props["r0c1"]["fill"] == RAMPS["viridis"][-1]
    assert props["r0c0"]["value"] == "psnr: 20 dB" and props["r1c1"]["value"] == "psnr: no result"
    assert props["r1c1"]["fill"] == NO_VALUE_COLOUR
    assert props["r0c1"]["selected"] and not props["r0c0"]["selected"]


def test_tooltip_texts_are_escaped(grid) -> None:
    tiles, crs = grid
    evil = "<img src=x onerror=alert(1)>"
    tiles = tiles.head(2).assign(tile_id=[evil, "r0c1"], split=["<b>train</b>", "test"])
    geo = vmaps.grid_geojson(tiles, crs, {evil: 1.0}, value_name="<i>m</i>")
    props = geo["features"][0]["properties"]
    assert props["id"] == evil  # the raw id comes back on click (never shown as HTML)
    assert (
        props["tile"] == "&lt;img src=x onerror=alert(1)&gt;" and props["split"] == "&lt;b&gt;train&lt;/b&gt;"
    )
    assert props["value"].startswith("&lt;i&gt;m&lt;/i&gt;: ")
    html = vmaps.map_html(vmaps.scene_map(None, geo))
    assert "<img src=x" not in html


def test_split_map_has_two_panes_and_the_swipe_control() -> None:
    left, right = _layer("LR <simulated>", (255, 0, 0)), _layer("HR", (0, 0, 255))
    html = vmaps.map_html(vmaps.split_map(left, right))
    assert html.count("L.imageOverlay(") == 2 and "L.control.sideBySide(" in html
    assert html.count(".createPane(") == 2
    for pane in ("sbs_left", "sbs_right"):
        assert re.search(rf'createPane\(\s*"{pane}"', html)  # the pane exists ...
        assert re.search(rf'"pane":\s*"{pane}"', html)  # ... and one overlay is drawn in it
    assert left.url in html and right.url in html
    # the labels are set as text: a name with markup is JSON-escaped, never parsed as HTML
    assert "textContent" in html and "<simulated>" not in html
    assert json.dumps("◀ LR <simulated>").replace("<", "\\u003c").replace(">", "\\u003e") in html


def test_use_local_assets_assigns_new_lists() -> None:
    before = folium.Map.default_js
    vmaps.use_local_assets("/base/app/static")
    try:
        assert folium.Map.default_js == [("leaflet", "/base/app/static/leaflet/leaflet.js")]
        assert folium.Map.default_js is not before
        assert folium.plugins.SideBySideLayers.default_css[0][1].startswith("/base/app/static/")
    finally:
        vmaps.use_local_assets()
    assert folium.Map.default_js == [("leaflet", "/app/static/leaflet/leaflet.js")]
