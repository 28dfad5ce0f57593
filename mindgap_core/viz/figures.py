"""Plotly figures of the analysis pages. Builders only: they draw tables computed by
:mod:`mindgap_core.analysis` / :mod:`mindgap_core.store.views` and compute no score.

Every label that comes from data (model, method, regime, domain names) is HTML-escaped before it
reaches plotly, whose text fields accept HTML-like markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly import colors as px_colors
from plotly.colors import hex_to_rgb
from plotly.subplots import make_subplots

from mindgap_core.analysis.headlines import domain_label, format_value
from mindgap_core.viz.mosaic import Mosaic

DISTRIBUTION_KINDS = ("violin", "ecdf", "histogram")
#: plotly's Inferno as rgb() strings: Streamlit's chart theme rewrites the hex codes "#000001"... (its
#: placeholder colours), and Inferno starts at "#000004"
INFERNO = [[i / (len(px_colors.sequential.Inferno) - 1), "rgb({}, {}, {})".format(*hex_to_rgb(c))]
           for i, c in enumerate(px_colors.sequential.Inferno)]
DOMAIN_COLOURS = {"synthetic": "#4c78a8", "simulated_cross_sensor": "#e45756", "real_cross_sensor": "#b279a2"}
_FALLBACK_COLOURS = ("#54a24b", "#f58518", "#72b7b2", "#eeca3b", "#9d755d", "#bab0ac")
_MARGIN = {"l": 10, "r": 10, "t": 50, "b": 10}


def esc(text: object) -> str:
    """``text`` made safe for plotly's HTML-like text fields."""
    return html.escape(str(text), quote=True)


def domain_colour(domain: str, index: int = 0) -> str:
    """A fixed colour per test domain (same colour on every page)."""
    return DOMAIN_COLOURS.get(domain, _FALLBACK_COLOURS[index % len(_FALLBACK_COLOURS)])


def _axis_title(metric_label: str, unit: str) -> str:
    return esc(f"{metric_label} ({unit})" if unit else metric_label)


def _ci_text(value: float, low: float, high: float, unit: str = "", signed: bool = False) -> str:
    main = format_value(value, "", signed)
    if not (np.isfinite(low) and np.isfinite(high)):
        return main
    return f"{main}<br>[{format_value(low, '', signed)}, {format_value(high, '', signed)}]"


def _column_labels(table: pd.DataFrame) -> pd.Series:
    """Regime labels, with the train domain added when one regime has several train domains."""
    labels = table["regime"].astype(str)
    if "train_domain" in table and table.duplicated(["method", "regime"]).any():
        labels = labels + " · " + table["train_domain"].map(domain_label)
    return labels


def gap_matrix_figure(table: pd.DataFrame, *, metric_label: str, unit: str = "") -> go.Figure:
    """Heatmap method × regime of the paired gap (rows of ``gap_table`` for one metric), CI in the cells.

    Negative (red) = worse on the target domain. Hover: both means, error ratio, CI with its units
    (tiles / spatial blocks), Holm-adjusted p and verdict.
    """
    fig = go.Figure()
    if table.empty:
        return fig.update_layout(title="No paired tiles")
    table = table.assign(column_label=_column_labels(table))
    methods = list(dict.fromkeys(table["method"].astype(str)))
    columns = list(dict.fromkeys(table["column_label"]))
    z = np.full((len(methods), len(columns)), np.nan)
    text = np.full(z.shape, "", dtype=object)
    custom = np.full(z.shape + (8,), np.nan, dtype=object)
    for row in table.itertuples(index=False):
        i, j = methods.index(str(row.method)), columns.index(row.column_label)
        z[i, j] = row.gap
        text[i, j] = _ci_text(row.gap, row.gap_ci_low, row.gap_ci_high, signed=True)
        ratio = (f"{esc(str(row.ratio_of)).upper()} ×{format_value(row.ratio)}"
                 if getattr(row, "ratio_of", "") and np.isfinite(row.ratio) else "no ratio")
        custom[i, j] = [format_value(row.mean_source, unit), format_value(row.mean_target, unit), ratio,
                        format_value(row.gap_ci_low, "", True), format_value(row.gap_ci_high, "", True),
                        f"Holm-adjusted p {row.p_adjusted:.3g}, {esc(row.verdict)}",
                        f"{int(row.n_tiles)} paired tiles in {int(row.n_units)} {esc(row.unit)}s",
                        esc(domain_label(getattr(row, "train_domain", "")))]
    bound = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    source = esc(domain_label(table["source_domain"].iloc[0]))
    target = esc(domain_label(table["target_domain"].iloc[0]))
    fig.add_trace(go.Heatmap(
        z=z, x=[esc(c) for c in columns], y=[esc(m) for m in methods], text=text,
        texttemplate="%{text}", customdata=custom, colorscale="RdBu", zmid=0.0, zmin=-bound, zmax=bound,
        colorbar={"title": {"text": esc(f"gap ({unit})" if unit else "gap")}},
        hovertemplate=(
            "method %{y}<br>regime %{x}<br>trained on %{customdata[7]}<br>"
            f"gap %{{z:+.4g}} {esc(unit)} (%{{customdata[2]}})<br>"
            "95 % CI [%{customdata[3]}, %{customdata[4]}]<br>"
            f"mean on {source}: %{{customdata[0]}}<br>mean on {target}: %{{customdata[1]}}<br>"
            "%{customdata[5]}; %{customdata[6]}<extra></extra>"
        ),
    ))
    names = (domain_label(table["target_domain"].iloc[0]), domain_label(table["source_domain"].iloc[0]))
    fig.update_layout(
        title=esc(f"{metric_label}: gap {names[0]} − {names[1]} "
                  "(negative = worse on the cross-sensor domain)"),
        height=max(260, 90 * len(methods) + 120), margin=_MARGIN,
    )
    fig.update_xaxes(title="training regime", side="bottom")
    fig.update_yaxes(title="method", autorange="reversed")
    return fig


