"""`mindgap pairs` on STAC items gives the same pairs as on the equivalent .SAFE / product files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from mindgap_core.cli import main
from mindgap_core.data.manifest import MANIFEST_NAME, read_manifest
from mindgap_core.data.pairs import align_scene, plan_pairs, read_hr_raster, read_lr_raster
from mindgap_core.io.geotiff import parse_time, read_raster
from mindgap_core.io.sentinel2 import read_sentinel2
from mindgap_core.types import GeoRaster
from tests.fixtures.pairs import ACQUIRED_PS, make_pair_files, write_planet_product
from tests.fixtures.sentinel2_safe import START_TIME, make_safe
from tests.fixtures.stac import planet_item, safe_band_files, sentinel2_item

SOURCE_COLUMNS = ["source_lr", "source_hr"]


def assert_same_pairs(expected_dir: Path, got_dir: Path) -> None:
    expected, got = read_manifest(expected_dir / MANIFEST_NAME), read_manifest(got_dir / MANIFEST_NAME)
    assert len(got) > 0
    pd.testing.assert_frame_equal(expected.drop(columns=SOURCE_COLUMNS), got.drop(columns=SOURCE_COLUMNS))
    for rel in [*expected["lr_path"], *expected["hr_path"]]:
        a, b = read_raster(expected_dir / rel), read_raster(got_dir / rel)
        np.testing.assert_array_equal(a.array, b.array)
        np.testing.assert_array_equal(a.valid, b.valid)
        assert a.transform == b.transform and a.crs == b.crs and a.band_names == b.band_names


def run_pairs(s2: Path | str, ps: Path | str, out: Path) -> Path:
    assert main(["pairs", "--s2", str(s2), "--ps", str(ps), "--scale", "2", "--out", str(out), "--tile", "32",
                 "--min-valid", "0.5", "--block-size", "1"]) == 0
    return out


def test_items_over_product_files_give_the_same_pairs(tmp_path: Path) -> None:
    files = make_pair_files(tmp_path / "in", products=True, size_lr=(64, 96),
                            lr_cloud=(slice(0, 20), slice(0, 20)), hr_cloud=(slice(100, 128), slice(0, 60)))
    band_files = {b: files.s2_path / f"{b}.tif" for b in ("B02", "B03", "B04", "B08", "SCL")}
    s2_item = sentinel2_item(tmp_path / "items" / "s2.json", band_files, style="earth_search",
                             when=files.rasters.lr.acquired, properties={"s2:processing_baseline": "05.09"})
    udm2 = next(files.ps_path.parent.glob("*udm2*"))
    ps_item = planet_item(tmp_path / "items" / "ps.json", files.ps_path, udm2, when=ACQUIRED_PS)
    expected = run_pairs(files.s2_path, files.ps_path, tmp_path / "from_files")
    got = run_pairs(s2_item, ps_item, tmp_path / "from_items")
    assert_same_pairs(expected, got)
    frame = read_manifest(got / MANIFEST_NAME)
    assert set(frame["source_lr"]) == {str(s2_item)} and set(frame["source_hr"]) == {str(ps_item)}
    assert "r0c0" not in set(frame["tile_id"])  # under the S2 cloud, masked through the scl asset


@pytest.fixture(scope="module")
def safe_and_hr(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The simulated .SAFE product (real S2 pixels) and a PlanetScope product over part of it: the
    S2 reflectance upsampled x2 (5 m), from row/col 40 of the 10 m grid, 120 x 140 HR pixels."""
    root = tmp_path_factory.mktemp("safe_pairs")
    safe = make_safe(root / "s2", baseline="04.00", image_format="tif")
    s2 = read_sentinel2(safe)
    window = s2.array[:, 40:100, 40:110]
    hr = GeoRaster(np.kron(window, np.ones((2, 2), np.float32)), s2.transform @ Affine.translation(40, 40)
                   @ Affine.scale(0.5), s2.crs, s2.band_names, acquired=ACQUIRED_PS)
    return safe, write_planet_product(hr, root / "ps")


def test_items_over_a_safe_product_give_the_same_pairs(
    safe_and_hr: tuple[Path, Path], tmp_path: Path
) -> None:
    safe, ps = safe_and_hr
    s2_item = sentinel2_item(tmp_path / "s2.json", safe_band_files(safe), style="planetary_computer",
                             when=parse_time(START_TIME), properties={"s2:processing_baseline": "04.00"})
    ps_item = planet_item(tmp_path / "ps.json", ps, next(ps.parent.glob("*udm2*")), when=ACQUIRED_PS)
    expected = run_pairs(safe, ps, tmp_path / "from_safe")
    got = run_pairs(s2_item, ps_item, tmp_path / "from_items")
    assert_same_pairs(expected, got)
    # reading the S2 only over the HR footprint changes nothing: same aligned scene as from the whole tile
    plan = plan_pairs(safe, ps, scale=2, tile_size=32)
    whole = align_scene(read_lr_raster(safe), read_hr_raster(ps), 2)
    assert read_lr_raster(safe).shape == (300, 300) and plan.scene.lr.shape == whole.lr.shape
    for a, b in ((plan.scene.lr, whole.lr), (plan.scene.hr, whole.hr)):
        np.testing.assert_array_equal(a.array, b.array)
        np.testing.assert_array_equal(a.valid, b.valid)
        assert a.transform == b.transform


def test_pairs_cli_names_a_bad_item(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "item.json").write_text('{"type": "Feature"}')
    code = main(["pairs", "--s2", str(tmp_path / "item.json"), "--ps", str(tmp_path / "item.json"),
                 "--scale", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and str(tmp_path / "item.json") in err and "STAC item" in err
    assert "Traceback" not in err and not (tmp_path / "out" / MANIFEST_NAME).exists()
