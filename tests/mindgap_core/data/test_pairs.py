"""build_pairs end to end on fixture files made from the real 5 m image with a known shift."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mindgap_core.data.manifest import MANIFEST_NAME, read_manifest, resolve
from mindgap_core.data.pairs import build_pairs, dt_days, plan_pairs
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io.geotiff import read_raster
from tests.fixtures.pairs import (
    ACQUIRED_PS,
    ACQUIRED_S2,
    make_pair_files,
    make_pair_rasters,
    moved_copy,
    write_reflectance_tif,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_pair_files(tmp_path_factory.mktemp("inputs"), size_lr=(96, 96))


@pytest.fixture(scope="module")
def built(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("pairs")
    calls = []
    path = build_pairs(files.s2_path, files.ps_path, scale=2, out_dir=out, tile_size=64,
                       on_progress=lambda d, t: calls.append((d, t)))
    return path, read_manifest(path), calls


def test_manifest_and_tiles(files, built):
    path, frame, calls = built
    assert path.name == MANIFEST_NAME
    assert len(frame) == 9 and frame["pair_id"].is_unique
    assert set(frame["domain"]) == {"real_cross_sensor"}
    assert set(frame["degradation"]) == {""}
    assert (frame["scale"] == 2).all() and (frame["tile_size_hr"] == 64).all()
    assert set(frame["crs"]) == {"EPSG:32618"}
    assert dt_days(ACQUIRED_S2, ACQUIRED_PS) == pytest.approx(1.9375)  # 1 day 22.5 h
    assert frame["dt_days"].iloc[0] == pytest.approx(1.9375)
    assert calls[0] == (0, 10) and calls[-1] == (10, 10)
    for row in frame.itertuples():
        lr = read_raster(resolve(path.parent, row.lr_path))
        hr = read_raster(resolve(path.parent, row.hr_path))
        assert lr.shape == (32, 32) and hr.shape == (64, 64)
        assert lr.band_names == hr.band_names == ("blue", "green", "red", "nir")
        assert lr.resolution == pytest.approx(10.0) and hr.resolution == pytest.approx(5.0)
        assert lr.bounds == hr.bounds == pytest.approx((row.hr_left, row.hr_bottom, row.hr_right, row.hr_top))
    params = json.loads(frame["params_json"].iloc[0])
    assert params["lr_resolution"] == 10.0 and params["correction"] == "none"


def test_recovers_injected_shift(files, built):
    _, frame, _ = built
    dx, dy = files.shift_lr
    scene = json.loads(frame["params_json"].iloc[0])["scene_shift_lr"]
    assert scene == pytest.approx([dx, dy], abs=0.1)
    assert frame["shift_x_lr"].median() == pytest.approx(dx, abs=0.1)
    assert frame["shift_y_lr"].median() == pytest.approx(dy, abs=0.1)
    assert not frame["shift_corrected"].any()


def test_shift_correction_reduces_shift(files, built, tmp_path):
    _, before, _ = built
    path = build_pairs(files.s2_path, files.ps_path, scale=2, out_dir=tmp_path, tile_size=64,
                       correct_shift=True, min_valid=0.8)
    after = read_manifest(path)
    assert after["shift_corrected"].all()
    mag_before = np.hypot(before["shift_x_lr"], before["shift_y_lr"]).median()
    mag_after = np.hypot(after["shift_x_lr"], after["shift_y_lr"]).median()
    assert mag_after < 0.1 and mag_after < mag_before / 3
    params = json.loads(after["params_json"].iloc[0])
    assert params["scene_shift_lr"] == pytest.approx(list(files.shift_lr), abs=0.1)
    assert np.hypot(*params["scene_residual_shift_lr"]) < 0.05


def test_blocks_and_splits(built):
    _, frame, _ = built
    assert frame.groupby("block_id")["split"].nunique().max() == 1
    for row in frame.itertuples():
        assert row.block_id == f"b{row.row // 2}_{row.col // 2}"
    assert set(frame["split"]) == {"train", "val", "test"}  # 4 blocks: every split non-empty


def test_deterministic_manifest_and_rebuild_removes_stale_tiles(files, built, tmp_path):
    path, _, _ = built
    again = build_pairs(files.s2_path, files.ps_path, scale=2, out_dir=tmp_path, tile_size=64)
    assert again.read_bytes() == path.read_bytes()
    rebuilt = build_pairs(files.s2_path, files.ps_path, scale=2, out_dir=tmp_path, tile_size=96)
    frame = read_manifest(rebuilt)
    assert len(frame) == 4
    assert sorted(p.name for p in (tmp_path / "hr").iterdir()) == sorted(f"{t}.tif" for t in frame["tile_id"])


def test_hr_in_another_crs_and_real_product_formats(tmp_path):
    files = make_pair_files(tmp_path / "in", hr_crs="EPSG:32619", size_lr=(64, 96))
    frame = read_manifest(build_pairs(files.s2_path, files.ps_path, scale=2, out_dir=tmp_path / "a"))
    assert frame["shift_x_lr"].median() == pytest.approx(files.shift_lr[0], abs=0.1)
    assert frame["shift_y_lr"].median() == pytest.approx(files.shift_lr[1], abs=0.1)
    assert set(frame["crs"]) == {"EPSG:32618"}

    products = make_pair_files(tmp_path / "prod", products=True, size_lr=(64, 96),
                               lr_cloud=(slice(0, 20), slice(0, 20)))
    assert products.s2_path.is_dir() and "AnalyticMS" in products.ps_path.name
    frame = read_manifest(build_pairs(products.s2_path, products.ps_path, scale=2, out_dir=tmp_path / "b"))
    assert "r0c0" not in set(frame["tile_id"])  # under the S2 (SCL) cloud
    assert len(frame) == 5
    assert frame["dt_days"].iloc[0] == pytest.approx(1.9375)


def test_min_valid_drops_partly_invalid_tiles(tmp_path):
    files = make_pair_files(tmp_path, size_lr=(64, 64), hr_nodata=(slice(0, 16), slice(0, 128)))
    strict = read_manifest(build_pairs(files.s2_path, files.ps_path, scale=2, out_dir=tmp_path / "a"))
    assert set(strict["tile_id"]) == {"r1c0", "r1c1"}
    loose = read_manifest(
        build_pairs(files.s2_path, files.ps_path, scale=2, out_dir=tmp_path / "b", min_valid=0.7)
    )
    assert set(loose["tile_id"]) == {"r0c0", "r0c1", "r1c0", "r1c1"}
    assert loose.set_index("tile_id").loc["r0c0", "valid_fraction"] == pytest.approx(0.75)


def expect_error(exc_type, match, s2, ps, out, **kw):
    with pytest.raises(exc_type, match=match) as err:
        build_pairs(s2, ps, scale=kw.pop("scale", 2), out_dir=out, **kw)
    assert not (out / MANIFEST_NAME).exists() and not out.exists()
    return str(err.value)


def test_errors_name_files_and_write_nothing(tmp_path):
    files = make_pair_files(tmp_path / "ok", size_lr=(64, 64))
    out = tmp_path / "out"
    far_hr = moved_copy(make_pair_rasters(size_lr=(64, 64)).hr, 20_000.0, 0.0)
    far = write_reflectance_tif(far_hr, tmp_path / "far.tif")
    msg = expect_error(InputError, "do not overlap", files.s2_path, far, out)
    assert str(files.s2_path) in msg and str(far) in msg

    blank = make_pair_files(tmp_path / "blank", size_lr=(64, 64), hr_nodata="all")
    msg = expect_error(InputError, "no valid pixel", blank.s2_path, blank.ps_path, out)
    assert str(blank.ps_path) in msg

    cloudy = make_pair_files(tmp_path / "cloud", size_lr=(64, 64), products=True, lr_cloud="all")
    msg = expect_error(InputError, "no valid pixel", cloudy.s2_path, cloudy.ps_path, out)
    assert str(cloudy.s2_path) in msg and "cloud" in msg
    cloudy_hr = make_pair_files(tmp_path / "cloud_hr", size_lr=(64, 64), products=True, hr_cloud="all")
    expect_error(InputError, "no valid pixel", cloudy_hr.s2_path, cloudy_hr.ps_path, out)

    msg = expect_error(ConfigError, "tile size 64 is not divisible by scale 3", files.s2_path, files.ps_path,
                       out, scale=3)
    three = make_pair_files(tmp_path / "three", size_lr=(64, 64), hr_bands=3)
    msg = expect_error(InputError, "band counts differ", three.s2_path, three.ps_path, out)
    assert three.ps_path.name in msg and "3 bands" in msg
    expect_error(InputError, "no such file", tmp_path / "nope.tif", files.ps_path, out)
    expect_error(InputError, "smaller than one 256x256 tile", files.s2_path, files.ps_path, out,
                 tile_size=256)
    partly = make_pair_files(tmp_path / "partly", size_lr=(64, 64), hr_nodata=(slice(0, 128), slice(50, 78)))
    expect_error(InputError, "no 64x64 HR tile has at least 90% valid", partly.s2_path, partly.ps_path, out)


def test_bands_matched_by_name_in_any_order(files, tmp_path):
    lr = read_raster(files.s2_path)
    shuffled = lr.replace(array=lr.array[::-1].copy(), band_names=("B08", "B04", "B03", "B02"))
    s2 = write_reflectance_tif(shuffled, tmp_path / "s2_reordered.tif")
    a = plan_pairs(files.s2_path, files.ps_path, scale=2)
    b = plan_pairs(s2, files.ps_path, scale=2)
    assert b.scene.lr.band_names == ("blue", "green", "red", "nir")
    assert np.array_equal(a.scene.lr.array, b.scene.lr.array)