def train_test_figure(table: pd.DataFrame, *, metric_label: str, unit: str = "") -> go.Figure:
    """Heatmap train domain × test domain of the mean score (rows of ``train_test_matrix``), CI in cells."""
    fig = go.Figure()
    if table.empty:
        return fig.update_layout(title="No results")
    trains = list(dict.fromkeys(table["train_domain"].astype(str)))
    tests = list(dict.fromkeys(table["test_domain"].astype(str)))
    z = np.full((len(trains), len(tests)), np.nan)
    text = np.full(z.shape, "", dtype=object)
    tiles = np.zeros(z.shape, dtype=int)
    for row in table.itertuples(index=False):
        i, j = trains.index(str(row.train_domain)), tests.index(str(row.test_domain))
        z[i, j] = row.mean
        text[i, j] = _ci_text(row.mean, row.ci_low, row.ci_high)
        tiles[i, j] = row.n_tiles
    higher_better = bool(table["higher_better"].iloc[0])
    fig.add_trace(go.Heatmap(
        z=z, x=[esc(domain_label(t)) for t in tests], y=[esc(domain_label(t)) for t in trains], text=text,
        texttemplate="%{text}", customdata=tiles, colorscale="Viridis", reversescale=not higher_better,
        colorbar={"title": {"text": _axis_title(metric_label, unit)}},
        hovertemplate=("trained on %{y}<br>tested on %{x}<br>mean %{z:.4g}<br>"
                       "%{customdata} tiles<extra></extra>"),
    ))
    fig.update_layout(title=esc(f"Mean {metric_label} by training domain × test domain "
                                f"({'higher' if higher_better else 'lower'} is better)"),
                      height=max(240, 80 * len(trains) + 140), margin=_MARGIN)
    fig.update_xaxes(title="test domain")
    fig.update_yaxes(title="training domain", autorange="reversed")
    return fig


