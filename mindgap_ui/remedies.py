"""The "Remedies" section of the attribution page: does decoupling close the gap, at what compute?"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mindgap_core.attribution.remedies import remedy_table, training_minutes
from mindgap_core.errors import MindGapError
from mindgap_ui import exports
from mindgap_ui.results import N_BOOT, SEED, Filters, _filters, blocks, connection
from mindgap_ui.state import ViewState
from mindgap_ui.widgets import md_escape, metric_label, metric_unit


@st.cache_data(show_spinner="Comparing remedies…")
def remedies(root: str, fingerprint: str, run_id: str | None, metric: str, filters: Filters, source: str,
             target: str | None, band: str = "all") -> pd.DataFrame:
    """:func:`~mindgap_core.attribution.remedies.remedy_table` with the run's training costs."""
    from mindgap_core.analysis.training_logs import spec_path

    minutes: dict[str, float] = {}
    spec = spec_path(root, run_id) if run_id else None
    if spec is not None:
        try:
            minutes = training_minutes(spec)
        except MindGapError:
            minutes = {}  # the experiment's checkpoints are not here: costs unknown
    with connection(root, fingerprint) as con:
        return remedy_table(con, metric=metric, source_domain=source, target_domain=target, band=band,
                            filters=_filters(filters), train_minutes=minutes,
                            blocks=blocks(root, fingerprint), n_boot=N_BOOT, seed=SEED)


def remedies_section(view: ViewState) -> None:
    """Synthetic-trained vs cross-sensor-trained vs adapter + synthetic-trained models, per method."""
    from mindgap_core.viz.remedies import remedy_figure

    st.header("Remedies: does decoupling close the gap?")
    st.markdown(
        "Per SR method, every model is compared on the cross-sensor test tiles with the method's "
        "synthetic-trained model: training on cross-sensor pairs (`cross_sensor`, mixed, fine-tuned) versus "
        "the decoupled pipeline, an LR domain adapter (`mindgap adapter`: classical harmoniser, or a small "
        "learned CNN) in front of the unchanged synthetic-trained model. Bars: paired change with its 95 % "
        "CI over spatial blocks (positive = better); *recovered* = that change as a share of the "
        "synthetic-trained model's gap. A `harmoniser_coreg` adapter co-registers each tile to the HR "
        "reference: oracle geometry, an upper bound for blind co-registration."
    )
    if view.metric is None:
        st.info("No metric in these results.")
        return
    # the sidebar's run and method (not its regime: the comparison needs every regime of a method)
    filters = {k: v for k, v in view.filters().items() if k in ("run_id", "method")}
    table = remedies(view.root, view.fingerprint, view.run_id, view.metric, tuple(sorted(filters.items())),
                     view.source_domain, view.target_domain, view.band or "all")
    if table.empty or not (table["regime"] != "synthetic").any():
        st.info("No remedy to compare in this run: it needs, for some method, a synthetic-trained model and "
                "at least one cross-sensor-trained or adapter + synthetic-trained model (experiment entries "
                "with `adapter: FOLDER`).")
        return
    label, unit = metric_label(view.metric), metric_unit(view.metric)
    fig = remedy_figure(table, metric_label=metric_label(view.metric, view.band or "all"),
                        unit=unit)
    st.plotly_chart(fig, width="stretch", key="remedy_chart")
    exports.figure_download(fig, exports.file_stem("remedies", view.metric, view.run_id))
    if view.simulated:
        st.caption("The cross-sensor domain and the adapters' training pairs are SIMULATED.")
    best = table[table["regime"] != "synthetic"].sort_values("delta", ascending=False).iloc[0]
    verdict = ("closes part of the gap" if best.delta_ci_low > 0 else
               "does not change the score distinguishably from zero" if best.delta_ci_high >= 0 else
               "scores worse")
    st.markdown(f"Best remedy by {md_escape(label)}: **{md_escape(best.model)}** ({md_escape(best.remedy)}) "
                f"{verdict}: {best.delta:+.4g} [{best.delta_ci_low:+.4g}, {best.delta_ci_high:+.4g}]"
                + (f", {best.recovered_pct:.0f} % of the gap" if pd.notna(best.recovered_pct) else "")
                + (f", {best.train_minutes:.1f} min of training" if pd.notna(best.train_minutes) else "")
                + ".")
    shown = table.drop(columns=["higher_better"]).rename(columns={"train_minutes": "training (min)"})
    st.dataframe(shown, width="stretch", hide_index=True)
    exports.table_downloads(table, exports.file_stem("remedies", view.metric, view.run_id), label="remedies")
