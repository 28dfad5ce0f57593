"""Folium map builders for the dashboard (no streamlit): the scene with its tile grid, and a swipe
(side-by-side) comparison of two rasters of one tile.

Everything works without internet (recipe: ``docs/maps-offline.md``): folium's default JS/CSS are
pointed at the Leaflet and leaflet-side-by-side copies vendored in ``static/`` (served by Streamlit at
``/app/static``); rasters are RGBA ``ImageOverlay``s pre-warped to EPSG:3857
(:mod:`mindgap_core.viz.overlays`); web basemaps exist only as optional overlays, unticked, under the
layer control (no request until ticked); no branca colormap/legend is put on a map (it loads d3 from a
CDN): legends are drawn outside the map. Tooltip texts are HTML-escaped (Leaflet sets them as HTML).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping

import folium
import folium.plugins
import pandas as pd
from branca.element import MacroElement
from jinja2 import Template

from mindgap_core.viz.overlays import NO_VALUE_COLOUR, ImageLayer, value_colour

#: where Streamlit serves ``static/`` (``server.enableStaticServing = true``)
STATIC_PREFIX = "/app/static"
#: optional web basemaps: name -> (XYZ URL template, attribution). Shown only when ticked.
WEB_BASEMAPS: dict[str, tuple[str, str]] = {
    "OpenStreetMap (web, needs internet)": (
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "&copy; OpenStreetMap contributors",
    ),
    "Esri World Imagery (web, needs internet)": (
        "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
        "Tiles &copy; Esri",
    ),
}
SELECTED_COLOUR = "#ffeb3b"
MAX_ZOOM = 21


def use_local_assets(prefix: str = STATIC_PREFIX) -> None:
    """Point folium's Map and SideBySideLayers JS/CSS lists at the vendored copies under ``prefix``.

    streamlit-folium loads exactly these lists and gives up at the first JS file that fails, so every
    entry must be local. New lists are assigned (never edited in place). Idempotent.
    """
    folium.Map.default_js = [("leaflet", f"{prefix}/leaflet/leaflet.js")]
    folium.Map.default_css = [("leaflet_css", f"{prefix}/leaflet/leaflet.css")]
    folium.plugins.SideBySideLayers.default_js = [
        ("leaflet.sidebyside", f"{prefix}/leaflet-side-by-side/leaflet-side-by-side.js")
    ]
    folium.plugins.SideBySideLayers.default_css = [
        ("sbs_layout", f"{prefix}/leaflet-side-by-side/layout.css"),
        ("sbs_range", f"{prefix}/leaflet-side-by-side/range.css"),
    ]


use_local_assets()  # once at import, before any map is built (the recipe's settings)


class TextLabel(MacroElement):
    """A small Leaflet control showing plain text (set as ``textContent``: never parsed as HTML)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
            {{ this.get_name() }}.onAdd = function (map) {
                var div = L.DomUtil.create('div', 'mindgap-label');
                div.style.background = 'rgba(255,255,255,0.85)';
                div.style.padding = '2px 6px';
                div.style.font = '12px sans-serif';
                div.style.borderRadius = '3px';
                div.textContent = {{ this.text|tojson }};
                return div;
            };
            {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, text: str, position: str = "topleft") -> None:
        super().__init__()
        self._name = "TextLabel"
        self.text = str(text)
        self.position = position


def tile_polygons(grid: pd.DataFrame, crs: str) -> dict[str, list[list[float]]]:
    """tile_id -> closed lon/lat ring of the tile's HR bounds (``hr_left`` .. ``hr_top`` in ``crs``)."""
    from rasterio.warp import transform as warp_points

    xs: list[float] = []
    ys: list[float] = []
    for row in grid.itertuples(index=False):
        xs += [row.hr_left, row.hr_right, row.hr_right, row.hr_left, row.hr_left]
        ys += [row.hr_bottom, row.hr_bottom, row.hr_top, row.hr_top, row.hr_bottom]
    lons, lats = warp_points(crs, "EPSG:4326", xs, ys) if xs else ([], [])
    rings = {}
    for i, tile_id in enumerate(grid["tile_id"]):
        rings[str(tile_id)] = [[float(lons[k]), float(lats[k])] for k in range(5 * i, 5 * i + 5)]
    return rings


def grid_geojson(
    grid: pd.DataFrame,
    crs: str,
    values: Mapping[str, float] | None = None,
    *,
    vmin: float = 0.0,
    vmax: float = 1.0,
    ramp: str = "viridis",
    value_name: str = "value",
    unit: str = "",
    selected: str | None = None,
) -> dict:
    """A GeoJSON FeatureCollection of the tile grid, each tile filled by its value on ``ramp``.

    ``grid`` has ``tile_id``, ``split`` and ``hr_left``/``hr_bottom``/``hr_right``/``hr_top`` in ``crs``.
    Properties: ``id`` (the raw tile id, returned on click), ``tile``/``split``/``value`` (escaped texts
    for the tooltip), ``fill`` (colour) and ``selected``. Tiles without a value are grey ("no result").
    """
    values = values or {}
    features = []
    for (tile_id, ring), split in zip(tile_polygons(grid, crs).items(), grid["split"], strict=True):
        value = values.get(tile_id)
        finite = value is not None and math.isfinite(value)
        text = f"{value:.4g}{(' ' + unit) if unit else ''}" if finite else "no result"
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "id": tile_id,
                    "tile": html.escape(tile_id),
                    "split": html.escape(str(split)),
                    "value": html.escape(f"{value_name}: {text}"),
                    "fill": value_colour(value if finite else None, vmin, vmax, ramp),
                    "selected": tile_id == selected,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _grid_style(feature: dict) -> dict:
    props = feature["properties"]
    has_value = props.get("fill", NO_VALUE_COLOUR) != NO_VALUE_COLOUR
    return {
        "fillColor": props.get("fill", NO_VALUE_COLOUR),
        "fillOpacity": 0.55 if has_value else 0.08,
        "color": SELECTED_COLOUR if props.get("selected") else "#ffffff",
        "weight": 4 if props.get("selected") else 1,
    }


