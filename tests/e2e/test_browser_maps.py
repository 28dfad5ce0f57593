"""The map explorer in real Chromium against the real server: both Leaflet maps draw pixels, the swipe
control works, clicking a tile selects it, and nothing is requested from outside localhost."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

FRAME = 'iframe[title="streamlit_folium.st_folium"]'
LEAFLET_BACKGROUND = (221, 221, 221)  # .leaflet-container's #ddd: what an empty map shows


def _idle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=60000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90000)


def page_url(page, server: str, title: str) -> str:
    """The URL of a dashboard page, read from the navigation (the router owns the url paths)."""
    page.goto(f"{server}/")
    _idle(page)
    link = page.locator('[data-testid="stSidebarNav"] a', has_text=title).first
    link.wait_for(timeout=60000)
    href = link.get_attribute("href")
    return href if href.startswith("http") else f"{server}/{href.lstrip('/')}"


def _painted_fraction(png: bytes) -> float:
    """Share of pixels that differ from the empty map's background."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return float((np.abs(image - np.array(LEAFLET_BACKGROUND)).sum(axis=2) > 30).mean())


def _frame(page, index: int):
    handle = page.locator(FRAME).nth(index).element_handle(timeout=90000)
    return handle.content_frame()


def _wait_images(frame, count: int) -> None:
    frame.wait_for_function(
        f"() => {{ const imgs = [...document.querySelectorAll('img.leaflet-image-layer')];"
        f" return imgs.length >= {count} && imgs.every(i => i.complete && i.naturalWidth > 0); }}",
        timeout=60000,
    )


def test_map_explorer_draws_scene_grid_and_split_map_offline(page, streamlit_server: str) -> None:
    page.goto(page_url(page, streamlit_server, "Map explorer") + "?tile=r1c2")
    _idle(page)
    page.wait_for_function(f"() => document.querySelectorAll('{FRAME}').length >= 2", timeout=90000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator("text=Simulated data").count() >= 1

    scene = _frame(page, 0)
    _wait_images(scene, 1)
    scene.wait_for_selector("path.leaflet-interactive", timeout=60000)
    assert scene.locator("path.leaflet-interactive").count() == 48  # the tile grid
    assert scene.evaluate("() => typeof L !== 'undefined' && L.version") == "1.9.4"
    scene_box = page.locator(FRAME).nth(0)
    scene_box.scroll_into_view_if_needed()
    assert scene_box.bounding_box()["height"] > 300
    assert _painted_fraction(scene_box.screenshot()) > 0.4  # the scene image covers most of the map

    split = _frame(page, 1)
    _wait_images(split, 2)
    split_box = page.locator(FRAME).nth(1)
    split_box.scroll_into_view_if_needed()
    split.wait_for_selector(".leaflet-sbs-divider", state="visible", timeout=30000)
    rng = split.locator(".leaflet-sbs-range")
    assert rng.count() == 1 and rng.bounding_box()["width"] > 300  # the swipe control spans the map
    assert _painted_fraction(split_box.screenshot()) > 0.1

    # drag the divider from the middle to a quarter of the width: the left image is clipped there
    box = split_box.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 4, y, steps=8)
    page.mouse.up()
    left = split.evaluate("() => parseFloat(document.querySelector('.leaflet-sbs-divider').style.left)")
    assert left < box["width"] * 0.35
    clip = split.evaluate("() => document.querySelector('.leaflet-pane.leaflet-sbs_left-pane').style.clip")
    assert clip.startswith("rect(")
    assert page.outside_requests == []


def test_clicking_a_tile_selects_it(page, streamlit_server: str) -> None:
    page.goto(page_url(page, streamlit_server, "Map explorer"))
    _idle(page)
    scene = _frame(page, 0)
    _wait_images(scene, 1)
    scene.wait_for_selector("path.leaflet-interactive", timeout=60000)
    # click the centre of the tile r2c3, found through Leaflet itself
    point = scene.evaluate(
        """() => { let found = null;
                   window.map.eachLayer(l => {
                     if (l.feature && l.feature.properties.id === 'r2c3') {
                       const c = window.map.latLngToContainerPoint(l.getBounds().getCenter());
                       found = [c.x, c.y];
                     } });
                   return found; }"""
    )
    assert point is not None
    box = page.locator(FRAME).nth(0).bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    page.wait_for_selector("h2:has-text('Tile r2c3')", timeout=60000)
    assert re.search(r"[?&]tile=r2c3", page.url)
    page.wait_for_function(f"() => document.querySelectorAll('{FRAME}').length >= 2", timeout=90000)
    assert page.outside_requests == []
