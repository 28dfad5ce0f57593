"""Figure builders: they place the given numbers, escape names from the data, and compute no score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mindgap_core.viz import figures

EVIL = '<img src=x onerror="alert(1)">'


def _gap_table() -> pd.DataFrame:
    return pd.DataFrame({
        "method": ["sr3", "sr3", EVIL], "regime": ["synthetic", "real", "synthetic"],
        "train_domain": ["synthetic", "simulated_cross_sensor", "synthetic"], "metric": "psnr",
        "source_domain": "synthetic", "target_domain": "simulated_cross_sensor", "n_tiles": 12,
        "mean_source": [30.0, 29.0, 28.0], "mean_target": [27.0, 28.5, 27.0], "gap": [-3.0, -0.5, -1.0],
        "gap_ci_low": [-3.5, -1.0, -1.4], "gap_ci_high": [-2.5, 0.1, -0.6],
        "n_units": 3, "unit": "block", "ratio_of": "mse", "ratio": [2.0, 1.1, 1.3],
        "p_adjusted": [0.001, 0.3, 0.01], "verdict": ["worse", "inconclusive", "worse"],
        "higher_better": True,
    })


def test_gap_matrix_places_gaps_and_escapes_names() -> None:
    fig = figures.gap_matrix_figure(_gap_table(), metric_label="PSNR", unit="dB")
    trace = fig.data[0]
    assert list(trace.y) == ["sr3", figures.esc(EVIL)] and list(trace.x) == ["synthetic", "real"]
    z = np.asarray(trace.z, float)
    assert z[0].tolist() == [-3.0, -0.5] and z[1, 0] == -1.0 and np.isnan(z[1, 1])
    assert "[-3.5, -2.5]" in trace.text[0][0]
    assert trace.zmid == 0 and trace.zmin == -3.0 and trace.zmax == 3.0
    assert "<img" not in fig.to_json()
    assert list(trace.customdata[0][0][2:7]) == ["MSE ×2", "-3.5", "-2.5", "Holm-adjusted p 0.001, worse",
                                                 "12 paired tiles in 3 blocks"]


def test_gap_matrix_separates_train_domains_of_one_regime() -> None:
    table = _gap_table().assign(regime="mixed")
    fig = figures.gap_matrix_figure(table, metric_label="PSNR")
    assert sorted(fig.data[0].x) == ["mixed · simulated cross-sensor", "mixed · synthetic"]


def test_train_test_matrix_and_empty_tables() -> None:
    table = pd.DataFrame({"metric": "sam", "train_domain": ["synthetic", "none"],
                          "test_domain": ["synthetic"] * 2, "n_tiles": 12, "mean": [3.0, 4.0],
                          "ci_low": [2.5, 3.5], "ci_high": [3.5, 4.5], "higher_better": False})
    fig = figures.train_test_figure(table, metric_label="SAM", unit="degrees")
    assert np.asarray(fig.data[0].z, float).ravel().tolist() == [3.0, 4.0]
    assert fig.data[0].reversescale is True
    assert "lower is better" in fig.layout.title.text
    for builder in (figures.gap_matrix_figure, figures.train_test_figure):
        assert len(builder(table.iloc[:0], metric_label="x").data) == 0


@pytest.mark.parametrize("kind", figures.DISTRIBUTION_KINDS)
def test_distribution_kinds(kind) -> None:
    tiles = pd.DataFrame({"test_domain": ["synthetic"] * 3 + ["simulated_cross_sensor"] * 3,
                          "tile_id": ["a", "b", "c"] * 2, "value": [3.0, 1.0, 2.0, 0.5, 0.7, 0.6]})
    fig = figures.distribution_figure(tiles, kind=kind, metric_label="PSNR", unit="dB")
    assert [t.type for t in fig.data] == ([kind] * 2 if kind != "ecdf" else ["scatter"] * 2)
    if kind == "ecdf":
        assert list(fig.data[0].x) == [1.0, 2.0, 3.0]
        assert list(fig.data[0].y) == pytest.approx([1 / 3, 2 / 3, 1])
    with pytest.raises(ValueError):
        figures.distribution_figure(tiles, kind="pie", metric_label="x")


def test_paired_scatter_identity_line_and_direction() -> None:
    pairs = pd.DataFrame({"tile_id": ["a", "b"], "source": [30.0, 20.0], "target": [25.0, 21.0]})
    fig = figures.paired_scatter_figure(pairs, metric_label="PSNR", source_domain="synthetic",
                                        target_domain="simulated_cross_sensor", higher_better=True)
    line, points = fig.data
    assert list(line.x) == list(line.y) and line.x[0] < 20.0 and line.x[1] > 30.0
    assert list(points.x) == [30.0, 20.0] and "below" in fig.layout.title.text
    lower = figures.paired_scatter_figure(pairs, metric_label="SAM", source_domain="synthetic",
                                          target_domain="x", higher_better=False)
    assert "above" in lower.layout.title.text


def test_scaling_and_loss_figures() -> None:
    curve = pd.DataFrame({"method": "sr3", "regime": "real", "metric": "psnr", "band": "all",
                          "aggregate": "mean", "test_domain": "synthetic", "train_blocks": [1, 2, 4],
                          "n_tiles": 12, "mean": [20.0, 21.0, 21.5], "ci_low": [19.0, 20.5, 21.0],
                          "ci_high": [21.0, 21.5, 22.5], "higher_better": True})
    fig = figures.scaling_figure(curve, metric_label="PSNR", unit="dB")
    assert list(fig.data[0].y) == [20.0, 21.0, 21.5]
    assert list(fig.data[0].error_y.arrayminus) == [1.0, 0.5, 0.5] and fig.layout.xaxis.type == "log"
    arms = pd.concat([curve.assign(series="diversity", fixed=4.0, level=[1, 2, 4]),
                      curve.assign(series="size", fixed=4.0, level=[4, 8, 16])])
    fig = figures.scaling_figure(arms, metric_label="PSNR", unit="dB")
    assert [list(t.x) for t in fig.data] == [[1, 2, 4], [4, 8, 16]]
    assert "diversity at 4 pairs" in fig.data[0].name and "size at 4 blocks" in fig.data[1].name
    logs = pd.DataFrame({"model": ["a", "a", "b"], "method": "sr3", "regime": "real", "train_domain": "x",
                         "blocks": None, "step": [1, 2, 1], "loss": [1.0, 0.5, 2.0], "lr": 1e-4,
                         "wall_s": 0.1})
    loss = figures.loss_figure(logs, log_y=False)
    assert [t.name for t in loss.data] == ["a", "b"] and loss.layout.yaxis.type == "linear"


def test_loss_lines_never_look_alike() -> None:
    """Issue 16: the loss chart repeated colours over ~24 models. Colour = method, dash then marker =
    model within its method: every model's style is unique, and models of one method share a colour."""
    counts = {"regression": 14, "srdiff": 6, "sr3": 2, "resshift": 4, "sinsr": 2, "ldm_sr": 2,
              "new_method": 1}
    logs = pd.DataFrame([{"model": f"{method}/m{k:02d}", "method": method, "regime": "r", "step": step,
                          "loss": 1.0 / (step + 1), "lr": 1e-4, "wall_s": 0.1}
                         for method, n in counts.items() for k in range(n) for step in range(3)])
    fig = figures.loss_figure(logs)
    looks = [(t.line.color, t.line.dash, t.marker.symbol if "markers" in t.mode else None) for t in fig.data]
    assert len(fig.data) == 31 and len(set(looks)) == 31
    by_method = {}
    for trace, look in zip(fig.data, looks, strict=True):
        by_method.setdefault(trace.name.split("/")[0], set()).add(look[0])
    assert all(len(colours) == 1 for colours in by_method.values())
    assert len({next(iter(c)) for c in by_method.values()}) == len(counts)


def test_no_streamlit_placeholder_colours() -> None:
    """Streamlit's chart theme rewrites "#000001".."#0000ff"-style codes; figures must not use them."""
    import re

    from affine import Affine

    from mindgap_core.viz.mosaic import Mosaic

    places = pd.DataFrame({"tile_id": ["t"], "row0": [0], "col0": [0], "rows": [2], "cols": [2],
                           "mean": [0.0]})
    mosaic = Mosaic(np.zeros((2, 2)), Affine(5, 0, 0, 0, -5, 10), None, "lpips_sat", places)
    fig = figures.mosaic_pair_figure(mosaic, mosaic, titles=("a", "b"), value_label="LPIPS-Sat",
                                     zrange=(0, 1))
    fig.layout.template = None  # Streamlit's own template (default once streamlit is imported) uses them
    assert not re.search(r'"#0000[0-9a-fA-F]{2}"', fig.to_json())
    assert fig.layout.coloraxis.colorscale[0][1] == "rgb(0, 0, 4)"
