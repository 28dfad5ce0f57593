"""LPIPS-Sat heatmaps: where over the scene a model's output is perceptually far from the HR reference."""

import streamlit as st

from mindgap_core.analysis.headlines import domain_label, format_value
from mindgap_core.viz import figures
from mindgap_core.viz.mosaic import shared_range
from mindgap_ui import exports, navigation, results, state
from mindgap_ui.widgets import md_escape, metric_caption

METRIC = "lpips_sat"
LABEL = "LPIPS-Sat"

navigation.page_start()
view = state.analysis_page("LPIPS-Sat heatmaps")
st.markdown(
    "LPIPS-Sat is LPIPS's formula on the features of a 4-band (B, G, R, NIR) encoder trained "
    "self-supervised on satellite imagery; its spatial form (before the spatial mean) shows *where* the "
    "super-resolved image differs perceptually from the HR reference (lower is better)."
)
metric_caption(METRIC)
if view.target_domain is None:
    st.info("These results have no cross-sensor test domain to compare with the synthetic one.")
    st.stop()
source, target = view.source_domain, view.target_domain

# the run's rows (the model, picked from the sidebar's method/regime selection, fixes the rest)
base = {**view.scope_filters(), "metric": METRIC, "split": "test", "test_domain": [source, target]}
base.pop("band", None)  # LPIPS-Sat is scored on all bands together
models = list(results.models(view.root, view.fingerprint, results.filter_key(base),
                             results.filter_key(view.selection())))
if not models:
    st.info("No LPIPS-Sat scores in this selection: the evaluation did not include `lpips_sat` (it needs "
            "the backbone shipped in `data/lpips_sat/`, made by `mindgap ssl-pretrain`, or SSL4EO-S12 "
            "weights), so there are no LPIPS-Sat maps to show.")
    st.stop()
model = state.page_choice("Model", models, "model")
rows = results.rows(view.root, view.fingerprint, results.filter_key({**base, "model": model}))
with_maps = rows[rows["map_path"] != ""].sort_values(["test_domain", "tile_id", "options"])
seeds = with_maps.drop_duplicates(["test_domain", "tile_id"])

if seeds.empty:
    st.info(f"{md_escape(model)} has LPIPS-Sat scores but no saved maps: add `lpips_sat` to `save_maps` in "
            "the experiment file to get them.")
else:
    mosaics = {}
    for domain in (source, target):
        part = seeds[seeds["test_domain"] == domain]
        if not part.empty:
            tiles = tuple(zip(part["tile_id"], part["map_path"], strict=True))
            mosaics[domain] = results.mosaic(view.root, tiles)
    if len(mosaics) < 2:
        found = ", ".join(map(domain_label, mosaics))
        st.info(f"LPIPS-Sat maps exist for {md_escape(found)} only; both domains are needed.")
    else:
        zrange = shared_range(list(mosaics.values()))
        fig = figures.mosaic_pair_figure(
            mosaics[source], mosaics[target], value_label=LABEL, zrange=zrange,
            titles=(f"{model} on {domain_label(source)}", f"{model} on {domain_label(target)}"),
        )
        st.plotly_chart(fig, width="stretch", key="lpips_sat_maps")
        exports.figure_download(fig, exports.file_stem("lpips_sat_maps", model))
        factor = mosaics[source].transform.a
        seeds_note = "One seed's map per tile is shown." if with_maps["options"].nunique() > 1 else ""
        st.caption(f"Test tiles placed by their georeferencing; display pixel {factor:g} m (maps averaged "
                   "to at most 256 px per side). Shared colour scale: minimum to 99th percentile of both "
                   f"maps. {seeds_note}")

key = results.filter_key({**base, "model": model})
means = results.domain_means(view.root, view.fingerprint, key, ("test_domain",))
gap_filters = {**{k: v for k, v in base.items() if k != "test_domain"}, "model": model}
gap = results.gaps(view.root, view.fingerprint, METRIC, results.filter_key(gap_filters), source, target,
                   ("model", "metric"))
columns = st.columns(3)
for column, domain in zip(columns[:2], (source, target), strict=True):
    row = means[means["test_domain"] == domain]
    if not row.empty:
        row = row.iloc[0]
        column.metric(f"mean {LABEL}, {domain_label(domain)}", format_value(row["mean"]),
                      help=f"95 % CI [{format_value(row['ci_low'])}, {format_value(row['ci_high'])}]")
if not gap.empty:
    g = gap.iloc[0]
    columns[2].metric("gap (negative = worse on cross-sensor)", format_value(g["gap"], signed=True),
                      help=f"95 % CI [{format_value(g['gap_ci_low'], signed=True)}, "
                           f"{format_value(g['gap_ci_high'], signed=True)}]")

st.header("LPIPS-Sat vs standard LPIPS")
lpips_filters = {**base, "model": model, "metric": "lpips"}
lpips_tiles = results.tile_scores(view.root, view.fingerprint, results.filter_key(lpips_filters),
                                  ("test_domain",))
if lpips_tiles.empty:
    reason = results.lpips_unavailable_reason()
    st.info("Standard LPIPS was not scored for this model, so there is nothing to compare with. "
            + (md_escape(reason) if reason else "Its weights are present on this machine: add `lpips` to the "
               "experiment's metrics to score it."))
else:
    sat_tiles = results.tile_scores(view.root, view.fingerprint, key, ("test_domain",))
    both = sat_tiles.merge(lpips_tiles, on=["test_domain", "tile_id"], suffixes=("_sat", "_lpips"))
    both = both.rename(columns={"value_lpips": "x", "value_sat": "y"})
    comparison = figures.metric_scatter_figure(both, x_label="LPIPS", y_label=LABEL)
    st.plotly_chart(comparison, width="stretch", key="lpips_comparison")
    exports.figure_download(comparison, exports.file_stem("lpips_vs_lpips_sat", model))

exports.table_downloads(rows, exports.file_stem("lpips_sat_rows", model), label="LPIPS-Sat rows")
navigation.page_link("overview", label="Back to the overview", query_params=state.view_query_params())
