"""Cached loaders for the demo dataset description (landing page)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mindgap_core.data import catalog
from mindgap_core.data.manifest import read_manifest


@st.cache_data(show_spinner=False)
def manifest(path: str) -> pd.DataFrame:
    """The pair manifest as a DataFrame."""
    return read_manifest(path)


@st.cache_data(show_spinner=False)
def counts(path: str) -> pd.DataFrame:
    """Pairs per domain and split."""
    return catalog.domain_split_counts(manifest(path))


@st.cache_data(show_spinner=False)
def tiles(path: str) -> pd.DataFrame:
    """The tile grid (one row per tile)."""
    return catalog.tile_grid(manifest(path))


@st.cache_data(show_spinner="Rendering tile…")
def tile_images(path: str, tile_id: str, rendering: str) -> catalog.TileViews:
    """HR and LR renderings of one tile."""
    return catalog.tile_views(path, tile_id, rendering)
