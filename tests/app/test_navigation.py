"""The router and its one workaround (mindgap_ui/navigation.py).

AppTest starts every run the way a fresh server starts its first one: in Streamlit's legacy ``pages/``
mode, where ``pages/<name>.py`` runs on its own. These tests fail when a Streamlit upgrade breaks the
in-place routing of :func:`mindgap_ui.navigation.page_start` (the page body would run unrouted: no
gate, no common sidebar, or twice). The browser side (a real fresh server) is in
tests/e2e/test_browser_navigation.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mindgap_ui.auth import PASSWORD_ENV
from mindgap_ui.navigation import HOME, PAGES
from tests.app.conftest import APP, REPO, page_file

#: each page's own title (its first st.title)
TITLES = {"home": "MindGap: the domain gap", "overview": "Overview: the domain gap",
          "distributions": "Score distributions", "lpips_sat": "LPIPS-Sat heatmaps",
          "scaling": "Scaling & training", "attribution": "Attribution & remedies",
          "calibration": "Calibration under shift",
          "map_explorer": "Map explorer", "inference": "On-demand inference"}


def test_every_page_has_a_title_here() -> None:
    assert set(TITLES) == set(PAGES) and next(iter(PAGES)) == HOME


@pytest.mark.parametrize("name", list(PAGES))
def test_a_page_file_run_first_goes_through_the_router(name: str, monkeypatch) -> None:
    """Gate first (the router's), then the page body exactly once, with the common sidebar where due."""
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(page_file(name)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.label for t in at.text_input] == ["Password"]
    assert [t.value for t in at.title] == ["MindGap"]
    at.text_input[0].input("pw").run()
    assert not at.exception, [e.value for e in at.exception]
    titles = [t.value for t in at.title]
    assert len(titles) == 1 and titles[0].startswith(TITLES[name]), titles
    sidebar = [s.label for s in at.sidebar.selectbox]
    if PAGES[name].analysis or name == "map_explorer":
        assert sidebar.count("Metric") == 1, sidebar
    else:
        assert "Metric" not in sidebar


def test_menu_icons_are_material_symbols() -> None:
    """Material Symbols ship with Streamlit's frontend: no emoji font needed (Streamlit checks the names
    when the pages are built, in the runs above)."""
    for spec in PAGES.values():
        assert re.fullmatch(r":material/[a-z0-9_]+:", spec.icon), spec


def test_no_page_file_path_is_spelled_outside_the_navigation() -> None:
    """Links name pages through mindgap_ui.navigation (PAGES keys), never by file path."""
    pattern = re.compile(r"""["']pages/[a-z_]+\.py["']""")
    found = [f"{path.relative_to(REPO)}:{n}" for folder in ("pages", "mindgap_ui")
             for path in sorted((REPO / folder).glob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    found += [f"app.py:{n}" for n, line in enumerate(Path(APP).read_text().splitlines(), 1)
              if pattern.search(line)]
    assert not found, found
