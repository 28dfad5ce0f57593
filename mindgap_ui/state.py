"""The dashboard's view state: a common sidebar whose choices live in the URL (``st.query_params``).

A copied URL reopens the same view for another person: every choice is read from the query string
first and written back after the widgets ran. Paths a user types are confined to the data roots.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from mindgap_core.errors import MindGapError
from mindgap_core.paths import DEMO_RESULTS, confine, data_roots
from mindgap_ui import results

ALL = "(all)"


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

    def filters(self) -> dict[str, str]:
        """Result-row filters of the chosen run/method/regime (not the metric)."""
        chosen = {"run_id": self.run_id, "method": self.method, "regime": self.regime}
        return {k: v for k, v in chosen.items() if v is not None}


def _pick(label: str, options: list[str], key: str, *, allow_all: bool = False, default: str | None = None,
          help: str | None = None) -> str | None:
    """A sidebar selectbox whose value starts from and returns to ``st.query_params[key]``."""
    choices = ([ALL] if allow_all else []) + options
    wanted = st.query_params.get(key, default if default in choices else None)
    index = choices.index(wanted) if wanted in choices else 0
    value = st.sidebar.selectbox(label, choices, index=index, key=f"sidebar_{key}", help=help)
    if value is None or value == ALL:
        st.query_params.pop(key, None)
        return None
    st.query_params[key] = value
    return value


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
    except MindGapError as exc:
        st.sidebar.error(str(exc))
        return None
    st.query_params["results"] = typed.strip()
    return root


def sidebar() -> ViewState | None:
    """Draw the common sidebar and return the view state (None when no results can be shown)."""
    st.sidebar.header("View")
    root = results_root_input()
    if root is None:
        return None
    catalog = results.catalog(str(root))
    if catalog is None:
        st.sidebar.warning(f"No results in {root}. Run `mindgap demo --stage results` (demo) or "
                           "`mindgap evaluate --experiment FILE --out DIR`.")
        return None
    run_id = _pick("Run", catalog.runs, "run", default=catalog.runs[-1] if catalog.runs else None)
    metric = _pick("Metric", catalog.metrics, "metric", default="psnr" if "psnr" in catalog.metrics else None)
    method = _pick("Method", catalog.methods, "method", allow_all=True)
    regime = _pick("Regime", catalog.regimes, "regime", allow_all=True)
    targets = [d for d in catalog.domains if d != "synthetic"]
    target = _pick("Compared domain", targets, "target",
                   help="The cross-sensor test domain compared with the synthetic one") if targets else None
    return ViewState(root, run_id, metric, method, regime, "synthetic", target)
