"""Scaling & training: diversity-scaling curves with CIs, and the training loss curves of the models."""

import streamlit as st

from mindgap_core.analysis.headlines import scaling_findings
from mindgap_core.viz import figures
from mindgap_ui import exports, navigation, results, state
from mindgap_ui.widgets import md_escape, metric_caption, metric_label, metric_unit

navigation.page_start()
view = state.analysis_page("Scaling & training")

st.header("Diversity scaling")
st.markdown(
    "Models of a diversity-scaling series were trained on 1, 2, 4 … distinct regions (spatial blocks) at "
    "a fixed step budget. A curve per model and test domain shows the mean score on the test tiles with "
    "its 95 % CI over spatial blocks; the trend is the least-squares slope per doubling of blocks. The "
    "*fixed-size* series holds the number of training pairs constant while the blocks vary, so diversity is "
    "not confounded with data size."
)
if view.metric is None:
    st.info("No metric in these results.")
    st.stop()
metric, unit, label = view.metric, metric_unit(view.metric), metric_label(view.metric)
metric_caption(metric)
curve, trend = results.scaling(view.root, view.fingerprint, metric, results.filter_key(view.score_filters()))
if curve.empty:
    st.info("No diversity-scaling series in this selection: no result row carries a number of training "
            "blocks. Train models with `mindgap train --blocks K` for several K and evaluate them together.")
else:
    fig = figures.scaling_figure(curve, metric_label=metric_label(metric, view.band), unit=unit)
    st.plotly_chart(fig, width="stretch", key="scaling_curve")
    exports.figure_download(fig, exports.file_stem("scaling", metric, view.run_id))
    sentences = scaling_findings(trend, metric_label=label, unit=unit)
    if sentences:
        st.markdown("\n".join(f"- {md_escape(s)}" for s in sentences))
    with st.expander("Scaling numbers"):
        st.dataframe(curve.drop(columns=["higher_better"]), width="stretch", hide_index=True)
        st.dataframe(trend.drop(columns=["higher_better"]), width="stretch", hide_index=True)
        exports.table_downloads(curve, exports.file_stem("scaling_curve", metric, view.run_id), label="curve")

st.header("Training loss")
logs, missing, origin = results.loss_logs(view.root, view.run_id)
if logs.empty:
    if origin:
        st.info(f"The models found through {origin} have no loss log (`loss.csv`): "
                f"{md_escape(', '.join(missing)) or 'none'}. Only models trained by `mindgap train` have "
                "one.")
    else:
        st.info("No trained model folders found for this run: its run record names no experiment file that "
                "still exists here (and, for the demo, `data/demo/models/` holds no trained model yet). "
                "Loss logs are the `loss.csv` files that `mindgap train` writes into each model folder.")
else:
    models = sorted(logs["model"].unique())
    chosen = st.multiselect("Models", models, default=models, key="loss_models")
    log_y = st.toggle("Logarithmic loss axis", value=st.query_params.get("logy", "1") == "1", key="loss_logy")
    st.query_params["logy"] = "1" if log_y else "0"
    loss_fig = figures.loss_figure(logs[logs["model"].isin(chosen)], log_y=log_y)
    st.plotly_chart(loss_fig, width="stretch", key="loss_curve")
    exports.figure_download(loss_fig, exports.file_stem("training_loss", view.run_id))
    without = (f"Without a loss log (untrained or not trained by `mindgap train`): "
               f"{md_escape(', '.join(missing))}." if missing else "")
    st.caption(f"Model folders found through {origin}. {without}")
    exports.table_downloads(logs, exports.file_stem("training_loss", view.run_id), label="loss logs")
navigation.page_link("overview", label="Back to the overview", query_params=state.view_query_params())