def distribution_figure(tiles: pd.DataFrame, *, kind: str, metric_label: str, unit: str = "",
                        domains: Sequence[str] | None = None) -> go.Figure:
    """Per-tile scores of each test domain (``test_domain``, ``tile_id``, ``value``) as violins, ECDFs
    or overlaid histograms."""
    if kind not in DISTRIBUTION_KINDS:
        raise ValueError(f"kind must be one of {DISTRIBUTION_KINDS}, got {kind!r}")
    fig = go.Figure()
    domains = list(domains) if domains is not None else list(dict.fromkeys(tiles["test_domain"]))
    axis = _axis_title(metric_label, unit)
    for k, domain in enumerate(domains):
        part = tiles[tiles["test_domain"] == domain].sort_values("value")
        name, colour = esc(domain_label(domain)), domain_colour(domain, k)
        ids = [esc(t) for t in part["tile_id"]]
        if kind == "violin":
            fig.add_trace(go.Violin(y=part["value"], name=name, box_visible=True, meanline_visible=True,
                                    points="all", text=ids, line_color=colour,
                                    hovertemplate="tile %{text}<br>%{y:.4g}<extra>" + name + "</extra>"))
        elif kind == "ecdf":
            n = len(part)
            fig.add_trace(go.Scatter(x=part["value"], y=np.arange(1, n + 1) / max(n, 1), mode="lines+markers",
                                     line_shape="hv", name=name, text=ids, line_color=colour,
                                     hovertemplate="tile %{text}<br>%{x:.4g}: %{y:.0%} of tiles ≤<extra>"
                                                   + name + "</extra>"))
        else:
            fig.add_trace(go.Histogram(x=part["value"], name=name, opacity=0.6, marker_color=colour,
                                       hovertemplate="%{x}: %{y} tiles<extra>" + name + "</extra>"))
    if kind == "violin":
        fig.update_yaxes(title=axis)
    elif kind == "ecdf":
        fig.update_xaxes(title=axis)
        fig.update_yaxes(title="fraction of tiles", tickformat=".0%", range=[0, 1.02])
    else:
        fig.update_layout(barmode="overlay")
        fig.update_xaxes(title=axis)
        fig.update_yaxes(title="tiles")
    fig.update_layout(title=esc(f"Per-tile {metric_label} by test domain"), height=420, margin=_MARGIN)
    return fig


def paired_scatter_figure(pairs: pd.DataFrame, *, metric_label: str, unit: str = "", source_domain: str,
                          target_domain: str, higher_better: bool) -> go.Figure:
    """One point per tile: score on the source domain (x) vs on the target domain (y), identity line."""
    fig = go.Figure()
    if pairs.empty:
        return fig.update_layout(title="No paired tiles")
    values = np.concatenate([pairs["source"].to_numpy(float), pairs["target"].to_numpy(float)])
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    pad = 0.05 * (high - low or 1.0)
    line = [low - pad, high + pad]
    worse = "below" if higher_better else "above"
    fig.add_trace(go.Scatter(x=line, y=line, mode="lines", name="identity (no gap)",
                             line={"dash": "dash", "color": "#888"}, hoverinfo="skip"))
    src, tgt = esc(domain_label(source_domain)), esc(domain_label(target_domain))
    fig.add_trace(go.Scatter(
        x=pairs["source"], y=pairs["target"], mode="markers", name="tiles",
        text=[esc(t) for t in pairs["tile_id"]], marker={"size": 9, "color": domain_colour(target_domain)},
        hovertemplate=f"tile %{{text}}<br>{src}: %{{x:.4g}}<br>{tgt}: %{{y:.4g}}<extra></extra>",
    ))
    axis = _axis_title(metric_label, unit)
    fig.update_xaxes(title=f"{axis} on {src}", range=line)
    fig.update_yaxes(title=f"{axis} on {tgt}", range=line, scaleanchor="x")
    fig.update_layout(title=f"Paired tiles ({esc(metric_label)}): points {worse} the line are worse on {tgt}",
                      height=460, margin=_MARGIN)
    return fig


def mean_ci_figure(means: pd.DataFrame, *, metric_label: str, unit: str = "",
                   domains: Sequence[str] | None = None) -> go.Figure:
    """Mean per test domain with its CI (rows of ``mean_table``: test_domain, mean, ci_low, ci_high,
    n_tiles, and ``ci_method`` when present), in the order of ``domains`` when given."""
    fig = go.Figure()
    if domains is not None:
        order = {d: i for i, d in enumerate(domains)}
        means = means.sort_values("test_domain", key=lambda s: s.map(order).fillna(len(order)), kind="stable")
    for k, row in enumerate(means.itertuples(index=False)):
        name = esc(domain_label(row.test_domain))
        ci = f"[{format_value(row.ci_low)}, {format_value(row.ci_high)}]"
        fig.add_trace(go.Scatter(
            x=[name], y=[row.mean], mode="markers", name=name,
            marker={"size": 12, "color": domain_colour(row.test_domain, k)},
            error_y={"type": "data", "symmetric": False, "array": [row.ci_high - row.mean],
                     "arrayminus": [row.mean - row.ci_low]},
            hovertemplate=f"mean %{{y:.4g}}<br>95 % CI {ci}<br>{int(row.n_tiles)} tiles<extra></extra>",
        ))
    fig.update_yaxes(title=_axis_title(metric_label, unit))
    method = f" ({means['ci_method'].iloc[0]})" if "ci_method" in means and len(means) else ""
    fig.update_layout(title=esc(f"Mean {metric_label} over tiles, 95 % CI{method}"), height=360,
                      showlegend=False, margin=_MARGIN)
    return fig


