"""Calibration under shift: do the diffusion models' samples know when they are out of domain?
Reliability curves per test domain, the calibration gap, and a tile's error beside its uncertainty."""

import streamlit as st

from mindgap_core.analysis.gap import target_minus_source
from mindgap_core.analysis.headlines import domain_label
from mindgap_core.viz import calibration as calibration_figures
from mindgap_ui import calibration, exports, navigation, state
from mindgap_ui.widgets import md_escape

navigation.page_start()
view = state.analysis_page("Calibration under shift")
source, target = view.source_domain, view.target_domain
st.markdown(
    "A stochastic SR model gives a distribution, not one image. Each tile is super-resolved with N samples; "
    "the **coverage** of a central sample interval is the share of HR values inside it (calibrated = the "
    "nominal level; below = over-confident). The **calibration gap** is the paired change of these scores "
    f"from **{md_escape(domain_label(source))}** to **{md_escape(domain_label(target or ''))}** input, with "
    "95 % CIs over spatial blocks. Deterministic models (bicubic, the regression CNN) have no uncertainty "
    "and are not shown. CLI: `mindgap gap --uncertainty --results RESULTS`."
)
scope = {k: v for k, v in view.filters().items() if k == "run_id"}
means = calibration.calibration_means(view.root, view.fingerprint, tuple(sorted(scope.items())))
if means.empty:
    st.info("No calibration scores in these results: score a stochastic model with `samples` > 1 and the "
            "coverage metrics (as `data/demo/experiment.yaml` does), then reload.")
    st.stop()

models = sorted(means["model"].unique())
both = [m for m in models if means.loc[means["model"] == m, "test_domain"].nunique() > 1]
model = state.page_choice("Model", models, "calibration_model", default=(both or models)[0])
chosen = means[means["model"] == model]
figure = calibration_figures.reliability_figure(chosen, model=model)
st.plotly_chart(figure, width="stretch", key="reliability")
exports.figure_download(figure, exports.file_stem("reliability", model, view.run_id))

st.header("Calibration gap")
if target is None:
    st.info("These results have a single test domain: no calibration gap to compute.")
else:
    key = tuple(sorted(scope.items()))
    gap = calibration.calibration_gap(view.root, view.fingerprint, key, source, target)
    if gap.empty:
        st.info("No model has calibration scores on both test domains.")
    else:
        columns = {"change_ci_low": "ci_low", "change_ci_high": "ci_high"}
        shown = target_minus_source(gap).rename(columns=columns)[
            ["model", "metric", "n_tiles", "n_units", "mean_source", "mean_target", "change", "ci_low",
             "ci_high", "p_adjusted", "verdict", "ci_method"]]
        st.caption(f"change = {target} − {source}; a positive change of calibration_error = calibration "
                   "lost. Holm-adjusted p over the table's rows.")
        st.dataframe(shown, hide_index=True, width="stretch")
        exports.table_downloads(shown, exports.file_stem("calibration_gap", view.run_id),
                                label="calibration gap")

st.header("Error and uncertainty of a tile")
domains = sorted(chosen["test_domain"].unique())
domain = state.page_choice("Test domain", domains, "calibration_domain")
tiles = calibration.tile_rasters(view.root, view.fingerprint, view.run_id or "", model, domain)
if tiles.empty:
    st.info(f"No SR and uncertainty rasters of {md_escape(model)} are stored for this domain (an experiment "
            "stores them for the models in its `save_outputs`). Run on-demand inference with samples > 1 to "
            "see a tile's spread map.")
else:
    tile = state.page_choice("Tile", list(tiles["tile_id"]), "calibration_tile")
    row = tiles[tiles["tile_id"] == tile].iloc[0]
    maps = calibration_figures.error_and_spread(row["sr"], row["uncertainty"], row["hr"])
    fig = calibration_figures.error_spread_figure(
        maps, title=f"{model} · {domain_label(domain)} · tile {tile}: error beside spread, one colour scale")
    st.plotly_chart(fig, width="stretch", key="error_spread")
