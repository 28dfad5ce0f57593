"""AppTest of the LPIPS-Sat page: mosaics of the map COGs on one colour scale, and the honest notices."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from mindgap_core.io import read_raster
from mindgap_core.metrics.lpips_std import default_alexnet_path
from mindgap_core.store import ResultsStore
from tests.app.conftest import ResultsCase, figures, run_id, run_page, selected

TARGET = "simulated_cross_sensor"


def _map_rows(case, model: str):
    rows = ResultsStore(case.root).rows({"run_id": run_id(case.root), "model": model, "metric": "lpips_sat",
                                         "split": "test"})
    return rows[rows["map_path"] != ""].sort_values(["test_domain", "tile_id", "options"]).drop_duplicates(
        ["test_domain", "tile_id"])


def _expected_mosaic(case, rows) -> np.ndarray:
    """Independent placement: each COG at (top - y) / res, (x - left) / res, then the display averaging."""
    store = ResultsStore(case.root)
    rasters = [read_raster(store.resolve(p)) for p in rows["map_path"]]
    res = rasters[0].transform.a
    left = min(r.transform.c for r in rasters)
    top = max(r.transform.f for r in rasters)
    offsets = [(round((top - r.transform.f) / res), round((r.transform.c - left) / res)) for r in rasters]
    shape = (max(o[0] + r.shape[0] for o, r in zip(offsets, rasters, strict=True)),
             max(o[1] + r.shape[1] for o, r in zip(offsets, rasters, strict=True)))
    scene = np.full(shape, np.nan)
    for (r0, c0), raster in zip(offsets, rasters, strict=True):
        scene[r0:r0 + raster.shape[0], c0:c0 + raster.shape[1]] = raster.array[0]
    factor = math.ceil(max(shape) / 256)
    if factor > 1:
        pad = ((0, -shape[0] % factor), (0, -shape[1] % factor))
        padded = np.pad(scene, pad, constant_values=np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-blank blocks
            scene = np.nanmean(padded.reshape(padded.shape[0] // factor, factor, -1, factor), axis=(1, 3))
    return scene


@pytest.fixture(scope="module")
def model(case) -> str:
    rows = ResultsStore(case.root).rows({"metric": "lpips_sat"})
    # experiments may save maps for some models only (save_outputs): pick one that has them
    models = sorted(set(rows.loc[rows["map_path"] != "", "model"]))
    if not models:
        pytest.skip("these results have no LPIPS-Sat rows (covered by test_no_lpips_sat_rows_one_notice)")
    return models[-1]


@pytest.fixture(scope="module")
def page(case, model):
    return run_page("lpips_sat", case, model=model)


def test_side_by_side_maps_share_one_colour_scale(page, model) -> None:
    assert selected(page, "Model") == model
    fig = figures(page)[0]
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 2
    assert all(h.coloraxis == "coloraxis" for h in heatmaps)
    assert fig.layout.coloraxis.cmin < fig.layout.coloraxis.cmax
    assert any("Simulated data" in w.value for w in page.warning)


def test_mosaic_values_equal_the_map_cogs(page, case, model) -> None:
    fig = figures(page)[0]
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    labels = [t for t in fig.data if t.type == "scatter"]
    for heatmap, tiles, domain in zip(heatmaps, labels, ("synthetic", TARGET), strict=True):
        rows = _map_rows(case, model)
        rows = rows[rows["test_domain"] == domain]
        expected = _expected_mosaic(case, rows)
        shown = np.asarray(heatmap.z, dtype=float)
        assert shown.shape == expected.shape
        assert np.allclose(shown, expected, equal_nan=True, atol=1e-6)
        store = ResultsStore(case.root)
        means = {t: float(read_raster(store.resolve(p)).array.mean())
                 for t, p in zip(rows["tile_id"], rows["map_path"], strict=True)}
        assert sorted(tiles.text) == sorted(means)
        for tile_id, mean in zip(tiles.text, tiles.customdata, strict=True):
            assert float(mean) == pytest.approx(means[tile_id], rel=1e-5)


def test_lpips_comparison_is_not_faked(page) -> None:
    charts = figures(page)
    if default_alexnet_path().is_file():
        pytest.skip("ImageNet AlexNet weights are present on this machine")
    assert len(charts) == 1  # no LPIPS comparison figure without LPIPS scores
    notices = [i.value for i in page.info if "AlexNet" in i.value]
    assert notices and all("alexnet-owt" in n for n in notices)
    server_paths = (str(Path.home()), str(default_alexnet_path()))
    assert not any(path in n for n in notices for path in server_paths)


def test_no_lpips_sat_rows_one_notice(fixture_store, data_roots_env) -> None:
    """A store without LPIPS-Sat rows: one clear notice, no figure."""
    rows = ResultsStore(fixture_store).rows({"metric": ["psnr", "ssim"]})
    copy = data_roots_env / "no_lpips_sat"
    store = ResultsStore(copy)
    if not store.has_shard("copy"):
        store.write_shard("copy", rows)
    at = run_page("lpips_sat", ResultsCase("copy", copy, str(copy)))
    assert not at.get("plotly_chart")
    notices = [i.value for i in at.info]
    assert len(notices) == 1 and "No LPIPS-Sat scores" in notices[0]
