"""Plotly figures of the gap attribution. Builders only (no Streamlit, no statistics): they draw rows of
:func:`mindgap_core.attribution.decompose.attribution_table` that carry a ``label`` column
(:func:`mindgap_ui.attribution.attribution` adds it). Several models are drawn as facets, one per model.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mindgap_core.analysis.headlines import format_value
from mindgap_core.viz.figures import esc

FACET_COLUMNS = 3
#: better / worse on the cross-sensor domain, and the total bar
BETTER, WORSE, TOTAL = "#54a24b", "#e45756", "#4c78a8"
KIND_COLOURS = {"single": "#4c78a8", "leave_one_out": "#f58518"}
KIND_NAMES = {"single": "single effect (alone)", "leave_one_out": "leave-one-out (on top of all others)"}
_MARGIN = {"l": 10, "r": 10, "t": 70, "b": 10}
_ROW_HEIGHT = 380


def waterfall_steps(table: pd.DataFrame) -> pd.DataFrame:
    """One model's rows in waterfall order: baseline, the single-effect terms, interaction, total; with
    ``end``, where each step's bar ends (the running sum; the total's own value)."""
    order = {"baseline": 0, "single": 1, "interaction": 2, "total": 3}
    steps = table[table["kind"].isin(order)]
    steps = steps.sort_values("kind", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    relative = steps["kind"] != "total"
    end = steps["value"].where(relative, 0.0).cumsum().where(relative, steps["value"])
    return steps.assign(end=end)


def _ci_custom(rows: pd.DataFrame) -> np.ndarray:
    return np.column_stack([rows["ci_low"], rows["ci_high"], rows["share_pct"], rows["n_tiles"]])


def _facets(models: list[str]) -> go.Figure:
    if len(models) == 1:
        return go.Figure()
    cols = min(FACET_COLUMNS, len(models))
    rows = math.ceil(len(models) / cols)
    return make_subplots(rows=rows, cols=cols, subplot_titles=[esc(m) for m in models],
                         vertical_spacing=min(0.3 / rows, 0.12), horizontal_spacing=0.08)


def _cell(models: list[str], index: int) -> dict[str, int | None]:
    if len(models) == 1:
        return {"row": None, "col": None}
    cols = min(FACET_COLUMNS, len(models))
    return {"row": index // cols + 1, "col": index % cols + 1}


def _layout(fig: go.Figure, models: list[str], title: str, axis: str, **extra) -> go.Figure:
    rows = math.ceil(len(models) / min(FACET_COLUMNS, len(models)))
    fig.add_hline(y=0, line={"color": "rgba(120,120,120,0.8)", "width": 1})
    fig.update_yaxes(title=esc(axis), **({} if len(models) == 1 else {"col": 1}))
    fig.update_layout(title=esc(title), height=_ROW_HEIGHT * rows + 60, margin=_MARGIN, **extra)
    return fig


def _waterfall_traces(steps: pd.DataFrame, legend: bool) -> tuple[go.Waterfall, go.Scatter]:
    labels = [esc(x) for x in steps["label"]]
    measure = ["total" if k == "total" else "relative" for k in steps["kind"]]
    bars = go.Waterfall(
        x=labels, y=steps["value"], measure=measure, name="gap by effect", showlegend=False,
        text=[format_value(v, signed=True) for v in steps["value"]], textposition="auto",
        insidetextanchor="middle",
        increasing={"marker": {"color": BETTER}}, decreasing={"marker": {"color": WORSE}},
        totals={"marker": {"color": TOTAL}},
        connector={"line": {"color": "rgba(120,120,120,0.6)", "dash": "dot"}},
        customdata=_ci_custom(steps),
        hovertemplate=("%{x}<br>term %{text}<br>95 % CI [%{customdata[0]:.4g}, %{customdata[1]:.4g}]<br>"
                       "%{customdata[2]:.1f} % of the total<br>%{customdata[3]} tiles<extra></extra>"),
    )
    whiskers = go.Scatter(
        x=labels, y=steps["end"], mode="markers", name="95 % CI of the term", legendgroup="ci",
        showlegend=legend, marker={"size": 5, "color": "rgba(40,40,40,0.9)"}, hoverinfo="skip",
        error_y={"type": "data", "symmetric": False, "array": steps["ci_high"] - steps["value"],
                 "arrayminus": steps["value"] - steps["ci_low"], "color": "rgba(40,40,40,0.9)"},
    )
    return bars, whiskers


def waterfall_figure(table: pd.DataFrame, *, metric_label: str, unit: str = "") -> go.Figure:
    """The gap from the resampling baseline through each effect alone and their interaction to the
    total, per model; each step carries its term's 95 % CI as a whisker at the step's end."""
    models = list(dict.fromkeys(table["model"]))
    fig = _facets(models)
    for i, model in enumerate(models):
        for trace in _waterfall_traces(waterfall_steps(table[table["model"] == model]), legend=i == 0):
            fig.add_trace(trace, **_cell(models, i))
    title = f"{metric_label}: gap by effect, baseline to total (negative = worse on cross-sensor)"
    if len(models) == 1:
        title = f"{models[0]} · {title}"
    return _layout(fig, models, title, _axis(metric_label, unit))


def _axis(metric_label: str, unit: str) -> str:
    return f"gap in {metric_label} ({unit})" if unit else f"gap in {metric_label}"


def single_vs_loo_figure(table: pd.DataFrame, *, metric_label: str, unit: str = "") -> go.Figure:
    """Per effect, its gap alone (single) and what it adds with every other effect on (leave-one-out),
    grouped bars with 95 % CIs; one facet per model. Differences between the two are interactions."""
    models = list(dict.fromkeys(table["model"]))
    fig = _facets(models)
    for i, model in enumerate(models):
        rows = table[table["model"] == model]
        for kind, colour in KIND_COLOURS.items():
            part = rows[rows["kind"] == kind]
            fig.add_trace(go.Bar(
                x=[esc(x) for x in part["label"]], y=part["value"], name=KIND_NAMES[kind], legendgroup=kind,
                showlegend=i == 0, marker={"color": colour}, customdata=_ci_custom(part),
                error_y={"type": "data", "symmetric": False, "array": part["ci_high"] - part["value"],
                         "arrayminus": part["value"] - part["ci_low"]},
                hovertemplate=(f"%{{x}} · {esc(KIND_NAMES[kind])}<br>%{{y:.4g}}<br>95 % CI "
                               "[%{customdata[0]:.4g}, %{customdata[1]:.4g}]<br>%{customdata[3]} tiles"
                               "<extra></extra>"),
            ), **_cell(models, i))
    title = f"{metric_label}: each effect alone vs on top of all others (95 % CI)"
    if len(models) == 1:
        title = f"{models[0]} · {title}"
    return _layout(fig, models, title, _axis(metric_label, unit), barmode="group")