def _mosaic_trace(mosaic: Mosaic, name: str) -> go.Heatmap:
    return go.Heatmap(
        z=mosaic.array, x=mosaic.x, y=mosaic.y, coloraxis="coloraxis", name=esc(name),
        hovertemplate="x %{x:.0f}<br>y %{y:.0f}<br>value %{z:.4g}<extra>" + esc(name) + "</extra>",
    )


def _tile_labels(mosaic: Mosaic, name: str, value_label: str) -> go.Scatter:
    t = mosaic.transform
    places = mosaic.placements
    x = t.c + t.a * (places["col0"] + places["cols"] / 2)
    y = t.f + t.e * (places["row0"] + places["rows"] / 2)
    return go.Scatter(
        x=x, y=y, mode="markers", marker={"size": 8, "color": "rgba(0,0,0,0)", "line": {"width": 0}},
        text=[esc(i) for i in places["tile_id"]], customdata=places["mean"], showlegend=False,
        hovertemplate=(f"tile %{{text}}<br>tile mean {esc(value_label)} %{{customdata:.4g}}"
                       f"<extra>{esc(name)}</extra>"),
    )


def mosaic_pair_figure(left: Mosaic, right: Mosaic, *, titles: tuple[str, str], value_label: str,
                       zrange: tuple[float, float]) -> go.Figure:
    """Two mosaics side by side on one colour scale (``zrange``), values and tile means on hover."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[esc(t) for t in titles], horizontal_spacing=0.04,
                        shared_yaxes=True)
    for col, (mosaic, title) in enumerate(((left, titles[0]), (right, titles[1])), start=1):
        fig.add_trace(_mosaic_trace(mosaic, title), row=1, col=col)
        fig.add_trace(_tile_labels(mosaic, title, value_label), row=1, col=col)
        fig.update_xaxes(title="easting (m)" if mosaic.crs else "x", row=1, col=col, showgrid=False)
        fig.update_yaxes(title="northing (m)" if col == 1 and mosaic.crs else None, row=1, col=col,
                         scaleanchor=f"x{'' if col == 1 else col}", showgrid=False)
    fig.update_layout(
        coloraxis={"colorscale": INFERNO, "cmin": zrange[0], "cmax": zrange[1],
                   "colorbar": {"title": {"text": esc(value_label)}}},
        height=520, margin=_MARGIN,
        title=esc(f"{value_label} per pixel (shared colour scale; blank: no test tile)"),
    )
    return fig


def metric_scatter_figure(frame: pd.DataFrame, *, x_label: str, y_label: str) -> go.Figure:
    """Per-tile scores of two metrics (``tile_id``, ``test_domain``, ``x``, ``y``), one colour per domain."""
    fig = go.Figure()
    for k, (domain, part) in enumerate(frame.groupby("test_domain", sort=True)):
        name = esc(domain_label(domain))
        fig.add_trace(go.Scatter(
            x=part["x"], y=part["y"], mode="markers", name=name, text=[esc(t) for t in part["tile_id"]],
            marker={"size": 9, "color": domain_colour(domain, k)},
            hovertemplate=(f"tile %{{text}}<br>{esc(x_label)} %{{x:.4g}}<br>{esc(y_label)} %{{y:.4g}}"
                           f"<extra>{name}</extra>"),
        ))
    fig.update_xaxes(title=esc(x_label))
    fig.update_yaxes(title=esc(y_label))
    fig.update_layout(title=esc(f"{y_label} vs {x_label} per tile"), height=420, margin=_MARGIN)
    return fig


def scaling_figure(curve: pd.DataFrame, *, metric_label: str, unit: str = "") -> go.Figure:
    """Mean score vs number of training blocks (or, in a fixed-size series' size control, of training
    pairs): rows of ``scaling_curve``, one line per model × test domain × series, 95 % CI as error bars;
    log2 x axis."""
    fig = go.Figure()
    if curve.empty:
        return fig.update_layout(title="No diversity-scaling results")
    keys = [k for k in ("method", "regime", "test_domain", "series", "fixed") if k in curve]
    x_column = "level" if "level" in curve else "train_blocks"
    for k, (key, part) in enumerate(curve.groupby(keys, sort=True, dropna=False)):
        key = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        domain = key.get("test_domain", "")
        fixed_unit = "pairs" if key.get("series") == "diversity" else "blocks"
        series = "" if key.get("series") in (None, "confounded") else \
            f", {key['series']} at {int(key['fixed'])} {fixed_unit}"
        name = esc(" / ".join(str(key[c]) for c in ("method", "regime") if c in key)
                   + f" on {domain_label(domain)}{series}")
        part = part.sort_values(x_column)
        fig.add_trace(go.Scatter(
            x=part[x_column], y=part["mean"], mode="lines+markers", name=name,
            line={"color": domain_colour(domain, k), "dash": "solid" if k % 2 == 0 else "dot"},
            error_y={"type": "data", "symmetric": False, "array": part["ci_high"] - part["mean"],
                     "arrayminus": part["mean"] - part["ci_low"]},
            customdata=np.column_stack([part["ci_low"], part["ci_high"], part["n_tiles"]]),
            hovertemplate=("level %{x}<br>mean %{y:.4g}<br>95 % CI [%{customdata[0]:.4g}, "
                           "%{customdata[1]:.4g}]<br>%{customdata[2]} tiles<extra>" + name + "</extra>"),
        ))
    levels = sorted(curve[x_column].unique())
    title = "distinct training blocks" if x_column == "train_blocks" or set(curve.get("series", [])) <= \
        {"diversity", "confounded"} else "training blocks (diversity) or training pairs (size control)"
    fig.update_xaxes(title=f"{title} (log scale)", type="log", tickvals=levels,
                     ticktext=[f"{b:g}" for b in levels])
    fig.update_yaxes(title=_axis_title(metric_label, unit))
    fig.update_layout(title=esc(f"Diversity scaling: {metric_label} vs training diversity"), height=460,
                      margin=_MARGIN)
    return fig


#: line styles that tell apart the models of one method (colour = method)
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star")
#: one colour per SR method (the loss chart's colour key); others cycle through _METHOD_FALLBACK
_METHOD_COLOURS = {"sr3": "#4c78a8", "srdiff": "#f58518", "ldm_sr": "#54a24b", "resshift": "#e45756",
                   "sinsr": "#72b7b2", "regression": "#b279a2", "bicubic": "#9d755d"}
_METHOD_FALLBACK = ("#eeca3b", "#ff9da6", "#bab0ac", "#17becf", "#7f7f7f")


def line_styles(logs: pd.DataFrame) -> dict[str, dict]:
    """model -> its line style: the colour says the method, the dash (then a marker) tells apart the
    models of one method, so no two models look the same however many there are."""
    styles: dict[str, dict] = {}
    methods = list(dict.fromkeys(logs.sort_values("model")["method"].astype(str)))
    for m, method in enumerate(methods):
        colour = _METHOD_COLOURS.get(method, _METHOD_FALLBACK[m % len(_METHOD_FALLBACK)])
        names = sorted(logs.loc[logs["method"].astype(str) == method, "model"].astype(str).unique())
        for k, model in enumerate(names):
            style = {"color": colour, "dash": _DASHES[k % len(_DASHES)]}
            if k >= len(_DASHES):
                style["symbol"] = _SYMBOLS[(k // len(_DASHES) - 1) % len(_SYMBOLS)]
            styles[model] = style
    return styles


def loss_figure(logs: pd.DataFrame, *, log_y: bool = True) -> go.Figure:
    """Training loss vs step, one line per model (rows of ``training_logs.loss_logs``); colour = method,
    dash and marker = the model within its method (:func:`line_styles`)."""
    fig = go.Figure()
    styles = line_styles(logs) if not logs.empty else {}
    for model, part in logs.groupby("model", sort=True):
        first = part.iloc[0]
        name = esc(model)
        style = styles[str(model)]
        symbol = style.get("symbol")
        fig.add_trace(go.Scatter(
            x=part["step"], y=part["loss"], mode="lines+markers" if symbol else "lines", name=name,
            line={"color": style["color"], "dash": style["dash"]},
            marker={"symbol": symbol, "size": 6, "maxdisplayed": 12} if symbol else None,
            customdata=np.column_stack([part["lr"], part["wall_s"]]),
            hovertemplate=(f"{name} ({esc(first['method'])}, {esc(first['regime'])})<br>step %{{x}}<br>"
                           "loss %{y:.4g}<br>lr %{customdata[0]:.3g}<br>%{customdata[1]:.1f} s"
                           "<extra></extra>"),
        ))
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="training loss", type="log" if log_y else "linear")
    fig.update_layout(title="Training loss (colour: method; line style: model)", height=460, margin=_MARGIN)
    return fig
