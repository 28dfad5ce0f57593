"""Download buttons for the data and figures a page shows.

Tables: CSV and Parquet of exactly the rows behind the view. Figures: a self-contained interactive
HTML file (plotly.js embedded, opens offline). PNG export would need the ``kaleido`` package, which
MindGap does not install: use the camera icon of the figure's toolbar, or the HTML file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

PNG_NOTE = ("PNG: use the camera icon in the figure's toolbar (server-side PNG export needs the "
            "`kaleido` package, which is not installed).")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def file_stem(*parts: object) -> str:
    """A safe file name stem from ``parts`` (``"gap", "sr3/real"`` -> ``gap_sr3_real``)."""
    stem = "_".join(_UNSAFE.sub("_", str(p)).strip("_") for p in parts if p not in (None, ""))
    return stem or "mindgap"


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV (no index)."""
    return frame.to_csv(index=False).encode("utf-8")


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as Parquet (no index)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def figure_html(fig: go.Figure) -> str:
    """A standalone HTML page of ``fig`` with plotly.js embedded (works without internet).

    Drawn with plotly's ``plotly_white`` template: figures built in a Streamlit process carry Streamlit's
    chart template, whose placeholder colours ("#000001"...) only the Streamlit frontend resolves.
    """
    portable = go.Figure(fig).update_layout(template="plotly_white")
    return portable.to_html(include_plotlyjs=True, full_html=True)


def table_downloads(frame: pd.DataFrame | Callable[[], pd.DataFrame], stem: str, *, label: str = "data",
                    container=st) -> None:
    """CSV and Parquet download buttons for ``frame`` (a callable is only evaluated on click)."""
    get = frame if callable(frame) else (lambda: frame)
    left, right = container.columns(2)
    left.download_button(f"⬇ {label} (CSV)", data=lambda: csv_bytes(get()), file_name=f"{stem}.csv",
                         mime="text/csv", key=f"dl_csv_{stem}", on_click="ignore")
    right.download_button(f"⬇ {label} (Parquet)", data=lambda: parquet_bytes(get()),
                          file_name=f"{stem}.parquet", mime="application/vnd.apache.parquet",
                          key=f"dl_parquet_{stem}", on_click="ignore")


def figure_download(fig: go.Figure, stem: str, *, container=st) -> None:
    """A download button for ``fig`` as interactive HTML, and the PNG note."""
    container.download_button("⬇ figure (HTML)", data=lambda: figure_html(fig), file_name=f"{stem}.html",
                              mime="text/html", key=f"dl_html_{stem}", on_click="ignore", help=PNG_NOTE)
