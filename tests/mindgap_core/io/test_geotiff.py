"""read_raster / write_cog / validate_cog on the real sample imagery."""

from __future__ import annotations

import errno
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io import geotiff, read_raster, validate_cog, write_cog
from mindgap_core.types import CANONICAL_BANDS
from tests.fixtures import HR_IMAGE, S2_PATCH, hr_sample_reflectance

ACQUIRED = datetime(2023, 7, 14, 15, 30, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def hr_reflectance():
    """The real 5 m image as float32 pseudo-reflectance with a mask (a cloud-like hole, a nodata edge)."""
    raw = hr_sample_reflectance(max_reflectance=0.4)
    mask = np.ones(raw.shape, dtype=bool)
    mask[100:140, 200:260] = False
    mask[:, -7:] = False
    return raw.replace(mask=mask, acquired=ACQUIRED, tags={"SENSOR": "test"})


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_read_raster_real_image(demo_source_dir):
    r = read_raster(demo_source_dir / HR_IMAGE)
    assert r.array.shape == (4, 403, 515) and r.array.dtype == np.uint8
    assert r.band_names == ("b1", "b2", "b3", "b4")  # the file has no band descriptions
    assert r.crs.to_epsg() == 32618 and r.resolution == 5.0
    assert r.units == "DN" and r.mask is None and r.acquired is None


@pytest.mark.parametrize("window", [None, (slice(150, 182), slice(240, 272))], ids=["515x403", "32x32"])
def test_cog_round_trip_keeps_everything(hr_reflectance, tmp_path, window):
    raster = hr_reflectance
    if window is not None:
        rows, cols = window
        raster = raster.replace(
            array=raster.array[:, rows, cols],
            mask=raster.mask[rows, cols].copy(),
            transform=raster.transform @ raster.transform.translation(cols.start, rows.start),
        )
        raster.mask[:3, :5] = False
    path = write_cog(raster, tmp_path / "out.tif")
    assert path == tmp_path / "out.tif"

    is_valid, errors, _ = validate_cog(path)
    assert is_valid, errors
    back = read_raster(path)
    np.testing.assert_array_equal(back.array, raster.array)
    np.testing.assert_array_equal(back.mask, raster.mask)
    assert back.crs == raster.crs and back.transform == raster.transform
    assert back.band_names == CANONICAL_BANDS
    assert back.units == "reflectance" and back.acquired == ACQUIRED
    assert back.tags["SENSOR"] == "test"
    with rasterio.open(path) as src:
        block = 256 if window is None else 32  # a tile smaller than a block gets a block its size
        assert src.block_shapes[0] == (block, block)  # rasterio calls one whole-image block "not tiled"
        assert src.overviews(1) == ([2, 4] if window is None else [])
    assert _files(tmp_path) == ["out.tif"]


def test_cog_round_trip_nodata_carries_the_mask(demo_source_dir, tmp_path):
    raw = read_raster(demo_source_dir / HR_IMAGE, band_names=CANONICAL_BANDS)
    mask = np.ones(raw.shape, dtype=bool)
    mask[:50, :80] = False
    dn = raw.replace(array=raw.array.astype(np.uint16) * 40 + 1, nodata=0, mask=mask, units="DN")
    path = write_cog(dn, tmp_path / "dn.tif", blocksize=128)
    assert validate_cog(path)[0]
    back = read_raster(path)
    assert back.nodata == 0 and back.units == "DN" and back.array.dtype == np.uint16
    np.testing.assert_array_equal(back.mask, mask)
    np.testing.assert_array_equal(back.array[:, mask], dn.array[:, mask])
    assert np.all(back.array[:, ~mask] == 0)


def test_write_cog_casts_dtype_and_refuses_values_that_do_not_fit(hr_reflectance, tmp_path):
    scaled = hr_reflectance.replace(array=hr_reflectance.array * 10000)
    path = write_cog(scaled, tmp_path / "u16.tif", dtype="uint16")
    back = read_raster(path)
    assert back.array.dtype == np.uint16
    np.testing.assert_array_equal(back.array, np.rint(scaled.array).astype(np.uint16))
    with pytest.raises(ConfigError, match="uint8"):
        write_cog(scaled, tmp_path / "u8.tif", dtype="uint8")
    assert _files(tmp_path) == ["u16.tif"]


def test_write_cog_is_deterministic(hr_reflectance, tmp_path):
    a = write_cog(hr_reflectance, tmp_path / "a.tif")
    b = write_cog(hr_reflectance, tmp_path / "b.tif")
    assert a.read_bytes() == b.read_bytes()
    changed = hr_reflectance.replace(array=hr_reflectance.array + np.float32(0.001))
    assert write_cog(changed, tmp_path / "c.tif").read_bytes() != a.read_bytes()


def test_validate_cog_rejects_a_plain_striped_tiff(demo_source_dir):
    is_valid, errors, _ = validate_cog(demo_source_dir / S2_PATCH)  # striped, no overviews
    assert not is_valid and errors


def test_write_into_unwritable_folder_raises_and_leaves_nothing(hr_reflectance, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(InputError) as err:
        write_cog(hr_reflectance, blocker / "out.tif")
    assert "out.tif" in str(err.value)
    assert _files(tmp_path) == ["not_a_folder"]


def test_write_onto_a_folder_raises_and_leaves_nothing(hr_reflectance, tmp_path):
    (tmp_path / "out.tif").mkdir()
    with pytest.raises(InputError, match="out.tif: cannot write here"):
        write_cog(hr_reflectance, tmp_path / "out.tif")
    assert _files(tmp_path) == ["out.tif"] and _files(tmp_path / "out.tif") == []


def test_failure_mid_write_leaves_old_file_and_no_temp(hr_reflectance, tmp_path, monkeypatch):
    dest = tmp_path / "scene.tif"
    dest.write_bytes(b"previous version")

    def half_then_disk_full(path: Path, data: bytes) -> None:
        path.write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(geotiff, "_write_file", half_then_disk_full)
    with pytest.raises(InputError, match="No space left"):
        write_cog(hr_reflectance, dest)
    assert dest.read_bytes() == b"previous version"
    assert _files(tmp_path) == ["scene.tif"]


def test_gdal_encoding_error_writes_nothing(hr_reflectance, tmp_path):
    with pytest.raises(ConfigError, match="compression"):
        write_cog(hr_reflectance, tmp_path / "x.tif", compress="no-such-codec")
    with pytest.raises(ConfigError, match="multiple of 16"):
        write_cog(hr_reflectance, tmp_path / "x.tif", blocksize=100)
    assert _files(tmp_path) == []


# --- every bad input: exactly one InputError naming the file --------------------------------------


def _assert_names_file(err: pytest.ExceptionInfo[InputError], path: Path) -> None:
    assert err.value.source == str(path)
    assert str(err.value).startswith(f"{path}: ")
    assert err.value.__cause__ is None  # one clean error, not a GDAL traceback chain


def test_missing_file(tmp_path):
    path = tmp_path / "nope.tif"
    with pytest.raises(InputError, match="not found") as err:
        read_raster(path)
    _assert_names_file(err, path)


def test_text_file_renamed_tif(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("band,value\nB02,0.05\n")
    with pytest.raises(InputError, match="cannot be opened as a raster") as err:
        read_raster(path)
    _assert_names_file(err, path)


@pytest.mark.parametrize("source", ["real", "cog"])
def test_truncated_tiff(demo_source_dir, hr_reflectance, tmp_path, source):
    if source == "real":
        full = demo_source_dir / HR_IMAGE
    else:
        full = write_cog(hr_reflectance, tmp_path / "full.tif")
    data = full.read_bytes()
    path = tmp_path / "half.tif"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as err:
        read_raster(path)
    _assert_names_file(err, path)


def test_wrong_band_count(demo_source_dir):
    path = demo_source_dir / HR_IMAGE
    with pytest.raises(InputError, match="has 4 band") as err:
        read_raster(path, band_names=("blue", "green", "red"))
    _assert_names_file(err, path)


def test_no_crs_when_required(demo_source_dir):
    path = demo_source_dir / S2_PATCH  # real S2 patch without georeferencing
    assert read_raster(path).crs is None  # fine when not required
    with pytest.raises(InputError, match="no coordinate reference system") as err:
        read_raster(path, require_crs=True)
    _assert_names_file(err, path)


def test_uint16_dn_where_reflectance_expected(demo_source_dir):
    path = demo_source_dir / S2_PATCH  # uint16 DN = reflectance x 10000
    with pytest.raises(InputError, match="digital numbers") as err:
        read_raster(path, units="reflectance")
    _assert_names_file(err, path)
    assert read_raster(path).units == "DN"


def test_band_names_from_descriptions(demo_source_dir):
    assert read_raster(demo_source_dir / S2_PATCH).band_names == ("B02", "B03", "B04", "B08")


def test_half_float_cog_is_valid_smaller_and_close(tmp_path) -> None:
    """``half_float`` (display products) keeps ~3 significant digits at about half the size."""
    import numpy as np
    from affine import Affine

    from mindgap_core.io import read_raster, validate_cog, write_cog
    from mindgap_core.types import GeoRaster

    rng = np.random.default_rng(0)
    array = (0.05 + 0.3 * rng.random((4, 64, 64))).astype(np.float32)
    raster = GeoRaster(array, Affine(5, 0, 0, 0, -5, 0), None, ("blue", "green", "red", "nir"))
    full = write_cog(raster, tmp_path / "full.tif")
    half = write_cog(raster, tmp_path / "half.tif", half_float=True)
    assert validate_cog(half)[0]
    assert half.stat().st_size < 0.75 * full.stat().st_size
    back = read_raster(half).array
    assert back.dtype == np.float32
    assert np.abs(back - array).max() <= 1e-3 * array.max()
    assert not np.array_equal(back, array)  # it really is stored with fewer bits


def test_small_tiles_get_a_block_just_big_enough(tmp_path) -> None:
    """A 64 x 64 tile is one 64 x 64 block (no padding to 256: padding bloated tiles tenfold)."""
    import numpy as np
    import rasterio
    from affine import Affine

    from mindgap_core.io import validate_cog, write_cog
    from mindgap_core.types import GeoRaster

    rng = np.random.default_rng(1)
    array = (0.05 + 0.3 * rng.random((4, 64, 64))).astype(np.float32)
    raster = GeoRaster(array, Affine(5, 0, 0, 0, -5, 0), None, ("blue", "green", "red", "nir"))
    first = write_cog(raster, tmp_path / "a.tif", half_float=True)
    second = write_cog(raster, tmp_path / "b.tif", half_float=True)
    assert first.read_bytes() == second.read_bytes()
    assert validate_cog(first)[0]
    with rasterio.open(first) as src:
        assert src.block_shapes[0] == (64, 64)
    assert first.stat().st_size < 64 * 64 * 4 * 2  # below the raw size of the half floats