def _highlight(feature: dict) -> dict:
    return {"weight": 3, "color": "#000000"}


def _add_basemaps(m: folium.Map, basemaps: Mapping[str, tuple[str, str]]) -> None:
    for name, (url, attribution) in basemaps.items():
        folium.TileLayer(
            url, attr=attribution, name=name, overlay=True, show=False, max_zoom=MAX_ZOOM, max_native_zoom=19
        ).add_to(m)


def _bounds_of(layers: list[ImageLayer], geojson: dict | None) -> list[list[float]] | None:
    south, west, north, east = math.inf, math.inf, -math.inf, -math.inf
    for layer in layers:
        (s, w), (n, e) = layer.bounds
        south, west, north, east = min(south, s), min(west, w), max(north, n), max(east, e)
    for feature in (geojson or {}).get("features", []):
        for lon, lat in feature["geometry"]["coordinates"][0]:
            south, west, north, east = min(south, lat), min(west, lon), max(north, lat), max(east, lon)
    if not math.isfinite(south):
        return None
    return [[south, west], [north, east]]


def scene_map(
    scene: ImageLayer | None,
    grid: dict | None,
    *,
    basemaps: Mapping[str, tuple[str, str]] = WEB_BASEMAPS,
    grid_name: str = "Tile grid",
) -> folium.Map:
    """The scene as an image overlay with the clickable tile grid on top; no web basemap by default.

    Clicking a tile makes ``st_folium(..., returned_objects=["last_active_drawing"])`` return its
    feature, whose ``properties["id"]`` is the tile id.
    """
    m = folium.Map(
        tiles=None, control_scale=True, max_zoom=MAX_ZOOM, zoom_start=15, location=[0.0, 0.0], zoom_snap=0.25
    )
    if scene is not None:
        folium.raster_layers.ImageOverlay(scene.url, scene.bounds, name=scene.name, pixelated=False).add_to(m)
    if grid is not None and grid.get("features"):
        folium.GeoJson(
            grid,
            name=grid_name,
            style_function=_grid_style,
            highlight_function=_highlight,
            tooltip=folium.GeoJsonTooltip(fields=["tile", "split", "value"], aliases=["tile", "split", ""]),
        ).add_to(m)
    _add_basemaps(m, basemaps)
    folium.LayerControl(collapsed=True).add_to(m)
    bounds = _bounds_of([scene] if scene is not None else [], grid)
    if bounds is not None:
        m.fit_bounds(bounds)
    return m


def split_map(left: ImageLayer, right: ImageLayer, *, outline: dict | None = None) -> folium.Map:
    """A swipe view: ``left`` and ``right`` stacked, a draggable divider (leaflet-side-by-side) between.

    Each overlay lives in its own map pane, which the plugin clips (an ImageOverlay has no container of
    its own; the vendored plugin maps ``getContainer`` to the pane).
    """
    m = folium.Map(
        tiles=None, control_scale=True, max_zoom=MAX_ZOOM, zoom_start=18, location=[0.0, 0.0], zoom_snap=0.25
    )
    layers = []
    for side, layer in (("left", left), ("right", right)):
        pane = f"sbs_{side}"
        folium.map.CustomPane(pane, z_index=400 if side == "left" else 401).add_to(m)
        overlay = folium.raster_layers.ImageOverlay(
            layer.url, layer.bounds, name=f"{side}: {layer.name}", pane=pane, pixelated=False
        )
        overlay.add_to(m)
        layers.append(overlay)
    folium.plugins.SideBySideLayers(layers[0], layers[1]).add_to(m)
    if outline is not None:
        folium.GeoJson(
            outline,
            name="tile outline",
            style_function=lambda f: {"fill": False, "color": "#ffffff", "weight": 1},
        ).add_to(m)
    TextLabel(f"◀ {left.name}", "bottomleft").add_to(m)
    TextLabel(f"{right.name} ▶", "bottomright").add_to(m)
    bounds = _bounds_of([left, right], None)
    if bounds is not None:
        m.fit_bounds(bounds)
    return m


def map_html(m: folium.Map) -> str:
    """The map's standalone HTML (for tests and exports)."""
    return m.get_root().render()


def feature_ids(geojson: Mapping) -> list[str]:
    """The tile ids of a grid GeoJSON, in order."""
    return [f["properties"]["id"] for f in geojson.get("features", [])]
