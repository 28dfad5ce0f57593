"""read_planetscope on simulated 4- and 8-band scenes built from the real 5 m image."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio

from mindgap_core.errors import InputError
from mindgap_core.io import read_planetscope
from mindgap_core.types import CANONICAL_BANDS
from tests.fixtures.planetscope import SUPERDOVE_BANDS, make_planetscope, simulate_scene


@pytest.fixture(scope="module")
def scene():
    return simulate_scene()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ps")
    return {
        "4": make_planetscope(root / "four", bands=4),
        "8": make_planetscope(root / "eight", bands=8),
        "8-nodesc": make_planetscope(root / "eight_plain", bands=8, udm2=False),
    }


def _rewrite(src_path: Path, dst_path: Path, order: list[int], descriptions: tuple[str, ...] | None) -> Path:
    with rasterio.open(src_path) as src:
        profile, data = src.profile, src.read()
    profile.update(count=len(order))
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(data[order])
        if descriptions:
            dst.descriptions = descriptions
    return dst_path


def test_four_band_reflectance_and_time(files, scene):
    ps = read_planetscope(files["4"])
    assert ps.band_names == CANONICAL_BANDS and ps.array.dtype == np.float32
    assert ps.units == "reflectance" and ps.crs.to_epsg() == 32618 and ps.resolution == 5.0
    assert ps.acquired == datetime(2023, 7, 14, 15, 30, 12, tzinfo=UTC)
    np.testing.assert_allclose(ps.array, scene.dn / 10000.0, rtol=1e-6)
    assert ps.tags["PS_BANDS"] == "1,2,3,4"


def test_eight_band_picks_blue_green_red_nir_by_name(files, scene):
    ps4, ps8 = read_planetscope(files["4"]), read_planetscope(files["8"])
    assert ps8.tags["PS_BANDS"] == "2,4,6,8"
    np.testing.assert_array_equal(ps8.array, ps4.array)
    np.testing.assert_array_equal(ps8.mask, ps4.mask)
    with rasterio.open(files["8"]) as src:  # the first four bands are not what we want
        assert not np.array_equal(src.read(1), scene.dn[0]) and not np.array_equal(src.read(3), scene.dn[1])


def test_band_descriptions_win_over_the_standard_order(files, tmp_path):
    order = list(range(7, -1, -1))  # reversed, names follow the data
    path = _rewrite(
        files["8-nodesc"], tmp_path / "20230714_153012_61_24a3_3B_AnalyticMS_SR_8b.tif",
        order, tuple(SUPERDOVE_BANDS[i] for i in order),
    )  # fmt: skip
    shuffled = read_planetscope(path)
    assert shuffled.tags["PS_BAND_NAMES_FROM"] == "band descriptions"
    assert shuffled.tags["PS_BANDS"] == "7,5,3,1"
    np.testing.assert_array_equal(shuffled.array, read_planetscope(files["8-nodesc"]).array)


def test_udm2_mask(files, scene):
    ps = read_planetscope(files["4"])
    assert ps.tags["UDM2"].endswith("_udm2.tif")
    np.testing.assert_array_equal(ps.mask, (scene.udm2[0] == 1) & np.any(scene.dn > 0, axis=0))
    cloud = scene.udm2[5] == 1
    assert 0.05 < cloud.mean() < 0.15 and not ps.mask[cloud].any()
    assert ps.array[2][cloud].mean() > 2 * ps.array[2][ps.mask].mean()  # masked clouds keep values


def test_no_udm2_masks_only_nodata(files, scene):
    ps = read_planetscope(files["8-nodesc"])
    assert ps.tags["UDM2"].startswith("none found")
    np.testing.assert_array_equal(ps.mask, np.any(scene.dn > 0, axis=0))
    assert not ps.mask[-1, -1]


def test_explicit_udm2_path_elsewhere(files, tmp_path):
    udm2 = shutil.copy(next(files["4"].parent.glob("*_udm2.tif")), tmp_path / "mask.tif")
    with_mask = read_planetscope(files["8-nodesc"], udm2=udm2)
    np.testing.assert_array_equal(with_mask.mask, read_planetscope(files["4"]).mask)


def test_bad_inputs_name_the_file(files, tmp_path, scene):
    five = _rewrite(files["8-nodesc"], tmp_path / "five.tif", [0, 1, 2, 3, 4], None)
    with pytest.raises(InputError, match="has 5 band") as err:
        read_planetscope(five)
    assert err.value.source == str(five)

    bad_udm2 = _rewrite(next(files["4"].parent.glob("*_udm2.tif")), tmp_path / "udm2_3b.tif", [0, 1, 2], None)
    with pytest.raises(InputError, match="UDM2 file has 8") as err:
        read_planetscope(files["4"], udm2=bad_udm2)
    assert err.value.source == str(bad_udm2)

    with pytest.raises(InputError, match="not found"):
        read_planetscope(tmp_path / "20230714_153012_61_24a3_3B_AnalyticMS_SR.tif")


def test_float_reflectance_file_is_not_divided_again(files, tmp_path):
    with rasterio.open(files["4"]) as src:
        profile, data = src.profile, src.read()
    profile.update(dtype="float32", nodata=None)
    path = tmp_path / "20230714_153012_61_24a3_3B_AnalyticMS_SR.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write((data / 10000.0).astype(np.float32))
    with pytest.raises(InputError, match="reflectance already") as err:
        read_planetscope(path)
    assert err.value.source == str(path)
