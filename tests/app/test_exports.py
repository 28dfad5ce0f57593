"""Exports: table bytes round-trip, figures as offline HTML, safe file names."""

from __future__ import annotations

import io
import re

import pandas as pd
import plotly.graph_objects as go

from mindgap_ui.exports import csv_bytes, figure_html, file_stem, parquet_bytes


def test_tables_round_trip() -> None:
    frame = pd.DataFrame({"model": ["sr3/real", "bicubic"], "value": [1.5, 2.25]})
    assert pd.read_csv(io.BytesIO(csv_bytes(frame))).equals(frame)
    assert pd.read_parquet(io.BytesIO(parquet_bytes(frame))).equals(frame)


def test_figure_html_is_self_contained_and_escapes_names() -> None:
    fig = go.Figure(go.Scatter(x=[1], y=[2], name="</script><script>alert(1)</script>"))
    page = figure_html(fig)
    assert page.startswith("<!doctype html>") and "plotly.js v" in page
    assert re.findall(r"<script[^>]*>", page) == ["<script>"] * 3  # inline scripts only, nothing fetched
    assert "</script><script>alert(1)" not in page
    assert len(page) > 1_000_000  # plotly.js is embedded


def test_figure_html_does_not_keep_streamlit_placeholder_colours() -> None:
    from streamlit.elements.lib import streamlit_plotly_theme  # noqa: F401  (sets the default template)

    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    assert "#000001" in fig.to_json()  # Streamlit's template, resolved only by its frontend
    page = figure_html(fig)
    assert not re.search(r'"#0000(?!00)[0-9a-f]{2}"', page)  # placeholders are #000001 and up


def test_file_stem() -> None:
    assert file_stem("gap", "sr3/real", None, "") == "gap_sr3_real"
    assert file_stem("../../etc/passwd") == "etc_passwd"
    assert file_stem() == "mindgap"
