"""What one tile can show, and the shared stretches of its renderings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mindgap_core.data.manifest import read_manifest, resolve
from mindgap_core.io import read_raster, write_cog
from mindgap_core.viz import layers as lyr
from mindgap_core.viz.overlays import colourise
from mindgap_core.viz.render import render, stretch_limits

REPO = Path(__file__).resolve().parents[3]
MANIFEST = REPO / "data" / "demo" / "manifest.parquet"
SCENE = REPO / "data" / "demo" / "scene" / "hr_reflectance_5m.tif"
TILE = "r1c2"


def _hr() -> Path:
    table = read_manifest(MANIFEST)
    return resolve(MANIFEST, table.loc[table["tile_id"] == TILE, "hr_path"].iloc[0])


def test_manifest_layers_are_hr_and_each_domain() -> None:
    layers = lyr.manifest_layers(MANIFEST, TILE)
    assert lyr.keys(layers) == ["hr", "lr|simulated_cross_sensor", "lr|synthetic"]
    assert layers[1].label == "LR: Simulated cross-sensor LR" and layers[0].path == _hr()
    assert all(layer.path.is_file() and layer.kind == "reflectance" for layer in layers)
    assert lyr.manifest_layers(MANIFEST, "r99c99") == []


def test_sibling_map() -> None:
    assert lyr.sibling_map("maps/r/m/d/sr_seed0/t.tif", "abs_error") == "maps/r/m/d/abs_error_seed0/t.tif"
    assert lyr.sibling_map("elsewhere.tif", "abs_error") is None


@pytest.fixture()
def store(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A results-store-like folder with an SR, its uncertainty, an error map and an LPIPS-Sat map."""
    hr = read_raster(_hr())
    sr = hr.replace(array=hr.array * 0.9)
    base = "maps/run/bicubic/synthetic"
    write_cog(sr, tmp_path / f"{base}/sr_seed0/{TILE}.tif")
    write_cog(
        sr.replace(array=np.abs(hr.array - sr.array) * 0.5), tmp_path / f"{base}/uncertainty_seed0/{TILE}.tif"
    )
    write_cog(sr.replace(array=np.abs(hr.array - sr.array)), tmp_path / f"{base}/abs_error_seed0/{TILE}.tif")
    write_cog(
        sr.replace(array=hr.array[:1], band_names=("lpips_sat",)),
        tmp_path / f"{base}/lpips_sat_seed0/{TILE}.tif",
    )
    rows = pd.DataFrame(
        {
            "model": ["bicubic"] * 2 + ["other"],
            "test_domain": ["synthetic"] * 2 + ["simulated_cross_sensor"],
            "metric": ["psnr", "lpips_sat", "psnr"],
            "sr_path": [f"{base}/sr_seed0/{TILE}.tif"] * 2 + ["maps/run/other/x/sr_seed0/missing.tif"],
            "uncertainty_path": [f"{base}/uncertainty_seed0/{TILE}.tif"] * 2 + [""],
            "map_path": ["", f"{base}/lpips_sat_seed0/{TILE}.tif", ""],
        }
    )
    return tmp_path, rows


def test_store_layers_find_every_map_and_skip_missing_files(store) -> None:
    root, rows = store
    layers = lyr.store_layers(rows, lambda rel: root / rel, _hr())
    assert lyr.keys(layers) == [
        "sr|bicubic|synthetic",
        "uncertainty|bicubic|synthetic",
        "error|bicubic|synthetic",
        "lpips_sat|bicubic|synthetic",
    ]  # "other" has no SR file: left out
    assert layers[0].label == "SR bicubic ← Synthetic LR (HR degraded)"
    assert [layer.kind for layer in layers] == ["reflectance", "uncertainty", "error", "lpips_sat"]
    assert layers[2].reference is None  # the saved error map is used


def test_error_map_is_computed_when_none_was_saved(store) -> None:
    root, rows = store
    for path in root.glob("maps/run/bicubic/synthetic/abs_error_seed0/*.tif"):
        path.unlink()
    layers = {layer.key: layer for layer in lyr.store_layers(rows, lambda rel: root / rel, _hr())}
    error = layers["error|bicubic|synthetic"]
    assert error.reference == _hr() and error.path == root / rows["sr_path"].iloc[0]
    computed = lyr.scalar_map(error).array[0]
    hr = read_raster(_hr()).array
    np.testing.assert_allclose(computed, np.abs(hr - hr * 0.9).mean(axis=0), rtol=1e-5)


