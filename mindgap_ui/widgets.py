"""Small reusable Streamlit widgets."""

from __future__ import annotations

import re

import streamlit as st

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$])")


def simulated_banner() -> None:
    """The banner shown wherever simulated data is displayed."""
    st.warning(
        "**Simulated data.** The demo's cross-sensor LR images are *simulated* from a real 5 m image "
        "(no real PlanetScope imagery can ship with MindGap). Results on them illustrate the method; "
        "they are not measurements of real Sentinel-2 / PlanetScope pairs.",
        icon="⚠️",
    )


def md_escape(text: object) -> str:
    """``text`` with Markdown/HTML special characters escaped (for names read from a results store)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def no_results_notice() -> None:
    """What a results page shows when the sidebar found no results to show."""
    st.info("No results to show. Choose a results folder in the sidebar (empty: the demo results, made "
            "by `mindgap demo --stage results`), or run `mindgap evaluate --experiment FILE --out DIR`.")
