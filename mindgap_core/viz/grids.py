"""Plotly figures of a scene's tile grid."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

SPLIT_COLOURS: dict[str, str] = {"train": "#4c78a8", "val": "#f58518", "test": "#54a24b"}


def tile_split_figure(grid: pd.DataFrame) -> go.Figure:
    """The tile grid (rows × cols) with each tile coloured by its split; hover shows tile and block."""
    fig = go.Figure()
    for split, colour in SPLIT_COLOURS.items():
        part = grid[grid["split"] == split]
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part["col"], y=part["row"], mode="markers+text", name=split, text=part["tile_id"],
                textposition="middle center", textfont={"size": 9, "color": "white"},
                marker={"symbol": "square", "size": 46, "color": colour},
                customdata=part[["block_id"]].to_numpy(),
                hovertemplate="tile %{text}<br>block %{customdata[0]}<br>split " + split + "<extra></extra>",
            )
        )
    fig.update_yaxes(autorange="reversed", title="tile row", dtick=1, scaleanchor="x")
    fig.update_xaxes(title="tile column", dtick=1)
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend_title="split",
                      title="Spatial block splits (no block in two splits)")
    return fig
