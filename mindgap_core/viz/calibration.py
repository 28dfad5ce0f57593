"""Figures of the calibration of diffusion samples (docs/statistics.md, "Calibration gap"): reliability
curves per test domain, and a tile's error map beside its uncertainty map on one colour scale.

The numbers come from the results store (coverage rows scored by mindgap_core/metrics/uncertainty.py)
and from the stored rasters (SR = per-pixel mean of the samples, uncertainty = their per-pixel std).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mindgap_core.analysis.headlines import domain_label
from mindgap_core.io import read_raster
from mindgap_core.metrics.registry import COVERAGE_LEVELS, coverage_metric
from mindgap_core.types import GeoRaster
from mindgap_core.viz.figures import esc

#: nominal level of each stored coverage metric
NOMINAL = {coverage_metric(p): p for p in COVERAGE_LEVELS}
_DOMAIN_COLOURS = ("#4c78a8", "#e45756", "#54a24b", "#b279a2")


def reliability_figure(means: pd.DataFrame, *, model: str) -> go.Figure:
    """Observed coverage (mean over tiles, with its CI) against the nominal level of the central sample
    interval, one line per test domain; the diagonal is a calibrated model, below it over-confident.

    ``means``: one model's rows with ``test_domain``, ``metric`` (``coverage_XX``), ``mean``, ``ci_low``,
    ``ci_high`` (as :func:`mindgap_core.analysis.gap.mean_table` gives them)."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated",
                             line={"color": "rgba(120,120,120,0.8)", "dash": "dot"}, hoverinfo="skip"))
    rows = means[means["metric"].isin(NOMINAL)].assign(nominal=lambda t: t["metric"].map(NOMINAL))
    for i, (domain, part) in enumerate(rows.groupby("test_domain", sort=True)):
        part = part.sort_values("nominal")
        fig.add_trace(go.Scatter(
            x=part["nominal"], y=part["mean"], mode="lines+markers", name=esc(domain_label(domain)),
            line={"color": _DOMAIN_COLOURS[i % len(_DOMAIN_COLOURS)]},
            error_y={"type": "data", "symmetric": False, "array": part["ci_high"] - part["mean"],
                     "arrayminus": part["mean"] - part["ci_low"]},
            hovertemplate="nominal %{x:.2f}<br>observed %{y:.3f}<extra></extra>",
        ))
    fig.update_xaxes(title="nominal coverage of the central sample interval", range=[0, 1])
    fig.update_yaxes(title="observed coverage (share of HR values inside)", range=[0, 1])
    title = f"{model}: reliability of the sample intervals (95 % CIs over spatial blocks)"
    fig.update_layout(title=esc(title), height=420, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


@dataclass(frozen=True)
class ErrorSpread:
    """A tile's per-pixel error |SR - HR| and spread (std of the samples), both averaged over bands, in
    reflectance; NaN where a pixel is masked."""

    error: np.ndarray
    spread: np.ndarray


def error_and_spread(sr_path: str | Path, uncertainty_path: str | Path, hr_path: str | Path) -> ErrorSpread:
    """The error and spread maps of one tile from its stored rasters (SR and uncertainty COGs on the HR
    grid, bands named)."""
    hr = read_raster(hr_path)
    sr, spread = (_bands_like(read_raster(p), hr.band_names) for p in (sr_path, uncertainty_path))
    valid = hr.valid & sr.valid
    error = np.abs(sr.array.astype(np.float64) - hr.array).mean(axis=0)
    std = spread.array.astype(np.float64).mean(axis=0)
    return ErrorSpread(np.where(valid, error, np.nan), np.where(valid, std, np.nan))


def _bands_like(raster: GeoRaster, names: tuple[str, ...]) -> GeoRaster:
    """``raster`` with the bands of ``names`` in that order when it names them all, else as stored."""
    return raster.select(names) if set(names) <= set(raster.band_names) else raster


def error_spread_figure(maps: ErrorSpread, *, title: str) -> go.Figure:
    """The error map beside the uncertainty map on one colour scale (0 to the 99th percentile of both),
    so that a spread that matches the error looks the same."""
    both = np.concatenate([maps.error[np.isfinite(maps.error)], maps.spread[np.isfinite(maps.spread)]])
    top = float(np.percentile(both, 99)) if both.size else 1.0
    fig = make_subplots(rows=1, cols=2, subplot_titles=["|SR − HR| (mean over bands)",
                                                        "spread: std of the samples (mean over bands)"],
                        horizontal_spacing=0.04)
    for col, values in ((1, maps.error), (2, maps.spread)):
        fig.add_trace(go.Heatmap(z=values[::-1], zmin=0.0, zmax=top or 1.0, colorscale="Magma",
                                 showscale=col == 2, colorbar={"title": "reflectance"},
                                 hovertemplate="%{z:.4f}<extra></extra>"), row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)
        fig.update_yaxes(showticklabels=False, scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
    fig.update_layout(title=esc(title), height=420, margin={"l": 10, "r": 10, "t": 70, "b": 10})
    return fig
