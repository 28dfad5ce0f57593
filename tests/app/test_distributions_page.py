"""AppTest of the distributions page: per-tile values, paired scatter and CIs equal the core's."""

from __future__ import annotations

import numpy as np
import pytest

from mindgap_core.analysis.blocks import store_blocks
from mindgap_core.analysis.gap import gap_table, mean_table
from mindgap_core.analysis.headlines import format_value
from mindgap_core.store import ResultsStore, views
from tests.app.conftest import figures, run_id, run_page, selected

TARGET = "simulated_cross_sensor"


def _filters(case, model: str, metric: str = "psnr") -> dict:
    return {"run_id": run_id(case.root), "band": "all", "aggregate": "mean", "split": "test",
            "metric": metric, "model": model}


def _models(case) -> list[str]:
    con = ResultsStore(case.root).connect()
    try:
        sql = ("SELECT model FROM results WHERE metric = 'psnr' GROUP BY model "
               "HAVING COUNT(DISTINCT test_domain) > 1 ORDER BY 1")  # scored on both domains
        return [r[0] for r in con.execute(sql).fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def model(case) -> str:
    """A trained model when there is one (the last name alphabetically that is not bicubic, among the
    models with PSNR scores on both test domains)."""
    return [m for m in _models(case) if m != "bicubic"][-1]


@pytest.fixture(scope="module")
def page(case, model):
    return run_page("distributions", case, model=model, plot="ecdf", metric="psnr")


def test_deep_link_picks_model_and_plot(page, model) -> None:
    assert selected(page, "Model") == model
    assert selected(page, "Plot") == "ecdf"
    assert len(figures(page)) == 3


def test_ecdf_shows_every_tile_value_of_each_domain(page, case, model) -> None:
    con = ResultsStore(case.root).connect()
    try:
        tiles = views.tile_means(con, keys=["test_domain"], filters=_filters(case, model))
    finally:
        con.close()
    ecdf = figures(page)[0]
    assert [t.type for t in ecdf.data] == ["scatter", "scatter"]
    for trace, domain in zip(ecdf.data, ("synthetic", TARGET), strict=True):
        expected = np.sort(tiles.loc[tiles["test_domain"] == domain, "value"].to_numpy())
        assert np.allclose(np.asarray(trace.x, float), expected)
        assert np.asarray(trace.y, float)[-1] == pytest.approx(1.0)


def test_paired_scatter_and_gap_equal_core(page, case, model) -> None:
    flt = _filters(case, model)
    flt.pop("metric")
    expected = gap_table(case.root, metric="psnr", group=("model", "metric"), target_domain=TARGET,
                         filters=flt)
    assert len(expected) == 1
    row = expected.iloc[0]
    gap_metric = [m for m in page.metric if m.label.startswith("gap")][0]
    assert gap_metric.value == format_value(row["gap"], "dB", signed=True)
    ci = f"[{format_value(row['gap_ci_low'], 'dB', True)}, {format_value(row['gap_ci_high'], 'dB', True)}]"
    assert ci in " ".join(c.value for c in page.caption)
    scatter = figures(page)[1]
    points = [t for t in scatter.data if t.name == "tiles"][0]
    assert len(points.x) == row["n_tiles"]
    diff = np.asarray(points.y, float) - np.asarray(points.x, float)
    assert diff.mean() == pytest.approx(row["gap"])  # PSNR: higher is better, gap = target - source


def test_mean_ci_figure_equals_core_cluster_ci(page, case, model) -> None:
    flt = {**_filters(case, model), "test_domain": ["synthetic", TARGET]}
    con = ResultsStore(case.root).connect()
    try:
        tiles = views.tile_means(con, keys=["test_domain"], filters=flt)
    finally:
        con.close()
    units = store_blocks(case.root)
    assert units, "the store's manifests give the tiles' spatial blocks"
    expected = mean_table(tiles, ["test_domain"], blocks=units, n_boot=2000, seed=0, ci=0.95).set_index(
        "test_domain")
    assert (expected["n_units"] < expected["n_tiles"]).all()  # blocks, not tiles, are the units
    means = figures(page)[2]
    assert len(means.data) == 2
    for trace, domain in zip(means.data, ("synthetic", TARGET), strict=True):
        row = expected.loc[domain]
        assert trace.y[0] == pytest.approx(row["mean"])
        assert trace.y[0] - trace.error_y.arrayminus[0] == pytest.approx(row["ci_low"])
        assert trace.y[0] + trace.error_y.array[0] == pytest.approx(row["ci_high"])


@pytest.mark.parametrize("kind", ["violin", "histogram"])
def test_plot_switch(case, model, kind) -> None:
    at = run_page("distributions", case, model=model, plot=kind)
    assert figures(at)[0].data[0].type == kind
