"""Attribution & remedies: which simulator effects make the synthetic -> cross-sensor gap, and whether
the decoupled pipeline (LR domain adapter + synthetic-trained SR model) closes it.

The page is a sequence of sections, each a function of the view that returns (never ``st.stop()``s)
when it has nothing to show, so that later sections still run.
"""

import pandas as pd
import streamlit as st

from mindgap_core.analysis.headlines import domain_label
from mindgap_core.errors import MindGapError
from mindgap_core.viz import attribution as attribution_figures
from mindgap_ui import attribution, exports, navigation, results, state
from mindgap_ui.remedies import remedies_section
from mindgap_ui.widgets import md_escape, metric_caption, metric_label, metric_unit

ALL_MODELS = "(all models)"
#: columns of the terms table, in display order
TABLE_COLUMNS = ["model", "term", "label", "kind", "value", "ci_low", "ci_high", "share_pct", "n_tiles"]
TABLE_FORMAT = {
    "label": st.column_config.TextColumn("effect / term"),
    "value": st.column_config.NumberColumn("gap term", format="%.4f"),
    "ci_low": st.column_config.NumberColumn("95 % CI low", format="%.4f"),
    "ci_high": st.column_config.NumberColumn("95 % CI high", format="%.4f"),
    "share_pct": st.column_config.NumberColumn("% of total", format="%.1f"),
}


def _choose_run(view: state.ViewState, runs: dict[str, dict]) -> str:
    """The attribution run to show: the only one, or a choice defaulting to the sidebar's run."""
    ids = list(runs)
    if len(ids) == 1:
        st.query_params.pop("attribution_run", None)
        return ids[0]
    default = view.run_id if view.run_id in runs else ids[-1]
    return state.page_choice("Attribution run", ids, "attribution_run", default=default)


def _explain(roles: dict, run_id: str) -> None:
    """What the terms mean, and the SIMULATED label of the domains they come from."""
    reference, target = domain_label(roles["reference"]), domain_label(roles["target"])
    st.markdown(
        f"Every model of run `{md_escape(run_id)}` is scored on the same HR test tiles with LR inputs "
        f"from **{md_escape(reference)}** (the reference), from **{md_escape(target)}** (the target), and "
        "from the target's simulator re-run with effects switched off, with each tile's recorded "
        "parameters. The gap (target − reference, **negative = worse on the cross-sensor domain**) splits "
        "exactly into the **baseline** (the simulator with every effect off vs the reference: the "
        "resampling kernel), one **single-effect** term per effect (that effect alone), and the "
        "**interaction** (what the effects do together beyond their sum). **Leave-one-out** terms give "
        "what an effect adds when all the others are on; where they differ from the single terms, "
        "effects interact."
    )
    variants = ", ".join(f"`{d}`" for d in attribution.variant_domains(roles))
    st.caption(f"**SIMULATED**: the cross-sensor domain *{md_escape(target)}* and the variant domains "
               f"{variants} are simulated from real HR imagery (no real cross-sensor pair is involved); "
               "the attribution explains the simulator's gap, not a measured Sentinel-2 / PlanetScope one.")


def _terms_table(table: pd.DataFrame, stem: str) -> None:
    """The terms with their CIs, and their downloads."""
    shown = table[TABLE_COLUMNS]
    st.dataframe(shown, width="stretch", hide_index=True, column_config=TABLE_FORMAT)
    exports.table_downloads(shown, stem, label="attribution terms")


def _charts(table: pd.DataFrame, metric: str, band: str | None, stem: str) -> None:
    """The waterfall from baseline to total, and single vs leave-one-out per effect."""
    label, unit = metric_label(metric, band), metric_unit(metric)
    waterfall = attribution_figures.waterfall_figure(table, metric_label=label, unit=unit)
    st.plotly_chart(waterfall, width="stretch", key="attribution_waterfall")
    exports.figure_download(waterfall, exports.file_stem("attribution_waterfall", stem))
    paired = attribution_figures.single_vs_loo_figure(table, metric_label=label, unit=unit)
    st.plotly_chart(paired, width="stretch", key="attribution_single_loo")
    exports.figure_download(paired, exports.file_stem("attribution_single_loo", stem))


def _attribution_table(view: state.ViewState, run_id: str, metric: str) -> pd.DataFrame | None:
    """The run's decomposition of ``metric`` under the sidebar's filters (None, with a notice, if none)."""
    scored = results.distinct(view.root, view.fingerprint, "metric", results.filter_key({"run_id": run_id}))
    if metric not in scored:
        st.info(f"Run `{md_escape(run_id)}` has no {metric_label(metric)} scores; choose one of "
                f"{md_escape(', '.join(metric_label(m) for m in scored))} as the sidebar's Metric.")
        return None
    filters = {"aggregate": view.aggregate} if view.aggregate else {}
    try:
        table = attribution.attribution(view.root, view.fingerprint, run_id, metric, view.band or "all",
                                        results.filter_key(filters))
    except MindGapError as exc:
        st.warning(f"This attribution run cannot be decomposed yet: {md_escape(exc)}")
        return None
    for column, value in (("method", view.method), ("regime", view.regime)):  # the sidebar's filters
        if value is not None:
            table = table[table[column] == value]
    if table.empty:
        st.info("No model of this run was scored on every attribution domain for this selection "
                "(see the sidebar's method, regime and band).")
        return None
    return table


def _attribution_section(view: state.ViewState) -> None:
    """Gap attribution by simulator effect: waterfall, single vs leave-one-out, terms table."""
    st.header("Attribution: which simulated effect makes the gap")
    runs = attribution.attribution_runs(view.root, view.fingerprint)
    if not runs:
        st.info("This results store holds no gap-attribution run. Produce one (it re-simulates the "
                "cross-sensor test tiles with each effect switched on or off and scores every model on "
                f"them) with\n\n`{attribution.ATTRIBUTE_COMMAND}`\n\nor, for your own experiment, "
                "`mindgap attribute --experiment FILE --out RESULTS` with an `attribution` section "
                "(reference, target, effects) in FILE.")
        return
    if view.metric is None:
        st.info("No metric in these results.")
        return
    run_id = _choose_run(view, runs)
    _explain(runs[run_id], run_id)
    metric_caption(view.metric)
    table = _attribution_table(view, run_id, view.metric)
    if table is None:
        return
    model = state.page_choice("Model", [*dict.fromkeys(table["model"]), ALL_MODELS], "model")
    chosen = table if model == ALL_MODELS else table[table["model"] == model]
    stem = exports.file_stem(view.metric, "all_models" if model == ALL_MODELS else model, run_id)
    _charts(chosen, view.metric, view.band or "all", stem)
    methods = chosen["ci_method"].dropna() if "ci_method" in chosen else chosen["n_tiles"].iloc[:0]
    method = str(methods.iloc[0]) if len(methods) else "95 % CI"
    st.caption(f"95 % CIs: {md_escape(method)}, over {int(chosen['n_tiles'].max())} tiles (the same units "
               "for every term of a model). Total = baseline + Σ single + interaction exactly; the whisker "
               "of a step spans its term's CI at the step's end. Shapley terms (order-free) are in the table "
               "below.")
    with st.expander("Attribution terms (numbers behind the charts)", expanded=True):
        _terms_table(chosen, exports.file_stem("attribution_terms", stem))


navigation.page_start()
view = state.analysis_page("Attribution & remedies")
_attribution_section(view)
remedies_section(view)