def test_render_layers_share_one_stretch_per_kind(store) -> None:
    root, rows = store
    sources = lyr.manifest_layers(MANIFEST, TILE) + lyr.store_layers(rows, lambda rel: root / rel, _hr())
    drawn = {d.source.key: d for d in lyr.render_layers(sources, "false_colour_nir")}
    hr = read_raster(_hr())
    limits = stretch_limits(hr.array, hr.band_names, "false_colour_nir", valid=hr.valid)
    for key in ("hr", "lr|synthetic", "sr|bicubic|synthetic"):
        raster = read_raster(next(s.path for s in sources if s.key == key))
        np.testing.assert_array_equal(
            drawn[key].image,
            render(raster.array, raster.band_names, "false_colour_nir", limits, valid=raster.valid),
        )
        assert drawn[key].value_range is None
    error = drawn["error|bicubic|synthetic"]
    values = lyr.scalar_map(error.source).array[0]
    assert error.value_range == (0.0, pytest.approx(np.percentile(values, 98)))
    np.testing.assert_array_equal(error.image, colourise(values, *error.value_range, ramp="inferno")[0])
    assert drawn["lpips_sat|bicubic|synthetic"].value_range[0] > 0  # 2nd percentile, not 0


def test_job_rows_give_the_same_layers_with_their_labels(tmp_path: Path) -> None:
    """On-demand jobs write rows of the same schema, files under ``outputs/<job>/<kind>/``."""
    hr = read_raster(_hr())
    for kind in ("sr", "abs_error"):
        write_cog(hr, tmp_path / f"outputs/7/{kind}/{TILE}.tif")
    rows = pd.DataFrame({"model": ["job:7"], "test_domain": ["simulated_cross_sensor"], "metric": ["psnr"],
                         "sr_path": [f"outputs/7/sr/{TILE}.tif"], "uncertainty_path": [""], "map_path": [""]})
    layers = lyr.store_layers(rows, lambda rel: tmp_path / rel, _hr(), labels={"job:7": "job:7 (bicubic)"})
    assert lyr.keys(layers) == ["sr|job:7|simulated_cross_sensor", "error|job:7|simulated_cross_sensor"]
    assert layers[0].label == "SR job:7 (bicubic) ← Simulated cross-sensor LR"
    assert layers[1].path == tmp_path / f"outputs/7/abs_error/{TILE}.tif" and layers[1].reference is None


def test_blank_uncertainty_and_model_of(store, tmp_path_factory) -> None:
    """A deterministic model's uncertainty (std over one sample) is zero everywhere: left out of the
    tile's small multiples; a real one, and other kinds, are kept."""
    root, rows = store
    layers = lyr.store_layers(rows, lambda rel: root / rel, _hr())
    unc = next(layer for layer in layers if layer.kind == "uncertainty")
    assert not lyr.blank_uncertainty(unc)
    assert not any(lyr.blank_uncertainty(layer) for layer in layers if layer.kind != "uncertainty")
    hr = read_raster(_hr())
    zero = tmp_path_factory.mktemp("zero") / "uncertainty.tif"
    write_cog(hr.replace(array=np.zeros_like(hr.array)), zero)
    assert lyr.blank_uncertainty(lyr.LayerSource("uncertainty|m|d", "u", "uncertainty", zero))
    assert {lyr.model_of(layer) for layer in layers} == {"bicubic"}
    assert {lyr.model_of(layer) for layer in lyr.manifest_layers(MANIFEST, TILE)} == {None}
    assert lyr.model_of(lyr.LayerSource("sr|job:7|synthetic", "s", "reflectance", zero)) == "job:7"


def test_hr_mosaic_is_the_scene() -> None:
    mosaic = lyr.hr_mosaic(MANIFEST)
    scene = read_raster(SCENE)
    assert mosaic.shape == scene.shape and mosaic.transform.almost_equals(scene.transform)
    assert mosaic.band_names == scene.band_names and mosaic.valid.all()
    np.testing.assert_array_equal(mosaic.array, scene.array)


def test_models_without_images_are_those_with_scores_and_no_sr_path() -> None:
    import pandas as pd

    from mindgap_core.viz.layers import models_without_images

    rows = pd.DataFrame({
        "model": ["a", "a", "b", "b", "c"],
        "test_domain": ["synthetic", "cross", "synthetic", "cross", "cross"],
        "sr_path": ["", "runs/a/sr_seed0/t.tif", "", "", ""],
    })
    assert models_without_images(rows) == {"b": ("cross", "synthetic"), "c": ("cross",)}
    assert models_without_images(rows.iloc[:0]) == {}
