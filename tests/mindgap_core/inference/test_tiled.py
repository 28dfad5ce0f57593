"""Tiled inference: equals untiled inference, georeferenced COG out, nodata, uncertainty, seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rio_cogeo.cogeo import cog_validate

from mindgap_core.inference import run_inference
from tests.mindgap_core.inference.toys import (
    BANDS,
    CRS_UTM,
    LR_TRANSFORM,
    ConvUpModel,
    NoisyModel,
    smooth_scene,
    write_scene,
)

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture
def conv_model() -> ConvUpModel:
    return ConvUpModel()


@pytest.fixture
def noisy_model() -> NoisyModel:
    return NoisyModel()


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    """64 x 64 LR pixels: 4x the area of a 32-pixel tile."""
    return write_scene(tmp_path / "lr.tif", smooth_scene(64, 64))


def _infer_with_uncertainty(model, scene: Path, tmp_path: Path, num_samples: int):
    """``num_samples`` per pixel, 32-pixel tiles overlapping by 8: ``sr.tif`` and ``std.tif`` in tmp_path."""
    return run_inference(
        model, scene, tmp_path / "sr.tif", num_samples=num_samples, uncertainty_path=tmp_path / "std.tif",
        tile=32, overlap=8,
    )  # fmt: skip


def test_tiled_equals_untiled_everywhere_when_guard_covers_receptive_field(
    scene: Path, tmp_path: Path, conv_model: ConvUpModel
) -> None:
    # ConvUpModel's receptive field is 2 LR px; overlap 8 gives a guard band of 8 // 4 = 2 LR px, so
    # every pixel is dominated by tiles that see all of its receptive field: equal at ALL pixels,
    # image borders and seams included (tiles end on the image edge, like the single tile).
    untiled = run_inference(conv_model, scene, tmp_path / "untiled.tif", tile=64, overlap=0)
    tiled = run_inference(conv_model, scene, tmp_path / "tiled.tif", tile=32, overlap=8)
    assert (untiled.n_tiles, tiled.n_tiles) == (1, 9)
    expected = _read(tmp_path / "untiled.tif")
    np.testing.assert_allclose(_read(tmp_path / "tiled.tif"), expected, atol=1e-5, rtol=0)


def test_seams_show_when_the_guard_band_is_narrower_than_the_receptive_field(
    scene: Path, tmp_path: Path, conv_model: ConvUpModel
) -> None:
    # Control that the comparison above can fail: overlap 4 -> guard 1 LR px < receptive field 2.
    run_inference(conv_model, scene, tmp_path / "untiled.tif", tile=64, overlap=0)
    run_inference(conv_model, scene, tmp_path / "tiled.tif", tile=32, overlap=4)
    diff = np.abs(_read(tmp_path / "tiled.tif") - _read(tmp_path / "untiled.tif"))
    assert diff.max() > 1e-3


def test_irregular_scene_and_tile_larger_than_scene(tmp_path: Path, conv_model: ConvUpModel) -> None:
    # 50 x 70 LR: the last tiles are shifted back onto the edge (larger overlaps); the untiled run
    # uses one 70-px tile, which is taller than the scene (tiles are cut to the scene, not padded).
    src = write_scene(tmp_path / "lr.tif", smooth_scene(50, 70, seed=3))
    run_inference(conv_model, src, tmp_path / "untiled.tif", tile=70, overlap=0)
    res = run_inference(conv_model, src, tmp_path / "tiled.tif", tile=24, overlap=8, batch_size=3)
    assert res.n_tiles == 3 * 4
    expected = _read(tmp_path / "untiled.tif")
    assert expected.shape == (4, 100, 140)
    np.testing.assert_allclose(_read(tmp_path / "tiled.tif"), expected, atol=1e-5, rtol=0)


def test_output_is_a_valid_cog_on_the_hr_grid_with_metadata(
    scene: Path, tmp_path: Path, conv_model: ConvUpModel
) -> None:
    out = tmp_path / "sr.tif"
    res = run_inference(conv_model, scene, out, tile=32, overlap=8, seed=7, model_path="models/toy")
    assert res.out_path == out and res.uncertainty_path is None and res.scale == 2 and res.seconds > 0
    valid, errors, _ = cog_validate(str(out), quiet=True)
    assert valid, errors
    with rasterio.open(out) as ds:
        assert ds.crs == CRS_UTM
        assert ds.transform.almost_equals(LR_TRANSFORM @ Affine.scale(0.5))
        assert ds.transform.a == 10.0 and (ds.transform.c, ds.transform.f) == (LR_TRANSFORM.c, LR_TRANSFORM.f)
        assert (ds.height, ds.width) == (128, 128) and ds.dtypes[0] == "float32"
        assert ds.descriptions == BANDS
        tags = ds.tags()
    assert tags["description"] == "SR output of toy-conv"
    assert tags["units"] == "reflectance"
    recorded = (tags["model_path"], tags["steps"], tags["num_samples"], tags["seed"])
    assert recorded == ("models/toy", "1", "1", "7")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_nodata_is_kept_and_does_not_leak_into_valid_pixels(tmp_path: Path, conv_model: ConvUpModel) -> None:
    array = smooth_scene(64, 64, seed=5)
    invalid = np.zeros((64, 64), bool)
    invalid[10:20, 40:60] = True  # a block across a seam
    invalid[50, 5] = True  # a single pixel
    array[:, invalid] = -9999.0
    src = write_scene(tmp_path / "lr.tif", array, nodata=-9999.0)
    out = run_inference(conv_model, src, tmp_path / "sr.tif", tile=32, overlap=8).out_path
    sr = _read(out)
    hr_invalid = np.repeat(np.repeat(invalid, 2, axis=0), 2, axis=1)
    assert np.isnan(sr[:, hr_invalid]).all()
    assert np.isfinite(sr[:, ~hr_invalid]).all()
    # -9999 fed to the model would give values around -1000 next to the hole; filled, they stay physical
    assert sr[:, ~hr_invalid].min() > 0.0 and sr[:, ~hr_invalid].max() < 1.0
    with rasterio.open(out) as ds:
        assert np.isnan(ds.nodata)
        assert (ds.dataset_mask() == 0).sum() == hr_invalid.sum()


def test_all_nodata_tiles_are_skipped(tmp_path: Path, conv_model: ConvUpModel) -> None:
    array = smooth_scene(64, 64, seed=6)
    array[:, :32, :32] = np.nan  # the whole top-left tile (float NaN counts as nodata)
    src = write_scene(tmp_path / "lr.tif", array)
    res = run_inference(conv_model, src, tmp_path / "sr.tif", tile=32, overlap=8)
    assert res.n_skipped_tiles == 1
    sr = _read(res.out_path)
    assert np.isnan(sr[:, :64, :64]).all() and np.isfinite(sr[:, 64:, :]).all()


def test_bands_are_matched_by_name_and_sensor_ids(tmp_path: Path, conv_model: ConvUpModel) -> None:
    array = smooth_scene(40, 40, seed=8)
    canonical = write_scene(tmp_path / "canonical.tif", array)
    order = [3, 2, 0, 1]
    shuffled = write_scene(tmp_path / "shuffled.tif", array[order], band_names=tuple(BANDS[i] for i in order))
    s2_ids = write_scene(tmp_path / "s2.tif", array, band_names=("B02", "B03", "B04", "B08"))
    unnamed = write_scene(tmp_path / "unnamed.tif", array, band_names=None)
    placeholders = write_scene(tmp_path / "placeholders.tif", array, band_names=("b1", "b2", "b3", "b4"))
    ref = _read(run_inference(conv_model, canonical, tmp_path / "a.tif", tile=40, overlap=0).out_path)
    for i, src in enumerate([shuffled, s2_ids, unnamed, placeholders]):
        out = run_inference(conv_model, src, tmp_path / f"o{i}.tif", tile=40, overlap=0).out_path
        np.testing.assert_array_equal(_read(out), ref)


def test_uncertainty_is_zero_for_a_deterministic_model(
    scene: Path, tmp_path: Path, conv_model: ConvUpModel
) -> None:
    res = _infer_with_uncertainty(conv_model, scene, tmp_path, num_samples=3)
    assert res.uncertainty_path == tmp_path / "std.tif"
    assert cog_validate(str(res.uncertainty_path), quiet=True)[0]
    std = _read(res.uncertainty_path)
    assert std.shape == (4, 128, 128)
    np.testing.assert_array_equal(std, 0.0)
    with rasterio.open(res.uncertainty_path) as ds:
        assert ds.descriptions == BANDS and "std" in ds.tags()["product"]


def test_uncertainty_is_positive_for_a_stochastic_model(
    scene: Path, tmp_path: Path, noisy_model: NoisyModel
) -> None:
    res = _infer_with_uncertainty(noisy_model, scene, tmp_path, num_samples=4)
    std = _read(res.uncertainty_path)
    assert (std > 0).all()
    assert 0.01 < float(std.mean()) < 0.1  # noise sigma is 0.05
    assert res.steps == 3  # the model's default


def test_same_seed_same_output_regardless_of_batch_size(scene: Path, tmp_path: Path) -> None:
    outs = {}
    for bs in (1, 4):
        model = NoisyModel()
        res = run_inference(
            model, scene, tmp_path / f"sr{bs}.tif", num_samples=2, uncertainty_path=tmp_path / f"std{bs}.tif",
            tile=32, overlap=8, seed=11, batch_size=bs,
        )  # fmt: skip
        outs[bs] = (_read(res.out_path), _read(res.uncertainty_path))
    np.testing.assert_array_equal(outs[1][0], outs[4][0])
    np.testing.assert_array_equal(outs[1][1], outs[4][1])
    other = run_inference(
        NoisyModel(), scene, tmp_path / "other.tif", num_samples=2, tile=32, overlap=8, seed=12
    )
    assert np.abs(_read(other.out_path) - outs[1][0]).max() > 1e-3


def test_deterministic_models_are_batched(scene: Path, tmp_path: Path) -> None:
    results = []
    for bs in (1, 4):
        model = ConvUpModel()
        res = run_inference(model, scene, tmp_path / f"sr{bs}.tif", tile=32, overlap=8, batch_size=bs)
        assert max(model.calls) == min(bs, 3)  # batches stay within one tile row of 3 tiles
        results.append(_read(res.out_path))
    np.testing.assert_allclose(results[0], results[1], atol=1e-6, rtol=0)


def test_progress_counts_tiles(scene: Path, tmp_path: Path, conv_model: ConvUpModel) -> None:
    calls: list[tuple[int, int]] = []
    def record(done: int, total: int) -> None:
        calls.append((done, total))

    run_inference(conv_model, scene, tmp_path / "sr.tif", tile=32, overlap=8, on_progress=record)
    assert calls[0] == (0, 9) and calls[-1] == (9, 9)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_memory_depends_on_the_tile_not_the_scene_height(tmp_path: Path, conv_model: ConvUpModel) -> None:
    small = write_scene(tmp_path / "small.tif", smooth_scene(64, 64))
    tall = write_scene(tmp_path / "tall.tif", smooth_scene(256, 64))
    kw = {"tile": 32, "overlap": 8}
    a = run_inference(conv_model, small, tmp_path / "a.tif", uncertainty_path=tmp_path / "ua.tif", **kw)
    b = run_inference(conv_model, tall, tmp_path / "b.tif", uncertainty_path=tmp_path / "ub.tif", **kw)
    assert b.n_tiles > 3 * a.n_tiles
    assert a.peak_buffer_bytes == b.peak_buffer_bytes


def test_ungeoreferenced_input_with_allow_no_crs(tmp_path: Path, conv_model: ConvUpModel) -> None:
    src = write_scene(tmp_path / "patch.tif", smooth_scene(40, 40), crs=None)
    out = run_inference(conv_model, src, tmp_path / "sr.tif", tile=40, overlap=0, allow_no_crs=True).out_path
    with rasterio.open(out) as ds:
        assert ds.crs is None
        assert ds.transform.almost_equals(Affine.scale(0.5))
        assert (ds.height, ds.width) == (80, 80)


def test_integer_dn_input_with_dn_scale(tmp_path: Path, conv_model: ConvUpModel) -> None:
    reflectance = smooth_scene(40, 40, seed=9)
    dn = np.round(reflectance * 10000 + 1000).astype(np.uint16)
    src = write_scene(tmp_path / "dn.tif", dn)
    ref = write_scene(tmp_path / "refl.tif", (dn.astype(np.float64) - 1000) / 10000)
    a = run_inference(conv_model, src, tmp_path / "a.tif", tile=40, overlap=0, dn_scale=1e-4, dn_offset=-1000)
    b = run_inference(conv_model, ref, tmp_path / "b.tif", tile=40, overlap=0)
    np.testing.assert_allclose(_read(a.out_path), _read(b.out_path), atol=1e-6)
