"""HR reprojected onto the grid nested in the S2 pixel grid."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.crs import CRS

from mindgap_core.data.grid import (
    align_pair,
    combined_valid,
    crop_to_grid,
    downsample_area,
    downsample_valid,
)
from mindgap_core.data.pairs import pair_shift
from mindgap_core.errors import ConfigError, InputError
from tests.fixtures.pairs import make_pair_rasters, moved_copy, reproject_raster


@pytest.fixture(scope="module")
def pair():
    return make_pair_rasters(scale=2, size_lr=(60, 70))


def assert_nested(hr, lr, scale):
    """HR pixel corners on the LR grid: same CRS, LR/scale pixels, origin on an LR corner."""
    assert hr.crs == lr.crs
    assert hr.transform.a == pytest.approx(lr.transform.a / scale)
    assert hr.transform.e == pytest.approx(lr.transform.e / scale)
    col = (hr.transform.c - lr.transform.c) / lr.transform.a
    row = (hr.transform.f - lr.transform.f) / lr.transform.e
    assert col == pytest.approx(round(col), abs=1e-9) and row == pytest.approx(round(row), abs=1e-9)
    assert hr.shape[0] % scale == 0 and hr.shape[1] % scale == 0


def test_grid_already_nested_is_copied_exactly(pair):
    hr = align_pair(pair.hr, pair.lr, 2)[1]
    assert_nested(hr, pair.lr, 2)
    assert hr.shape == pair.hr.shape and hr.bounds == pair.hr.bounds
    assert np.allclose(hr.array, pair.hr.array, atol=1e-6)
    assert hr.valid.all()


def test_offset_hr_grid_is_resampled_onto_lr_corners():
    p = make_pair_rasters(scale=2, size_lr=(60, 70), hr_offset=(1, 3))  # HR starts mid-LR-pixel
    lr, hr = align_pair(p.hr, p.lr, 2)
    assert_nested(hr, p.lr, 2)
    assert lr.bounds == hr.bounds
    assert hr.shape == (2 * lr.shape[0], 2 * lr.shape[1])
    left, bottom, right, top = hr.bounds
    hl, hb, hr_r, ht = p.hr.bounds
    assert left >= hl and top <= ht and right <= hr_r and bottom >= hb  # inward: full LR pixels only
    assert hr.valid.all()


@pytest.mark.parametrize("crs", ["EPSG:32619", "EPSG:4326"])
def test_hr_in_another_crs(pair, crs):
    foreign = reproject_raster(pair.hr, crs)
    assert foreign.crs == CRS.from_user_input(crs)
    lr, hr = align_pair(foreign, pair.lr, 2)
    assert_nested(hr, pair.lr, 2)
    assert hr.resolution == pytest.approx(pair.lr.resolution / 2)
    valid = combined_valid(lr, hr, 2)
    assert valid.mean() > 0.9
    shift = pair_shift(lr, hr, valid, 2)
    assert (shift.dx, shift.dy) == pytest.approx(pair.shift_lr, abs=0.1)


def test_snap_inward_and_outward(pair):
    hr = moved_copy(pair.hr, 7.0, -3.0)  # footprint no longer on LR pixel corners
    inward = align_pair(hr, pair.lr, 2, snap="inward")[1]
    outward = align_pair(hr, pair.lr, 2, snap="outward")[1]
    assert_nested(inward, pair.lr, 2)
    assert_nested(outward, pair.lr, 2)
    assert inward.valid.all()
    assert outward.shape[0] > inward.shape[0] and outward.shape[1] > inward.shape[1]
    assert not outward.valid.all()  # partial LR pixels: HR pixels outside the footprint are invalid
    assert outward.valid[2:-2, 2:-2].all()


def test_masks_use_nearest_and_invalid_pixels_are_zero(pair):
    mask = pair.hr.valid.copy()
    mask[20:40, 30:50] = False
    hr = align_pair(pair.hr.replace(mask=mask), pair.lr, 2)[1]
    assert np.array_equal(hr.valid, mask)
    assert np.all(hr.array[:, ~hr.valid] == 0)


def test_crop_to_grid_and_combined_valid(pair):
    hr = moved_copy(pair.hr, 40.0, -20.0)  # 4 LR columns right, 2 LR rows down
    lr, aligned = align_pair(hr, pair.lr, 2)
    assert lr.bounds == aligned.bounds
    assert lr.shape == (pair.lr.shape[0] - 2, pair.lr.shape[1] - 4)
    assert np.array_equal(lr.array, pair.lr.array[:, 2:, 4:])
    lr_mask = lr.valid.copy()
    lr_mask[0, 0] = False
    valid = combined_valid(lr.replace(mask=lr_mask), aligned, 2)
    assert not valid[:2, :2].any() and valid[2:, 2:].all()
    assert np.array_equal(downsample_valid(valid, 2), lr_mask)
    assert crop_to_grid(pair.lr, aligned).bounds == aligned.bounds


def test_no_overlap_names_both_files(pair):
    far = moved_copy(pair.hr, 5000.0, 0.0)
    with pytest.raises(InputError, match="do not overlap") as err:
        align_pair(far, pair.lr, 2, hr_name="ps.tif", lr_name="s2.tif")
    assert "ps.tif" in str(err.value) and "s2.tif" in str(err.value)
    sliver = moved_copy(pair.hr, pair.lr.bounds[2] - pair.hr.bounds[0] - 4.0, 0.0)  # 4 m overlap
    with pytest.raises(InputError, match="do not overlap"):
        align_pair(sliver, pair.lr, 2, hr_name="ps.tif", lr_name="s2.tif")


def test_missing_crs_and_all_invalid(pair):
    with pytest.raises(InputError, match="ps.tif: has no CRS"):
        align_pair(pair.hr.replace(crs=None), pair.lr, 2, hr_name="ps.tif", lr_name="s2.tif")
    with pytest.raises(InputError, match="s2.tif: has no CRS"):
        align_pair(pair.hr, pair.lr.replace(crs=None), 2, hr_name="ps.tif", lr_name="s2.tif")
    dead = pair.hr.replace(mask=np.zeros(pair.hr.shape, bool))
    with pytest.raises(InputError, match="no valid pixel of ps.tif") as err:
        align_pair(dead, pair.lr, 2, hr_name="ps.tif", lr_name="s2.tif")
    assert "s2.tif" in str(err.value)
    dead_lr = pair.lr.replace(mask=np.zeros(pair.lr.shape, bool))
    with pytest.raises(InputError, match="no valid pixel of s2.tif"):
        align_pair(pair.hr, dead_lr, 2, hr_name="ps.tif", lr_name="s2.tif")
    half_lr, half_hr = pair.lr.valid.copy(), pair.hr.valid.copy()
    half_lr[:, :35] = False
    half_hr[:, 70:] = False  # valid halves that do not meet
    with pytest.raises(InputError, match="valid in both"):
        align_pair(pair.hr.replace(mask=half_hr), pair.lr.replace(mask=half_lr), 2)


def test_bad_settings(pair):
    with pytest.raises(ConfigError, match="resampling"):
        align_pair(pair.hr, pair.lr, 2, resampling="magic")
    with pytest.raises(ConfigError, match="scale"):
        align_pair(pair.hr, pair.lr, 0)


def test_downsample_area():
    a = np.arange(16, dtype=float).reshape(1, 4, 4)
    assert np.array_equal(downsample_area(a, 2)[0], [[2.5, 4.5], [10.5, 12.5]])
    with pytest.raises(ValueError):
        downsample_area(a[:, :3], 2)
