"""Navigation and the password gate in real Chromium against fresh servers (mindgap_ui/navigation.py,
mindgap_ui/auth.py): the first visit to a page of a fresh server shows the app's menu and layout (not
Streamlit's legacy ``pages/`` menu), ``/home`` is a page, a deep link survives the password prompt,
and a reload keeps the login (signed cookie)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mindgap_ui.navigation import PAGES
from tests.e2e.conftest import settle, streamlit_app

pytestmark = pytest.mark.browser

NAV = '[data-testid="stSidebarNav"]'


@pytest.fixture()
def fresh_server(tmp_path) -> Iterator[str]:
    """A server nobody has visited yet (the legacy-mode case is only the first run of a process)."""
    with streamlit_app(tmp_path / "server.log") as url:
        yield url


def _nav_labels(page) -> list[str]:
    return [t.strip() for t in page.locator(f"{NAV} a").all_inner_texts()]


def test_first_visit_to_inference_on_a_fresh_server_shows_the_app_navigation(page, fresh_server) -> None:
    page.goto(f"{fresh_server}/inference")
    settle(page)
    page.wait_for_selector(NAV, timeout=60000)
    assert page.locator("h1", has_text="On-demand inference").count() == 1
    labels = _nav_labels(page)
    # the app's menu: its titles, sections, Material icons; not the legacy list of file names
    for spec in PAGES.values():
        assert any(spec.title in label for label in labels), (spec.title, labels)
    assert not any(label in ("app", "map explorer", "lpips sat") for label in labels), labels
    nav_text = page.locator(NAV).inner_text()
    assert "Results" in nav_text and "Maps & inference" in nav_text
    assert page.locator(f'{NAV} [data-testid="stIconMaterial"]').count() >= len(PAGES)
    # wide layout: the main block uses most of the 1400 px viewport (the narrow one is 736 px)
    width = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()["width"]
    assert width > 900, width
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.outside_requests == []


def test_home_path_serves_the_home_page(page, fresh_server) -> None:
    page.goto(f"{fresh_server}/home?tile=r1c1")
    settle(page)
    page.wait_for_selector("h1:has-text('MindGap: the domain gap')", timeout=60000)
    assert page.locator("text=Page not found").count() == 0
    assert "tile=r1c1" in page.url


def test_deep_link_survives_the_password_and_a_reload(page, tmp_path) -> None:
    """On a fresh gated server: the deep link keeps its page and view through the prompt; a reload
    (a new session) is let in by the signed cookie."""
    with streamlit_app(tmp_path / "server.log", MINDGAP_PASSWORD="e2e-secret") as url:
        page.goto(f"{url}/overview?metric=ssim")
        page.wait_for_selector('input[type="password"]', timeout=60000)
        assert page.locator(".js-plotly-plot").count() == 0
        assert page.locator("text=Overview: the domain gap").count() == 0
        assert page.locator(NAV).count() == 0  # no menu before the password
        field = page.locator('input[type="password"]')
        field.fill("e2e-secret")
        field.press("Enter")
        page.wait_for_selector("h1:has-text('Overview: the domain gap')", timeout=60000)
        settle(page)
        assert "/overview" in page.url and "metric=ssim" in page.url
        assert page.locator('[data-testid="stSidebar"] input[aria-label="Metric"]').input_value() == "ssim"
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert "mindgap_auth" in cookies and cookies["mindgap_auth"]["sameSite"] == "Strict"

        page.reload()
        page.wait_for_selector("h1:has-text('Overview: the domain gap')", timeout=60000)
        settle(page)
        assert page.locator('input[type="password"]').count() == 0
        assert "metric=ssim" in page.url
        assert page.locator('[data-testid="stException"]').count() == 0

        page.context.clear_cookies()  # without the cookie, a new session asks again
        page.reload()
        page.wait_for_selector('input[type="password"]', timeout=60000)
