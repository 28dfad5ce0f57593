"""Overview: the domain gap of every model for the chosen metric, findings, and the train × test matrix."""

import streamlit as st

from mindgap_core.analysis.headlines import domain_label
from mindgap_ui import exports, navigation, results, state
from mindgap_ui.widgets import md_escape, metric_caption, metric_label, metric_unit

navigation.page_start()
view = state.analysis_page("Overview: the domain gap")
if view.metric is None or view.target_domain is None:
    st.info("These results have no cross-sensor test domain to compare with the synthetic one.")
    st.stop()

metric, unit, label = view.metric, metric_unit(view.metric), metric_label(view.metric)
chart_label = metric_label(metric, view.band)
source, target = view.source_domain, view.target_domain
st.markdown(
    f"Each model is scored on the same HR test tiles with **{md_escape(domain_label(source))}** LR inputs "
    f"and with **{md_escape(domain_label(target))}** LR inputs. The gap is the paired difference, signed "
    "so that **negative means worse on the cross-sensor domain**, with a 95 % CI whose independent units "
    "are the spatial blocks of adjacent tiles, not tiles (the table names the interval and the number of "
    "units); rows whose CI includes 0 are *inconclusive* (diversity-scaling models are on the *Scaling & "
    "training* page)."
)
metric_caption(metric)

selection = results.filter_key(view.selection())
filters = view.scope_filters(train_blocks=None)
gap = results.gap_view(view.root, view.fingerprint, metric, results.filter_key(filters), source, target,
                       selection, chart_label)
if gap.table.empty:  # a store holding only a scaling series
    filters = view.scope_filters()
    gap = results.gap_view(view.root, view.fingerprint, metric, results.filter_key(filters), source, target,
                           selection, chart_label)
if gap.table.empty:
    st.info(f"No tile was scored by {label} in both domains for this selection.")
    st.stop()
table = gap.table

st.header(f"Gap by method and training regime ({chart_label})")
st.plotly_chart(gap.figure, width="stretch", key="gap_matrix")
exports.figure_download(gap.figure, exports.file_stem("gap_matrix", metric, view.band, view.run_id))

st.subheader("Findings")
st.markdown("\n".join(f"- {md_escape(text)}" for text in gap.findings))

with st.expander("Gap table (numbers behind the matrix)"):
    shown = table.drop(columns=["higher_better"])
    st.dataframe(shown, width="stretch", hide_index=True)
    exports.table_downloads(shown, exports.file_stem("gap_table", metric, view.band, view.run_id),
                            label="gap table")

st.header("Every metric at a glance")
st.caption("Relative gap in % of the synthetic-domain mean per model and metric (one DuckDB query; "
           "no CIs; negative = worse on the cross-sensor domain).")
wide = results.glance(view.root, view.fingerprint,
                      results.filter_key({k: v for k, v in filters.items() if k != "metric"}), source, target,
                      selection)
if not wide.empty:
    st.dataframe(wide, width="stretch")

st.header(f"Training domain × test domain ({chart_label})")
st.caption("Mean score over test tiles of all models trained on each domain (95 % CI over spatial blocks).")
matrix = results.train_test_view(view.root, view.fingerprint, metric,
                                 results.filter_key(view.score_filters()), chart_label)
st.plotly_chart(matrix.figure, width="stretch", key="train_test")
exports.figure_download(matrix.figure, exports.file_stem("train_test", metric, view.band, view.run_id))

st.header("Data")
exports.table_downloads(
    lambda: results.rows(view.root, view.fingerprint, results.filter_key(view.score_filters(metric=metric))),
    exports.file_stem("results", metric, view.run_id), label="filtered result rows")

st.header("Look closer")
links = state.view_query_params()
for column, (name, link_label) in zip(st.columns(3), (
    ("distributions", "Per-tile distributions"), ("lpips_sat", None), ("scaling", None),
), strict=True):
    navigation.page_link(name, label=link_label, query_params=links, container=column)
