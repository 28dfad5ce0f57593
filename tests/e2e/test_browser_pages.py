"""The analysis pages in real Chromium against a real server: each page by URL renders its plotly charts,
raises nothing and asks nothing of the internet (the password gate and the first visit to a fresh
server: tests/e2e/test_browser_navigation.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from mindgap_core.paths import DATA_ROOTS_ENV, DEMO_RESULTS
from tests.e2e.conftest import settle, streamlit_app

pytestmark = pytest.mark.browser

PAGES = {"overview": 2, "distributions": 3, "lpips_sat": 1, "scaling": 2}  # page -> plotly charts at least


@pytest.fixture(scope="module")
def results_query(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The demo results when shipped (no query parameter needed), else the fixture store."""
    if (DEMO_RESULTS / "shards").is_dir() and any((DEMO_RESULTS / "shards").glob("[!.]*.parquet")):
        return {}
    from tests.fixtures.results_store import make_results_store

    folder = os.environ.get("MINDGAP_TEST_STORE")
    store = make_results_store(Path(folder) if folder else tmp_path_factory.mktemp("e2e_store"))
    return {"results": str(store)}


@pytest.fixture(scope="module")
def pages_server(results_query, tmp_path_factory) -> Iterator[str]:
    roots = str(Path(results_query["results"]).parent) if results_query else ""
    log = tmp_path_factory.mktemp("pages_server") / "server.log"
    with streamlit_app(log, **{DATA_ROOTS_ENV: roots}) as url:
        yield url


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_charts_offline(page, pages_server: str, results_query, name: str) -> None:
    page.goto(f"{pages_server}/{name}?{urlencode(results_query)}")
    settle(page)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60000)
    # charts draw one after another (the scaling page's loss curves read many logs): wait for all
    page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {PAGES[name]}",
                           timeout=60000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator(".js-plotly-plot").count() >= PAGES[name]
    assert page.locator("text=Simulated data").count() >= 1
    assert page.outside_requests == []


def test_deep_link_reopens_the_view(page, pages_server: str, results_query) -> None:
    page.goto(f"{pages_server}/overview?{urlencode({**results_query, 'metric': 'ssim'})}")
    settle(page)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60000)
    assert page.locator('[data-testid="stSidebar"] input[aria-label="Metric"]').input_value() == "ssim"
    assert page.locator("text=SSIM, all bands: gap").count() >= 1  # chart titles name the band
    assert "metric=ssim" in page.url

