"""The landing page in real Chromium against the real server."""

import pytest

pytestmark = pytest.mark.browser


def _wait(page):
    page.wait_for_selector('[data-testid="stApp"]', timeout=60000)
    page.wait_for_selector("text=Embedded demo dataset", timeout=60000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60000
    )


def test_home_page_serves_demo(page, streamlit_server: str) -> None:
    page.goto(f"{streamlit_server}/")
    _wait(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator("text=Simulated data").count() >= 1
    # the three panels (LR synthetic, LR cross-sensor, HR) draw one after another
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 3",
                           timeout=60000)
    assert page.outside_requests == []


def test_home_deep_link_tile(page, streamlit_server: str) -> None:
    page.goto(f"{streamlit_server}/home?tile=r1c2")
    _wait(page)
    page.wait_for_selector("text=Tile r1c2", timeout=60000)  # the caption of the deep-linked tile
