"""The attribution page in real Chromium against a real server, on a store holding an attribution run:
the attribution charts (waterfall bars included) and the remedies chart render, the tables and the
SIMULATED label show,
nothing raises and nothing is asked of the internet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from mindgap_core.paths import DATA_ROOTS_ENV
from tests.e2e.conftest import settle, streamlit_app
from tests.fixtures.attribution_store import session_attribution_store

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def attribution_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return session_attribution_store(tmp_path_factory)


@pytest.fixture(scope="module")
def attribution_server(attribution_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("attribution_server") / "server.log"
    with streamlit_app(log, **{DATA_ROOTS_ENV: str(attribution_store.parent)}) as url:
        yield url


def test_attribution_page_renders_its_charts_offline(page, attribution_server: str,
                                                     attribution_store: Path) -> None:
    page.goto(f"{attribution_server}/attribution?{urlencode({'results': str(attribution_store)})}")
    settle(page)
    # the bootstrap runs before the charts: wait for both charts, then for the waterfall's bars
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3",
                           timeout=120000)
    page.wait_for_selector(".js-plotly-plot .waterfalllayer .point path", timeout=60000)
    page.wait_for_selector('[data-testid="stDataFrame"]', timeout=60000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator(".js-plotly-plot .barlayer .point").count() >= 4  # single + leave-one-out × 2
    assert page.locator('text="SIMULATED"').count() >= 1  # the caption's bold label, exact case
    assert page.locator("text=Simulated data").count() >= 1
    assert page.locator("text=Attribution: which simulated effect makes the gap").count() == 1
    assert page.locator("text=Remedies: does decoupling close the gap?").count() == 1
    page.wait_for_selector("text=Best remedy", timeout=60000)
    assert page.outside_requests == []
