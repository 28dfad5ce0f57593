"""The dashboard's view state: a common sidebar whose choices live in the URL (``st.query_params``).

A copied URL reopens the same view for another person: every choice is read from the query string
first and written back after the widgets ran. Paths a user types are confined to the data roots.

The router (``mindgap_ui/navigation.py``) draws the sidebar once per run for the analysis pages and
hands the result to the page (:func:`set_current_view`); pages read it with :func:`current_view`.
The sidebar offers only choices that have data (:mod:`mindgap_ui.choices`).

Query parameters: ``results`` (store folder; empty = the demo results), ``run``, ``metric``,
``method``, ``regime``, ``target`` (compared cross-sensor domain), ``band``, ``aggregate``; pages add
their own (e.g. ``model``, ``plot``).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from mindgap_core.attribution.names import RUN_PREFIX, VARIANT_DOMAIN_PREFIX
from mindgap_core.errors import MindGapError
from mindgap_core.paths import DATA_ROOTS_ENV, DEMO_RESULTS, confine, data_roots
from mindgap_ui import results
from mindgap_ui.widgets import md_escape

ALL = "(all)"
SOURCE_DOMAIN = "synthetic"
_current_view: contextvars.ContextVar[ViewState | None] = contextvars.ContextVar("mindgap_view", default=None)
#: query parameters that make up the common view (carried by links between pages)
VIEW_PARAMS = ("results", "run", "metric", "method", "regime", "target", "band", "aggregate")


@dataclass(frozen=True)
class ViewState:
    """What the user is looking at; None in a filter means all."""

    results_root: Path
    run_id: str | None
    metric: str | None
    method: str | None
    regime: str | None
    source_domain: str
    target_domain: str | None
    band: str | None = "all"
    aggregate: str | None = "mean"
    fingerprint: str = ""
    simulated: bool = False

    @property
    def root(self) -> str:
        """The results folder as the cached loaders take it."""
        return str(self.results_root)

    def filters(self) -> dict[str, str]:
        """Result-row filters of the chosen run/method/regime (not the metric)."""
        chosen = {"run_id": self.run_id, "method": self.method, "regime": self.regime}
        return {k: v for k, v in chosen.items() if v is not None}

    def selection(self) -> dict[str, str]:
        """The chosen method and regime (to narrow a table computed for the whole run)."""
        chosen = {"method": self.method, "regime": self.regime}
        return {k: v for k, v in chosen.items() if v is not None}

    def scope_filters(self, **extra: Any) -> dict[str, Any]:
        """:meth:`score_filters` without the method and regime (see :meth:`selection`)."""
        return {k: v for k, v in self.score_filters(**extra).items() if k not in ("method", "regime")}

    def score_filters(self, **extra: Any) -> dict[str, Any]:
        """Filters of the chosen run/method/regime/band/aggregate, plus ``extra`` (None values kept:
        they mean IS NULL, e.g. ``train_blocks=None`` leaves out the diversity-scaling series)."""
        chosen = {**self.filters(), "band": self.band, "aggregate": self.aggregate}
        return {**{k: v for k, v in chosen.items() if v is not None}, **extra}


def _pick(label: str, options: list[str], key: str, *, allow_all: bool = False, default: str | None = None,
          help: str | None = None) -> str | None:
    """A sidebar selectbox whose value starts from and returns to ``st.query_params[key]`` (not drawn,
    None, when there is nothing to choose from)."""
    if not options:
        st.query_params.pop(key, None)
        return None
    entries = ([ALL] if allow_all else []) + options
    wanted = st.query_params.get(key, default if default in entries else None)
    index = entries.index(wanted) if wanted in entries else 0
    value = st.sidebar.selectbox(label, entries, index=index, key=f"sidebar_{key}", help=help)
    if value is None or value == ALL:
        st.query_params.pop(key, None)
        return None
    st.query_params[key] = value
    return value


def default_run(runs: list[str]) -> str | None:
    """The run the sidebar opens on: the last (in the catalog's order) that is not a gap-attribution run,
    whose test domains are re-simulated variants; the last run when every run is one."""
    normal = [r for r in runs if not r.startswith(RUN_PREFIX)]
    return (normal or runs or [None])[-1]


def default_target(domains: list[str]) -> str | None:
    """The compared domain the sidebar opens on: the first that is not an attribution variant domain."""
    plain = [d for d in domains if not d.startswith(VARIANT_DOMAIN_PREFIX)]
    return (plain or domains or [None])[0]


def results_root_input() -> Path | None:
    """The results folder: the demo's by default, or a typed path inside the data roots."""
    typed = st.sidebar.text_input("Results folder", value=st.query_params.get("results", ""),
                                  placeholder="demo results", key="sidebar_results",
                                  help="A results store folder (mindgap evaluate --out). Empty: the demo.")
    if not typed.strip():
        st.query_params.pop("results", None)
        return DEMO_RESULTS
    try:
        root = confine(typed.strip(), data_roots())
    except MindGapError:  # its message lists the server's data roots: not for visitors
        st.sidebar.error(f"Results folder `{md_escape(typed.strip())}`: outside the folders this server "
                         f"shows (its host can add one with {DATA_ROOTS_ENV}).")
        return None
    except (ValueError, OSError):  # e.g. a NUL byte in the URL's value
        st.sidebar.error("Results folder: not a usable path.")
        return None
    st.query_params["results"] = typed.strip()
    return root


def sidebar() -> ViewState | None:
    """Draw the common sidebar and return the view state (None when no results can be shown).

    Each choice lists only the values that have data together with the choices above it
    (:mod:`mindgap_ui.choices`); a value in the URL that has none falls back to the default.
    """
    st.sidebar.header("View")
    root = results_root_input()
    if root is None:
        return None
    catalog = results.catalog(str(root))
    if catalog is None:
        shown = md_escape(st.query_params.get("results", "")) or "the demo results"
        st.sidebar.warning(f"No results in {shown}. Run `mindgap demo --stage results` (demo) or "
                           "`mindgap evaluate --experiment FILE --out DIR`.")
        return None
    fingerprint = results.fingerprint(str(root))
    combos = results.choices(str(root), fingerprint, SOURCE_DOMAIN)
    chosen: dict[str, str | None] = {}

    def pick(column: str, label: str, key: str, **kwargs: Any) -> str | None:
        chosen[column] = _pick(label, combos.options(column, chosen), key, **kwargs)
        return chosen[column]

    runs = combos.options("run_id", {})
    run_id = pick("run_id", "Run", "run", default=default_run(runs))
    metrics = combos.options("metric", chosen)
    metric = pick("metric", "Metric", "metric", default="psnr" if "psnr" in metrics else None)
    method = pick("method", "Method", "method", allow_all=True)
    regime = pick("regime", "Regime", "regime", allow_all=True)
    target = pick("target", "Compared domain", "target",
                  default=default_target(combos.options("target", chosen)),
                  help="The cross-sensor test domain compared with the synthetic one")
    band = pick("band", "Band", "band", default="all",
                help="'all': the metric over every band; or one band's score")
    aggregates = combos.options("aggregate", chosen)
    if len(aggregates) > 1:
        aggregate = pick("aggregate", "Sample aggregate", "aggregate", default="mean",
                         help="How the diffusion samples were combined before scoring")
    else:
        st.query_params.pop("aggregate", None)
        aggregate = aggregates[0] if aggregates else None
    return ViewState(root, run_id, metric, method, regime, SOURCE_DOMAIN, target, band, aggregate,
                     fingerprint, catalog.simulated)


def set_current_view(view: ViewState | None) -> None:
    """Hand the view the router drew in this run to the page it runs next."""
    _current_view.set(view)


def current_view() -> ViewState | None:
    """The view the router drew in this run (``mindgap_ui/navigation.py`` draws it for analysis pages)."""
    return _current_view.get()


def view_query_params() -> dict[str, str]:
    """The current view's query parameters (to carry them in links to other pages)."""
    return {k: st.query_params[k] for k in VIEW_PARAMS if k in st.query_params}


def page_choice(label: str, options: list[str], key: str, *, default: str | None = None,
                horizontal: bool = False, radio: bool = False, format_func=str, container=st) -> str | None:
    """A page-level choice (selectbox or radio) deep-linked through ``st.query_params[key]``."""
    if not options:
        st.query_params.pop(key, None)
        return None
    wanted = st.query_params.get(key, default if default in options else options[0])
    index = options.index(wanted) if wanted in options else 0
    if radio:
        value = container.radio(label, options, index=index, key=f"page_{key}", horizontal=horizontal,
                                format_func=format_func)
    else:
        value = container.selectbox(label, options, index=index, key=f"page_{key}", format_func=format_func)
    st.query_params[key] = value
    return value


def analysis_page(title: str) -> ViewState:
    """Start an analysis page: title, the view the router drew (stops with a notice when there are no
    results) and the simulated-data banner when the results hold simulated data."""
    from mindgap_ui.widgets import no_results_notice, simulated_banner

    st.title(title)
    view = current_view()
    if view is None:
        no_results_notice()
        st.stop()
    if view.simulated:
        simulated_banner()
    return view
