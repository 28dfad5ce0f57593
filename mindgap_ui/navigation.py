"""The dashboard's pages and its router, defined once (``app.py`` calls :func:`run_app`).

Every page file in ``pages/`` starts with :func:`page_start`. Links use :func:`page_link` with a page
name of :data:`PAGES`; no other module spells a page's file path.

A new page: write ``pages/<name>.py`` (first statement ``navigation.page_start()``; an analysis page
then takes its view with ``view = state.analysis_page("Title")``), and add one ``PageSpec("<name>",
"Title", ":material/<icon>:", "<menu section>", analysis=True)`` line to :data:`PAGES`.

Why :func:`page_start` exists (the one workaround, kept here): Streamlit still treats a ``pages/``
folder next to the entrypoint as a legacy multipage app until ``st.navigation`` has run once in the
server process ("As soon as any session of your app executes the st.navigation command, your app
will ignore the pages/ directory", st.navigation reference, Streamlit 1.67). On a fresh server, the
first visitor to ``/inference`` therefore gets ``pages/inference.py`` run on its own, under
Streamlit's default menu, without ``app.py``. Streamlit offers no setting to turn the legacy mode
off, and its maintainers' advice is to rename the folder, which the product's layout rules out. So a
page file that finds itself run without the router runs the router in its place, in the same run
(no rerun, so a pending click survives): ``st.navigation`` then takes over for every session, and it
resolves the same page because every page's URL path is its file stem, which is also the legacy
mode's URL. ``tests/app/test_navigation.py`` (AppTest starts each run in the legacy mode) and
``tests/e2e/test_browser_navigation.py`` (a fresh server) fail when a Streamlit upgrade breaks this.
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import gc
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image, ImageDraw
from streamlit.navigation.page import StreamlitPage

from mindgap_core.errors import MindGapError
from mindgap_ui.widgets import md_escape

PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"
APP_TITLE = "MindGap"


@dataclass(frozen=True)
class PageSpec:
    """One dashboard page: ``pages/<name>.py``, served at ``/<name>`` (the home page also at ``/``)."""

    name: str
    title: str
    icon: str  # a Material Symbol (":material/...:"): no emoji font needed
    section: str
    analysis: bool = False  # shares the results sidebar (mindgap_ui/state.py)

    @property
    def path(self) -> Path:
        return PAGES_DIR / f"{self.name}.py"


#: every page, in menu order; the first is the home page
PAGES: dict[str, PageSpec] = {spec.name: spec for spec in (
    PageSpec("home", "Demo data", ":material/satellite_alt:", "MindGap"),
    PageSpec("overview", "Overview", ":material/dashboard:", "Results", analysis=True),
    PageSpec("distributions", "Distributions", ":material/bar_chart:", "Results", analysis=True),
    PageSpec("lpips_sat", "LPIPS-Sat heatmaps", ":material/grid_on:", "Results", analysis=True),
    PageSpec("scaling", "Scaling & training", ":material/trending_up:", "Results", analysis=True),
    PageSpec("attribution", "Attribution & remedies", ":material/account_tree:", "Results", analysis=True),
    PageSpec("calibration", "Calibration under shift", ":material/query_stats:", "Results", analysis=True),
    PageSpec("map_explorer", "Map explorer", ":material/map:", "Maps & inference"),
    PageSpec("inference", "On-demand inference", ":material/memory:", "Maps & inference"),
)}
HOME = next(iter(PAGES))
#: a second URL of the home page, redirected to "/" (the legacy mode serves pages/home.py there)
_HOME_ALIAS = HOME
_HOME_URL = "index"  # the home page's internal url path: unique, never shown ("/" serves it)


@functools.cache
def app_icon() -> Image.Image:
    """The browser tab's icon: a small satellite drawn here (a Material icon or an emoji as page icon
    makes the browser fetch an image from the internet)."""
    icon = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    draw.ellipse((0, 0, 63, 63), fill=(38, 70, 120, 255))
    draw.rectangle((8, 26, 22, 38), fill=(120, 180, 230, 255))  # solar panels
    draw.rectangle((42, 26, 56, 38), fill=(120, 180, 230, 255))
    draw.rectangle((24, 22, 40, 42), fill=(235, 235, 235, 255))  # body
    return icon


_routed: contextvars.ContextVar[bool] = contextvars.ContextVar("mindgap_routed", default=False)


def page(name: str) -> StreamlitPage:
    """The ``st.Page`` of page ``name`` (a key of :data:`PAGES`), for ``st.page_link``/``st.switch_page``."""
    spec = PAGES[name]
    home = name == HOME
    return st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=_HOME_URL if home else spec.name,
                   default=home)


def _to_home() -> None:
    """``/home``: the home page's canonical URL is ``/``; keep the query string."""
    st.switch_page(page(HOME), query_params=st.query_params.to_dict())


