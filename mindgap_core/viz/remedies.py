"""Plotly figure of the remedies comparison (:mod:`mindgap_core.attribution.remedies`)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from mindgap_core.viz.figures import _MARGIN, _axis_title, esc

_REMEDY_COLOURS = ("#4c78a8", "#e45756", "#54a24b", "#f58518", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")


def remedy_figure(table: pd.DataFrame, *, metric_label: str, unit: str = "") -> go.Figure:
    """Per method, each remedy's change on the cross-sensor domain versus the synthetic-trained model
    (bars with 95 % CI whiskers; positive = better); the dashed line per method is the synthetic-trained
    model's own gap, i.e. what a remedy would have to recover (its negative)."""
    fig = go.Figure()
    remedies = list(dict.fromkeys(table["remedy"]))
    for i, remedy in enumerate(remedies):
        rows = table[table["remedy"] == remedy]
        fig.add_bar(
            name=esc(remedy), x=[esc(m) for m in rows["method"]], y=rows["delta"],
            marker_color=_REMEDY_COLOURS[i % len(_REMEDY_COLOURS)],
            error_y={"type": "data", "symmetric": False, "array": rows["delta_ci_high"] - rows["delta"],
                     "arrayminus": rows["delta"] - rows["delta_ci_low"]},
            customdata=rows[["model", "recovered_pct", "train_minutes"]].to_numpy(),
            hovertemplate="%{customdata[0]}<br>change %{y:.4g} (%{customdata[1]:.0f} % of the gap)"
                          "<br>training %{customdata[2]:.1f} min<extra></extra>",
        )
    baseline = table[table["regime"] == "synthetic"]
    fig.add_scatter(name="gap of the synthetic-trained model (to recover)",
                    x=[esc(m) for m in baseline["method"]], y=-baseline["gap"], mode="markers",
                    marker={"symbol": "line-ew-open", "size": 40, "color": "black"})
    fig.update_layout(
        barmode="group", margin=_MARGIN, meta="remedy", legend={"orientation": "h", "y": -0.2},
        title=f"Change on the cross-sensor test domain vs the synthetic-trained model ({esc(metric_label)})",
        yaxis_title=_axis_title(f"Δ {metric_label} (positive = better)", unit), xaxis_title="SR method",
    )
    return fig
