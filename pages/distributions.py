"""Distributions: per-tile scores of one model on the synthetic and the cross-sensor test domain."""

import streamlit as st

from mindgap_core.analysis.headlines import domain_label, format_value
from mindgap_core.viz import figures
from mindgap_ui import exports, navigation, results, state
from mindgap_ui.widgets import md_escape, metric_caption, metric_label, metric_unit

PLOT_LABELS = {"violin": "Violin", "ecdf": "ECDF", "histogram": "Histogram"}

navigation.page_start()
view = state.analysis_page("Score distributions: synthetic vs cross-sensor")
if view.metric is None or view.target_domain is None:
    st.info("These results have no cross-sensor test domain to compare with the synthetic one.")
    st.stop()

metric, unit, label = view.metric, metric_unit(view.metric), metric_label(view.metric)
chart_label = metric_label(metric, view.band)
source, target = view.source_domain, view.target_domain
base = view.scope_filters(metric=metric, split="test")  # + the model: its method and regime are fixed
models = list(results.models(view.root, view.fingerprint, results.filter_key(base),
                             results.filter_key(view.selection())))
if not models:
    st.info(f"No {label} scores for this selection.")
    st.stop()
left, right = st.columns([2, 1])
model = state.page_choice("Model", models, "model", container=left)
kind = state.page_choice("Plot", list(PLOT_LABELS), "plot", radio=True, horizontal=True,
                         format_func=PLOT_LABELS.get, container=right)
metric_caption(metric)

filters = {**base, "model": model, "test_domain": [source, target]}
key = results.filter_key(filters)
tiles = results.tile_scores(view.root, view.fingerprint, key, ("test_domain",))
means = results.domain_means(view.root, view.fingerprint, key, ("test_domain",))
pairs = results.paired(view.root, view.fingerprint, key, source, target)
gap = results.gaps(view.root, view.fingerprint, metric, results.filter_key({**base, "model": model}), source,
                   target, ("model", "metric"))

st.subheader(f"{md_escape(model)}: mean {label} with 95 % CIs over spatial blocks")
columns = st.columns(3)
for column, domain in zip(columns[:2], (source, target), strict=True):
    row = means[means["test_domain"] == domain]
    if row.empty:
        column.metric(domain_label(domain), "n/a")
        continue
    row = row.iloc[0]
    column.metric(domain_label(domain), format_value(row["mean"], unit),
                  help=f"95 % CI [{format_value(row['ci_low'])}, {format_value(row['ci_high'])}], "
                       f"{int(row['n_tiles'])} tiles")
if not gap.empty:
    g = gap.iloc[0]
    ci = f"[{format_value(g['gap_ci_low'], unit, True)}, {format_value(g['gap_ci_high'], unit, True)}]"
    columns[2].metric("gap (negative = worse on cross-sensor)", format_value(g["gap"], unit, signed=True),
                      delta=g["verdict"], delta_color="off",
                      help=f"95 % CI {ci}, Holm-adjusted p {g['p_adjusted']:.3g}, {int(g['n_tiles'])} tiles "
                           f"in {int(g['n_units'])} {g['unit']}s")
    st.caption(f"Gap 95 % CI {ci}, paired over {int(g['n_tiles'])} tiles, over their spatial blocks: "
               f"{g['ci_method']}; t-test p = {g['p_value']:.3g} ({g['verdict']}).")

dist_fig = figures.distribution_figure(tiles, kind=kind, metric_label=chart_label, unit=unit,
                                       domains=[source, target])
st.plotly_chart(dist_fig, width="stretch", key="distribution")
exports.figure_download(dist_fig, exports.file_stem("distribution", model, metric, kind))

left, right = st.columns(2)
with left:
    higher_better = bool(gap["higher_better"].iloc[0]) if not gap.empty else True
    scatter = figures.paired_scatter_figure(pairs, metric_label=chart_label, unit=unit, source_domain=source,
                                            target_domain=target, higher_better=higher_better)
    st.plotly_chart(scatter, width="stretch", key="paired_scatter")
    exports.figure_download(scatter, exports.file_stem("paired", model, metric))
with right:
    ci_fig = figures.mean_ci_figure(means, metric_label=chart_label, unit=unit, domains=[source, target])
    st.plotly_chart(ci_fig, width="stretch", key="mean_ci")
    exports.figure_download(ci_fig, exports.file_stem("means", model, metric))

with st.expander("Per-tile scores"):
    st.dataframe(pairs.rename(columns={"source": source, "target": target}).drop(columns=["higher_better"]),
                 width="stretch", hide_index=True)
    exports.table_downloads(pairs, exports.file_stem("paired_tiles", model, metric), label="paired tiles")
exports.table_downloads(lambda: results.rows(view.root, view.fingerprint, key),
                        exports.file_stem("results", model, metric), label="result rows of this model")
navigation.page_link("overview", label="Back to the overview", query_params=state.view_query_params())
