"""AppTest of the overview page: the gap matrix and the findings equal the core's gap statistics."""

from __future__ import annotations

import numpy as np
import pytest

from mindgap_core.analysis.gap import gap_table, train_test_matrix
from mindgap_core.paths import data_roots
from mindgap_core.store import ResultsStore
from tests.app.conftest import figures, run_id, run_page, selected

GROUP = ("method", "regime", "train_domain", "metric")


def _target(root) -> str:
    """The sidebar's default compared domain (never an attribution variant ``attr-*``)."""
    from mindgap_ui.state import default_target

    con = ResultsStore(root).connect()
    try:
        rows = con.execute("SELECT DISTINCT test_domain FROM results ORDER BY 1").fetchall()
        domains = [r[0] for r in rows]
    finally:
        con.close()
    return default_target([d for d in domains if d != "synthetic"])


def _expected(case, metric: str, **filters):
    flt = {"run_id": run_id(case.root), "band": "all", "aggregate": "mean", "train_blocks": None, **filters}
    return gap_table(case.root, metric=metric, group=GROUP, target_domain=_target(case.root), filters=flt)


def _cells(fig) -> dict[tuple[str, str], float]:
    trace = fig.data[0]
    return {(m, r): float(trace.z[i][j]) for i, m in enumerate(trace.y) for j, r in enumerate(trace.x)
            if np.isfinite(trace.z[i][j])}


@pytest.fixture(scope="module")
def page(case):
    return run_page("overview", case)


def test_overview_renders_gap_matrix_and_train_test_matrix(page, case) -> None:
    figs = figures(page)
    assert [f.data[0].type for f in figs] == ["heatmap", "heatmap"]
    assert page.title[0].value.startswith("Overview")
    assert selected(page, "Metric") == "psnr"


def test_gap_matrix_equals_core_gap_table(page, case) -> None:
    expected = _expected(case, "psnr")
    cells = _cells(figures(page)[0])
    assert len(cells) == len(expected) > 0
    for row in expected.itertuples():
        assert cells[(row.method, row.regime)] == pytest.approx(row.gap, rel=1e-9, abs=1e-9)
    # the CI is printed in the cell
    trace = figures(page)[0].data[0]
    first = expected.iloc[0]
    i, j = list(trace.y).index(first["method"]), list(trace.x).index(first["regime"])
    assert f"{first['gap_ci_low']:+.3g}" in trace.text[i][j]
    # and the gap table shown is the core's
    shown = page.dataframe[0].value
    assert np.allclose(shown.sort_values(["method", "regime"])["gap_ci_low"].to_numpy(float),
                       expected.sort_values(["method", "regime"])["gap_ci_low"].to_numpy(float))


def test_findings_are_computed_from_results(page, case) -> None:
    expected = _expected(case, "psnr")
    text = " ".join(m.value for m in page.markdown)
    worse = int((expected["gap"] < 0).sum())
    assert f"{worse} of {len(expected)} model" in text
    largest = expected.loc[expected["gap"].idxmin()]
    assert f"{largest['method']} / {largest['regime']}" in text
    assert f"{largest['gap']:+.3g} dB" in text


def test_train_test_matrix_equals_core(page, case) -> None:
    flt = {"run_id": run_id(case.root), "band": "all", "aggregate": "mean"}
    expected = train_test_matrix(case.root, metric="psnr", group=("metric",), filters=flt)
    z = np.asarray(figures(page)[1].data[0].z, dtype=float)
    values = sorted(z[np.isfinite(z)])
    assert len(values) == len(expected)
    assert values == pytest.approx(sorted(expected["mean"]))


def test_simulated_results_carry_the_banner(page) -> None:
    assert any("Simulated data" in w.value for w in page.warning)


def test_deep_link_sets_metric_method_and_band(case) -> None:
    expected_all = _expected(case, "ssim")
    method = sorted(expected_all["method"])[0]
    at = run_page("overview", case, metric="ssim", method=method, band="all")
    assert selected(at, "Metric") == "ssim"
    assert selected(at, "Method") == method
    cells = _cells(figures(at)[0])
    expected = _expected(case, "ssim", method=method)
    assert set(cells) == {(r.method, r.regime) for r in expected.itertuples()}
    for row in expected.itertuples():
        assert cells[(row.method, row.regime)] == pytest.approx(row.gap, rel=1e-9, abs=1e-12)
    assert "SSIM" in figures(at)[0].layout.title.text


def test_path_outside_data_roots_is_refused(tmp_path_factory) -> None:
    outside = tmp_path_factory.mktemp("not_a_data_root")
    at = run_page("overview", None, results=str(outside))
    errors = [e.value for e in at.sidebar.error]
    assert any("outside the folders this server shows" in e for e in errors), errors
    assert not any(str(root) in e for e in errors for root in data_roots())  # no server path shown
    assert not at.get("plotly_chart")
    assert any("No results to show" in i.value for i in at.info)


def test_links_carry_the_view(page) -> None:
    links = {link.proto.page: link.proto.query_string for link in page.get("page_link")}
    assert set(links) == {"distributions", "lpips_sat", "scaling"}
    assert all("metric=psnr" in q and "run=" in q for q in links.values())
