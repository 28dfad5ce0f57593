"""Cached loaders of the calibration page (pages/calibration.py): calibration scores per model and test
domain, the calibration gap, and a tile's stored SR / uncertainty rasters."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from mindgap_core.analysis.blocks import run_manifests
from mindgap_core.analysis.gap import gap_table, mean_table
from mindgap_core.errors import InputError
from mindgap_core.metrics.registry import UNCERTAINTY_METRICS
from mindgap_core.paths import resolve_inside
from mindgap_core.store import views
from mindgap_core.viz.layers import hr_path_of
from mindgap_ui.results import N_BOOT, SEED, Filters, _filters, blocks, connection

#: the calibration-gap table's metrics, in the order shown
GAP_METRICS = ("coverage_50", "coverage_80", "coverage_90", "coverage_95", "calibration_error", "spread",
               "uncertainty_spearman", "uncertainty_auroc")


@st.cache_data(show_spinner=False)
def calibration_means(root: str, fingerprint: str, filters: Filters) -> pd.DataFrame:
    """Mean of every calibration score per model × test domain (band average) with its CI over blocks;
    empty when the store holds none (no model was scored with several samples)."""
    flt = {**_filters(filters), "metric": list(UNCERTAINTY_METRICS), "band": "all", "split": "test"}
    keys = ["model", "test_domain", "metric"]
    with connection(root, fingerprint) as con:
        tiles = views.tile_means(con, keys=keys, filters=flt)
    if tiles.empty:
        return pd.DataFrame()
    return mean_table(tiles, keys, blocks=blocks(root, fingerprint), n_boot=N_BOOT, seed=SEED, ci=0.95)


@st.cache_data(show_spinner="Computing the calibration gap…")
def calibration_gap(root: str, fingerprint: str, filters: Filters, source: str, target: str) -> pd.DataFrame:
    """:func:`~mindgap_core.analysis.gap.gap_table` of the calibration scores per model (band average)."""
    flt = {**_filters(filters), "band": "all"}
    with connection(root, fingerprint) as con:
        return gap_table(con, metric=list(GAP_METRICS), group=("model", "metric"), source_domain=source,
                         target_domain=target, filters=flt, blocks=blocks(root, fingerprint),
                         reference_method=None, n_boot=N_BOOT, seed=SEED)


@st.cache_data(show_spinner=False)
def tile_rasters(root: str, fingerprint: str, run_id: str, model: str, domain: str) -> pd.DataFrame:
    """Tiles of ``model`` on ``domain`` whose SR and uncertainty rasters are stored: ``tile_id``,
    ``sr``, ``uncertainty``, ``hr`` (absolute paths)."""
    flt = {"run_id": run_id, "model": model, "test_domain": domain, "metric": "psnr", "band": "all"}
    with connection(root, fingerprint) as con:
        rows = views.select_rows(con, filters=flt, columns=["tile_id", "sr_path", "uncertainty_path"])
    rows = rows[(rows["sr_path"] != "") & (rows["uncertainty_path"] != "")].drop_duplicates("tile_id")
    manifests = run_manifests(root, run_id)
    found = []
    for r in rows.sort_values("tile_id").itertuples(index=False):
        hr = next((p for m in manifests if (p := hr_path_of(m, r.tile_id)) is not None), None)
        try:
            sr, unc = (resolve_inside(root, p, "the results store") for p in (r.sr_path, r.uncertainty_path))
        except InputError:
            continue
        if hr is not None and Path(sr).is_file() and Path(unc).is_file():
            found.append({"tile_id": r.tile_id, "sr": str(sr), "uncertainty": str(unc), "hr": str(hr)})
    return pd.DataFrame(found, columns=["tile_id", "sr", "uncertainty", "hr"])