def _sections() -> dict[str, list]:
    sections: dict[str, list] = {}
    for name, spec in PAGES.items():
        sections.setdefault(spec.section, []).append(page(name))
    alias = st.Page(_to_home, title=PAGES[HOME].title, url_path=_HOME_ALIAS, visibility="hidden")
    sections[PAGES[HOME].section].append(alias)
    return sections


def current_spec(url_path: str) -> PageSpec | None:
    """The page served at ``url_path`` ("" = the home page); None for the alias."""
    if url_path in ("", _HOME_URL):
        return PAGES[HOME]
    return PAGES.get(url_path) if url_path != _HOME_ALIAS else None


@functools.cache
def _settle_process() -> None:
    """Once per server process, before the first page runs: import the dashboard's modules, then move
    every object alive now (modules, classes, functions: ~200k objects) out of reach of the cyclic
    garbage collector (``gc.freeze``). Streamlit runs a full collection after every script run
    (``runner.postScriptGC``); walking those objects took 0.3-1.9 s of GIL time per run on the 2-core
    CI machine and was most of the cost of concurrent sessions (``benchmarks/dashboard.py``). Frozen
    objects are still freed by reference counting; only cycles among them are never collected."""
    import mindgap_ui

    for module in pkgutil.iter_modules(mindgap_ui.__path__, "mindgap_ui."):
        importlib.import_module(module.name)
    gc.collect()
    gc.freeze()
    atexit.register(gc.unfreeze)  # a clean shutdown still collects them


def run_app() -> None:
    """The router: page config, navigation, password gate, common sidebar, then the chosen page.

    ``st.navigation`` runs before the gate, so a locked deep link keeps its URL and lands on its page
    once the password is typed (the menu stays hidden until then).
    """
    from mindgap_ui import auth, state

    _settle_process()
    st.set_page_config(page_title=APP_TITLE, page_icon=app_icon(), layout="wide")
    locked = auth.locked()
    chosen = st.navigation(_sections(), position="hidden" if locked else "sidebar")
    if locked:
        auth.password_prompt()  # stops the run
    auth.remember_in_browser()
    spec = current_spec(chosen.url_path)
    if spec is not None and spec.analysis:
        state.set_current_view(state.sidebar())
    token = _routed.set(True)
    try:
        chosen.run()
    except MindGapError as exc:  # bad input that reached a page: one message, no traceback
        st.error(f"This view cannot be shown: {md_escape(exc)}", icon=":material/error:")
    finally:
        _routed.reset(token)


def page_start() -> None:
    """First call of every page file: returns when the router runs the page; otherwise (Streamlit's
    legacy ``pages/`` mode, see the module docstring) runs the router in its place and stops."""
    if _routed.get():
        return
    run_app()
    st.stop()


def page_link(name: str, *, label: str | None = None, query_params: Mapping[str, str] | None = None,
              container=st) -> None:
    """A link to page ``name`` with its menu icon (``label`` defaults to its title)."""
    spec = PAGES[name]
    container.page_link(page(name), label=label or spec.title, icon=spec.icon,
                        query_params=dict(query_params) if query_params else None)
