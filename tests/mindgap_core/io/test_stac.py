"""STAC items (local JSON and URL) read like the equivalent .SAFE product and PlanetScope files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from mindgap_core.errors import InputError
from mindgap_core.io.geotiff import parse_time
from mindgap_core.io.planetscope import read_planetscope
from mindgap_core.io.sentinel2 import read_sentinel2
from mindgap_core.io.stac import looks_like_stac_item, read_planetscope_item, read_sentinel2_item
from mindgap_core.types import GeoRaster
from tests.fixtures.planetscope import make_planetscope
from tests.fixtures.range_server import served_folder
from tests.fixtures.sentinel2_safe import START_TIME, make_safe, simulate_l2a, stored_dn
from tests.fixtures.stac import planet_item, safe_band_files, sentinel2_item, write_cog

WHEN = parse_time(START_TIME)


def assert_same_raster(a: GeoRaster, b: GeoRaster) -> None:
    assert a.band_names == b.band_names and a.transform == b.transform and a.crs == b.crs
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_array_equal(a.valid, b.valid)
    assert a.acquired == b.acquired


@pytest.fixture(scope="module")
def safes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("safe")
    return {b: make_safe(root / b, baseline=b, image_format="tif") for b in ("04.00", "03.01")}


def test_planetary_computer_item_equals_safe(safes: dict[str, Path], tmp_path: Path) -> None:
    for baseline, safe in safes.items():
        item = sentinel2_item(tmp_path / f"pc_{baseline}.json", safe_band_files(safe),
                              style="planetary_computer", when=WHEN,
                              properties={"s2:processing_baseline": baseline})
        got = read_sentinel2_item(item)
        assert_same_raster(got, read_sentinel2(safe))
        expected_offset = "-1000" if baseline == "04.00" else "0"
        assert got.tags["BOA_ADD_OFFSET"].split(",") == [expected_offset] * 4
        assert f"s2:processing_baseline={baseline}" in got.tags["BOA_OFFSET_SOURCE"]
        assert got.tags["STAC_ITEM"] == json.loads(item.read_text())["id"]
        assert got.tags["SCL_INVALID"] != "none (no SCL file)"
        assert (~got.valid).sum() > 1000  # the SAFE's clouds and no-data wedge, through the SCL asset


def test_earth_search_item_with_offset_removed_equals_safe(safes: dict[str, Path], tmp_path: Path) -> None:
    # Earth Search v1 removed the offset from its COGs and says so: the DN of a 04.00 product are
    # stored as a pre-04.00 product stores them.
    sim = simulate_l2a()
    old_dn = stored_dn(sim, "03.01")
    safe = safes["04.00"]
    files = safe_band_files(safe)
    cogs = {b: write_cog(tmp_path / "cogs" / f"{b}.tif", old_dn[i], files[b])
            for i, b in enumerate(("B02", "B03", "B04", "B08"))}
    cogs["SCL"] = files["SCL"]
    item = sentinel2_item(tmp_path / "es.json", cogs, style="earth_search", when=WHEN,
                          properties={"s2:processing_baseline": "04.00",
                                      "earthsearch:boa_offset_applied": True},
                          raster_scaling=(0.0001, -0.1))  # mis-set offsets are ignored when the flag says so
    got = read_sentinel2_item(item)
    assert_same_raster(got, read_sentinel2(safe))
    assert "earthsearch:boa_offset_applied=true" in got.tags["BOA_OFFSET_SOURCE"]
    # the same COGs without the flag would be read 0.1 too dark: the flag is what makes them right
    wrong = sentinel2_item(tmp_path / "es_noflag.json", cogs, style="earth_search", when=WHEN,
                           properties={"s2:processing_baseline": "04.00"})
    too_dark = read_sentinel2_item(wrong).array[:, got.valid]
    assert np.allclose(too_dark, got.array[:, got.valid] - 0.1, atol=1e-6)


def test_collection1_raster_scaling_and_baseline_from_id(safes: dict[str, Path], tmp_path: Path) -> None:
    safe = safes["04.00"]
    # Earth Search c1: raster:bands scale/offset, baseline in the properties
    c1 = sentinel2_item(tmp_path / "c1.json", safe_band_files(safe), style="earth_search", when=WHEN,
                        properties={"s2:processing_baseline": "05.10"}, raster_scaling=(0.0001, -0.1))
    got = read_sentinel2_item(c1)
    assert_same_raster(got, read_sentinel2(safe))
    assert "raster:bands" in got.tags["BOA_OFFSET_SOURCE"]
    # no baseline property: the N-field of the product URI (here N0400) decides
    bare = sentinel2_item(tmp_path / "bare.json", safe_band_files(safe), style="planetary_computer",
                          when=WHEN)
    got = read_sentinel2_item(bare)
    assert_same_raster(got, read_sentinel2(safe))
    assert "N-field of s2:product_uri" in got.tags["BOA_OFFSET_SOURCE"]


def test_footprint_reads_only_the_part_needed(safes: dict[str, Path], tmp_path: Path) -> None:
    from mindgap_core.data.grid import crop
    from mindgap_core.io.geotiff import Footprint

    safe = safes["04.00"]
    item = sentinel2_item(tmp_path / "pc.json", safe_band_files(safe), style="planetary_computer", when=WHEN,
                          properties={"s2:processing_baseline": "04.00"})
    whole = read_sentinel2_item(item)
    t = whole.transform
    corner = t @ (101.3, 57.6)
    footprint = Footprint(whole.crs, (corner[0], corner[1] - 400.0, corner[0] + 330.0, corner[1]), "hr.tif")
    part = read_sentinel2_item(item, footprint=footprint)
    r0, c0 = round((part.transform.f - t.f) / t.e), round((part.transform.c - t.c) / t.a)
    assert part.shape == (43, 36) and (r0, c0) == (56, 100)  # snapped outward, plus one pixel
    assert_same_raster(part, crop(whole, r0, c0, *part.shape))


def test_errors_name_the_item(safes: dict[str, Path], tmp_path: Path) -> None:
    files = safe_band_files(safes["04.00"])
    no_baseline = sentinel2_item(tmp_path / "x.json", files, style="earth_search", when=WHEN,
                                 item_id="S2B_18TWL_20230714_0_L2A")
    with pytest.raises(InputError, match="no processing baseline") as err:
        read_sentinel2_item(no_baseline)
    assert str(no_baseline) in str(err.value)
    missing = sentinel2_item(tmp_path / "m.json", {k: v for k, v in files.items() if k != "B08"},
                             style="earth_search", when=WHEN)
    with pytest.raises(InputError, match="no asset for band B08"):
        read_sentinel2_item(missing)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="bad.json: is not JSON"):
        read_sentinel2_item(tmp_path / "bad.json")
    collection = {"type": "Collection", "stac_version": "1.0.0", "id": "c", "description": "d",
                  "license": "CC-BY-4.0", "links": [],
                  "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[None, None]]}}}
    (tmp_path / "collection.json").write_text(json.dumps(collection))
    with pytest.raises(InputError, match="not an item"):
        read_sentinel2_item(tmp_path / "collection.json")
    with pytest.raises(InputError, match="no such STAC item file"):
        read_sentinel2_item(tmp_path / "nope.json")


@pytest.mark.parametrize("bands", [4, 8])
def test_planet_item_equals_files(bands: int, tmp_path: Path) -> None:
    sr = make_planetscope(tmp_path / "scene", bands=bands)
    udm2 = next((tmp_path / "scene").glob("*udm2*"))
    item = planet_item(tmp_path / "items" / "ps.json", sr, udm2,
                       when=datetime.fromisoformat("2023-07-14T15:30:12+00:00"), bands=bands)
    got = read_planetscope_item(item)
    assert_same_raster(got, read_planetscope(sr))
    assert (~got.valid).sum() > 1000 and got.tags["UDM2"] == udm2.name
    # an item without UDM2 has no cloud mask, even when a UDM2 file lies beside the SR file
    bare = read_planetscope_item(planet_item(tmp_path / "items" / "bare.json", sr, None, when=got.acquired,
                                             bands=bands))
    assert bare.tags["UDM2"] == "none given (no cloud mask)"
    assert bare.valid.sum() > got.valid.sum()


def test_looks_like_stac_item() -> None:
    assert looks_like_stac_item("item.json") and looks_like_stac_item(Path("a/b/ITEM.JSON"))
    assert looks_like_stac_item("https://earth-search.aws.element84.com/v1/collections/c/items/S2B_x")
    assert not looks_like_stac_item("https://example.com/B04.tif") and not looks_like_stac_item("s2.SAFE")


def test_items_and_assets_by_url(safes: dict[str, Path], tmp_path: Path) -> None:
    # a loopback HTTP server stands in for a catalogue: the item is fetched by pystac, the COGs by GDAL
    import shutil

    safe = shutil.copytree(safes["04.00"], tmp_path / safes["04.00"].name)
    sentinel2_item(tmp_path / "s2.json", safe_band_files(safe), style="planetary_computer", when=WHEN,
                   properties={"s2:processing_baseline": "04.00"})
    sr = make_planetscope(tmp_path / "ps")
    planet_item(tmp_path / "ps.json", sr, next((tmp_path / "ps").glob("*udm2*")),
                when=datetime.fromisoformat("2023-07-14T15:30:12+00:00"))
    with served_folder(tmp_path) as base:
        got = read_sentinel2_item(f"{base}/s2.json")
        assert_same_raster(got, read_sentinel2(safe))
        assert got.tags["SOURCE"] == f"{base}/s2.json"
        assert_same_raster(read_planetscope_item(f"{base}/ps.json"), read_planetscope(sr))
        with pytest.raises(InputError, match="cannot read the STAC item"):
            read_sentinel2_item(f"{base}/missing.json")
