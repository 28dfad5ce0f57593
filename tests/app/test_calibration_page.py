"""Calibration page: its reliability curves and calibration-gap table are the core's numbers (CIs over the
store's spatial blocks); a tile's error and spread maps share one colour scale; a store without
calibration scores gets a notice, not a traceback."""

from __future__ import annotations

import numpy as np
import pytest

from mindgap_core.analysis.blocks import store_blocks
from mindgap_core.analysis.gap import gap_table, mean_table
from mindgap_core.metrics.registry import UNCERTAINTY_METRICS
from mindgap_core.store import ResultsStore, views
from mindgap_core.viz.calibration import NOMINAL
from mindgap_ui.calibration import GAP_METRICS
from tests.app.conftest import figures, run_id, run_page, selected

TARGET = "simulated_cross_sensor"


def _has_calibration(root) -> bool:
    con = ResultsStore(root).connect()
    try:
        return bool(views.distinct_values(con, "metric", {"metric": ["coverage_90"]}))
    finally:
        con.close()


@pytest.fixture(scope="module")
def calibrated(case):
    if not _has_calibration(case.root):
        pytest.skip(f"the {case.name} store holds no calibration scores")
    return case


def test_store_without_calibration_scores_gets_a_notice(case) -> None:
    if _has_calibration(case.root):
        pytest.skip("this store has calibration scores")
    page = run_page("calibration", case)
    assert any("No calibration scores" in i.value for i in page.info)


def test_reliability_curve_is_the_core_mean_over_blocks(calibrated) -> None:
    page = run_page("calibration", calibrated)
    model = selected(page, "Model")  # the default: the first model scored on both test domains
    flt = {"run_id": run_id(calibrated.root), "model": model, "metric": list(UNCERTAINTY_METRICS),
           "band": "all", "split": "test"}
    con = ResultsStore(calibrated.root).connect()
    try:
        tiles = views.tile_means(con, keys=["model", "test_domain", "metric"], filters=flt)
    finally:
        con.close()
    expected = mean_table(tiles, ["model", "test_domain", "metric"], blocks=store_blocks(calibrated.root),
                          n_boot=2000, seed=0, ci=0.95)
    assert (expected["n_units"] < expected["n_tiles"]).all()
    reliability = figures(page)[0]
    curves = [t for t in reliability.data if t.name != "calibrated"]
    assert len(curves) == expected["test_domain"].nunique() == 2
    for trace in curves:
        domain = "synthetic" if "synthetic" in trace.name.lower() and "cross" not in trace.name.lower() \
            else TARGET
        rows = expected[(expected["test_domain"] == domain) & expected["metric"].isin(NOMINAL)]
        rows = rows.assign(nominal=rows["metric"].map(NOMINAL)).sort_values("nominal")
        np.testing.assert_allclose(np.asarray(trace.x, float), rows["nominal"])
        np.testing.assert_allclose(np.asarray(trace.y, float), rows["mean"])
        np.testing.assert_allclose(np.asarray(trace.y, float) - np.asarray(trace.error_y.arrayminus, float),
                                   rows["ci_low"])


def test_calibration_gap_table_is_the_core_gap(calibrated) -> None:
    page = run_page("calibration", calibrated)
    shown = page.dataframe[0].value
    expected = gap_table(calibrated.root, metric=list(GAP_METRICS), group=("model", "metric"),
                         target_domain=TARGET, filters={"run_id": run_id(calibrated.root), "band": "all"},
                         reference_method=None)
    merged = shown.merge(expected, on=["model", "metric"], suffixes=("", "_core"))
    assert len(merged) == len(expected) > 0
    np.testing.assert_allclose(merged["mean_target"] - merged["mean_source"], merged["change"], atol=1e-9)
    np.testing.assert_allclose(merged["n_units"], merged["n_units_core"])
    assert set(merged["verdict"]) <= {"worse", "better", "inconclusive", "no CI"}


def test_error_and_spread_share_one_colour_scale(calibrated) -> None:
    page = run_page("calibration", calibrated, calibration_model="resshift/synthetic")
    if any("No SR and uncertainty rasters" in i.value for i in page.info):
        pytest.skip("no stored rasters of this model")
    maps = figures(page)[-1]
    error, spread = [t for t in maps.data if t.type == "heatmap"]
    assert error.zmax == spread.zmax and error.zmin == spread.zmin == 0.0
    assert np.nanmax(np.asarray(spread.z, float)) > 0  # a stochastic model: a real spread map
