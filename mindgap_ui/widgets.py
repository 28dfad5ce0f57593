"""Small reusable Streamlit widgets."""

import streamlit as st


def simulated_banner() -> None:
    """The banner shown wherever simulated data is displayed."""
    st.warning(
        "**Simulated data.** The demo's cross-sensor LR images are *simulated* from a real 5 m image "
        "(no real PlanetScope imagery can ship with MindGap). Results on them illustrate the method; "
        "they are not measurements of real Sentinel-2 / PlanetScope pairs.",
        icon="⚠️",
    )
