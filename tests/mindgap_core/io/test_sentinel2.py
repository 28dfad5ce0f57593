"""read_sentinel2 on simulated L2A products built from the real Sentinel-2 patch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io import DEFAULT_SCL_INVALID, read_sentinel2, write_cog
from mindgap_core.io.sentinel2 import parse_mtd_msil2a
from tests.fixtures.sentinel2_safe import (
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MED,
    SCL_SHADOW,
    make_s2_cog_folder,
    make_safe,
    simulate_l2a,
)

START = datetime(2023, 7, 14, 15, 38, 19, 24000, tzinfo=UTC)


@pytest.fixture(scope="module")
def products(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("s2")
    return {
        "04.00": make_safe(root, baseline="04.00"),
        "03.01": make_safe(root, baseline="03.01"),
        "cogs": make_s2_cog_folder(root, baseline="04.00"),
    }


@pytest.fixture(scope="module")
def sim():
    return simulate_l2a()


def _band_file(safe: Path, band: str) -> Path:
    return next(safe.glob(f"GRANULE/*/IMG_DATA/R10m/*_{band}_10m.jp2"))


def _expected_valid(sim, invalid=DEFAULT_SCL_INVALID) -> np.ndarray:
    scl_10m = np.kron(sim.scl, np.ones((2, 2), dtype=np.uint8))
    return ~np.isin(scl_10m, sorted(invalid)) & np.all(sim.reflectance_dn > 0, axis=0)


def test_safe_baseline_04_applies_the_metadata_offset(products, sim):
    s2 = read_sentinel2(products["04.00"])
    assert s2.band_names == ("blue", "green", "red", "nir")
    assert s2.tags["S2_BANDS"] == "B02,B03,B04,B08"
    assert s2.tags["BOA_ADD_OFFSET"] == "-1000,-1000,-1000,-1000"
    assert s2.array.dtype == np.float32 and s2.units == "reflectance"
    assert s2.crs.to_epsg() == 32618 and s2.resolution == 10.0
    assert s2.acquired == START
    expected = (sim.reflectance_dn / 10000.0).astype(np.float32)
    np.testing.assert_allclose(s2.array[:, s2.mask], expected[:, s2.mask], atol=1e-7)
    with rasterio.open(_band_file(products["04.00"], "B02")) as src:
        stored = src.read(1)
    assert np.all(stored[s2.mask] == sim.reflectance_dn[0][s2.mask] + 1000)  # DN carry the offset


def test_offset_applied_only_from_baseline_04(products):
    new, old = read_sentinel2(products["04.00"]), read_sentinel2(products["03.01"])
    assert old.tags["BOA_ADD_OFFSET"] == "0,0,0,0" and "03.01" in old.tags["BOA_OFFSET_SOURCE"]
    np.testing.assert_array_equal(new.mask, old.mask)
    np.testing.assert_array_equal(new.array, old.array)  # same scene, stored two ways
    with rasterio.open(_band_file(products["04.00"], "B04")) as a:
        with rasterio.open(_band_file(products["03.01"], "B04")) as b:
            assert not np.array_equal(a.read(1), b.read(1))  # the DN on disk do differ
    # Ignoring the offset would make every valid reflectance 0.1 too bright.
    no_offset = read_sentinel2(products["04.00"], boa_offset=0.0)
    np.testing.assert_allclose(no_offset.array[:, new.mask] - new.array[:, new.mask], 0.1, atol=1e-6)


def test_offset_is_read_from_metadata_not_hard_coded(products, tmp_path):
    import shutil

    safe = Path(shutil.copytree(products["04.00"], tmp_path / products["04.00"].name))
    mtd = safe / "MTD_MSIL2A.xml"
    mtd.write_text(mtd.read_text().replace(">-1000</BOA_ADD_OFFSET>", ">-900</BOA_ADD_OFFSET>"))
    assert parse_mtd_msil2a(mtd).offsets["B08"] == -900.0
    shifted, ref = read_sentinel2(safe), read_sentinel2(products["04.00"])
    np.testing.assert_allclose(shifted.array[:, ref.mask] - ref.array[:, ref.mask], 0.01, atol=1e-6)

    text = mtd.read_text()
    start, end = text.index("<BOA_ADD_OFFSET_VALUES_LIST>"), text.index("</BOA_ADD_OFFSET_VALUES_LIST>")
    mtd.write_text(text[:start] + text[end + len("</BOA_ADD_OFFSET_VALUES_LIST>") :])
    with pytest.raises(InputError, match="no BOA_ADD_OFFSET") as err:
        read_sentinel2(safe)
    assert err.value.source == str(safe)


def test_scl_masks_clouds_and_shadows(products, sim):
    s2 = read_sentinel2(products["04.00"])
    np.testing.assert_array_equal(s2.mask, _expected_valid(sim))
    scl_10m = np.kron(sim.scl, np.ones((2, 2), dtype=np.uint8))
    cloudy = np.isin(scl_10m, [SCL_CLOUD_MED, SCL_CLOUD_HIGH, SCL_SHADOW])
    assert 0.08 < cloudy.mean() < 0.3 and not s2.mask[cloudy].any()
    assert not s2.mask[:5, :5].any()  # the no-data wedge (DN 0)
    # The masked clouds are bright: they would bias any statistic.
    assert s2.array[2][scl_10m == SCL_CLOUD_HIGH].mean() > 2 * s2.array[2][s2.mask].mean()


def test_custom_scl_classes(products, sim):
    only_nodata = read_sentinel2(products["04.00"], scl_invalid=frozenset({0}))
    np.testing.assert_array_equal(only_nodata.mask, _expected_valid(sim, {0}))
    assert only_nodata.mask.sum() > read_sentinel2(products["04.00"]).mask.sum()


def test_safe_with_geotiff_bands_and_from_mtd_path(tmp_path, products):
    tif_safe = make_safe(tmp_path, baseline="04.00", image_format="tif")
    a, b = read_sentinel2(tif_safe / "MTD_MSIL2A.xml"), read_sentinel2(products["04.00"])
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_array_equal(a.mask, b.mask)


def test_per_band_cog_folder_matches_safe(products):
    cogs, safe = read_sentinel2(products["cogs"]), read_sentinel2(products["04.00"])
    np.testing.assert_array_equal(cogs.array, safe.array)
    np.testing.assert_array_equal(cogs.mask, safe.mask)
    assert cogs.tags["BOA_OFFSET_SOURCE"] == "file tag" and cogs.acquired == START
    subset = read_sentinel2(products["cogs"], bands=("nir", "B04"))
    assert subset.band_names == ("nir", "red")
    np.testing.assert_array_equal(subset.array[0], safe.band("nir"))


def test_per_band_mapping_and_unknown_baseline(tmp_path, products):
    bare = make_s2_cog_folder(tmp_path, baseline="04.00", offset_tag=False)
    ref = read_sentinel2(products["04.00"])
    assumed = read_sentinel2(bare)  # no tag, no argument: baseline unknown, no offset
    assert "baseline unknown" in assumed.tags["BOA_OFFSET_SOURCE"]
    np.testing.assert_allclose(assumed.array[:, ref.mask] - ref.array[:, ref.mask], 0.1, atol=1e-6)
    mapping = {b: bare / f"{b}.tif" for b in ("B02", "B03", "B04", "B08", "SCL")}
    told = read_sentinel2(mapping, boa_offset=-1000)
    np.testing.assert_array_equal(told.array, ref.array)
    np.testing.assert_array_equal(told.mask, ref.mask)


def test_missing_band_and_bad_arguments(tmp_path, products):
    folder = make_s2_cog_folder(tmp_path)
    (folder / "B08.tif").unlink()
    with pytest.raises(InputError, match="B08") as err:
        read_sentinel2(folder)
    assert err.value.source == str(folder)
    with pytest.raises(InputError, match="not found"):
        read_sentinel2(tmp_path / "S2A_missing.SAFE")
    with pytest.raises(ConfigError, match="B05"):
        read_sentinel2(products["04.00"], bands=("B02", "B05"))


def test_float_reflectance_band_is_refused(tmp_path, products):
    """A band that already holds reflectance must not be offset and divided again."""
    from mindgap_core.io import read_raster

    folder = tmp_path / "float_bands"
    ref = read_sentinel2(products["04.00"])
    for b, name in zip(("B02", "B03", "B04", "B08"), ref.band_names, strict=True):
        single = ref.select((name,)).replace(band_names=(b,))
        write_cog(single, folder / f"{b}.tif")
    assert read_raster(folder / "B02.tif").units == "reflectance"
    with pytest.raises(InputError, match="reflectance already") as err:
        read_sentinel2(folder)
    assert err.value.source == str(folder / "B02.tif")


def test_zipped_safe_as_downloaded(products, tmp_path):
    import shutil

    safe = products["04.00"]
    archive = Path(
        shutil.make_archive(str(tmp_path / safe.stem), "zip", root_dir=safe.parent, base_dir=safe.name)
    )
    zipped, ref = read_sentinel2(archive), read_sentinel2(safe)
    np.testing.assert_array_equal(zipped.array, ref.array)
    np.testing.assert_array_equal(zipped.mask, ref.mask)
    assert zipped.acquired == START and zipped.tags["PROCESSING_BASELINE"] == "04.00"
    broken = tmp_path / "broken.zip"
    broken.write_bytes(archive.read_bytes()[:1000])
    with pytest.raises(InputError, match="zip") as err:
        read_sentinel2(broken)
    assert err.value.source == str(broken)


def test_per_band_baseline_tags(tmp_path, products):
    from mindgap_core.io import read_raster

    ref = read_sentinel2(products["04.00"])
    old = read_sentinel2(make_s2_cog_folder(tmp_path, baseline="03.01"))  # tag 03.01, no offset tag
    assert old.tags["BOA_OFFSET_SOURCE"] == "none (baseline 03.01 < 04.00)"
    np.testing.assert_array_equal(old.array, ref.array)

    stated = tmp_path / "stated_only"
    for b in ("B02", "B03", "B04", "B08"):
        band = read_raster(products["cogs"] / f"{b}.tif")
        write_cog(band.replace(tags={"PROCESSING_BASELINE": "05.09"}), stated / f"{b}.tif")
    with pytest.raises(InputError, match="no BOA_ADD_OFFSET tag") as err:
        read_sentinel2(stated)
    assert err.value.source == str(stated / "B02.tif")
    np.testing.assert_array_equal(read_sentinel2(stated, boa_offset=-1000).array, ref.array)
