"""Degradation by windows equals whole-image degradation, bit for bit; files of any size stream."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from mindgap_core.cli import main
from mindgap_core.degrade.apply import SIMULATED_METHOD, degrade_file, degrade_raster
from mindgap_core.degrade.synthetic import SYNTHETIC_DEGRADATIONS, NoiseConfig
from mindgap_core.errors import InputError
from mindgap_core.io.geotiff import read_raster, write_cog
from mindgap_core.types import CANONICAL_BANDS, GeoRaster
from tests.fixtures import REPO_ROOT
from tests.fixtures.large_rasters import run_cli_capped, write_sparse

WHOLE = 10**6  # one window holds the whole image


@pytest.fixture(scope="module")
def masked_hr(read_tile) -> GeoRaster:
    """A 200 x 232 crop of the real 5 m image with invalid pixels: a cloud-like blob, a no-data strip
    and a few NaN values."""
    array, transform, crs = read_tile(232, 60, 120)
    array = array[:, :200].copy()
    rr, cc = np.mgrid[:200, :232]
    mask = ((rr - 70) ** 2 + (cc - 150) ** 2 > 18**2) & (cc > 6)
    array[2, 150, 40] = np.nan
    return GeoRaster(array, transform, crs, CANONICAL_BANDS, mask=mask)


@pytest.mark.parametrize("method", list(SYNTHETIC_DEGRADATIONS))
@pytest.mark.parametrize("scale", [2, 4])
def test_windows_equal_the_whole_image(masked_hr: GeoRaster, method: str, scale: int) -> None:
    noise = NoiseConfig(sigma=0.01, signal_dependent=True, read_sigma=0.002)
    whole, record = degrade_raster(masked_hr, method, scale, seed=3, noise=noise, window_hr=WHOLE)
    for window in (24, 40, 64):  # windows of 6-32 LR pixels: halos cross several windows
        parts, _ = degrade_raster(masked_hr, method, scale, seed=3, noise=noise, window_hr=window)
        np.testing.assert_array_equal(parts.array, whole.array)
        np.testing.assert_array_equal(parts.mask, whole.mask)
    assert whole.mask is not None and not whole.mask.all() and whole.mask.mean() > 0.8
    assert "noise_stream" in record


def test_file_stream_equals_in_memory(masked_hr: GeoRaster, tmp_path: Path) -> None:
    hr_path = write_cog(masked_hr, tmp_path / "hr.tif")
    record = degrade_file(hr_path, tmp_path / "lr.tif", "gaussian_mtf", 4, seed=2, window_hr=48)
    expected, expected_record = degrade_raster(read_raster(hr_path), "gaussian_mtf", 4, seed=2)
    got = read_raster(tmp_path / "lr.tif")
    np.testing.assert_array_equal(got.array, expected.array)
    np.testing.assert_array_equal(got.valid, expected.valid)
    assert got.transform == expected.transform and got.band_names == expected.band_names
    assert record == expected_record and got.tags["mindgap_degradation"] == "gaussian_mtf"


def test_file_with_nodata_value_and_dn(masked_hr: GeoRaster, tmp_path: Path) -> None:
    dn = np.where(masked_hr.valid[None], np.rint(np.nan_to_num(masked_hr.array) * 10000), 0).astype(np.uint16)
    raster = masked_hr.replace(array=dn, units="DN", nodata=0.0, mask=None)
    hr_path = write_cog(raster, tmp_path / "hr_dn.tif")
    degrade_file(hr_path, tmp_path / "lr.tif", "bicubic", 2, dn_scale=1e-4, window_hr=64)
    hr = read_raster(hr_path)
    hr = hr.replace(array=hr.array.astype(np.float32) * np.float32(1e-4), units="reflectance")
    expected, _ = degrade_raster(hr, "bicubic", 2)
    with rasterio.open(tmp_path / "lr.tif") as ds:
        assert ds.nodata == 0.0
        np.testing.assert_array_equal(ds.read(), expected.array)


def test_simulated_reads_whole_and_refuses_what_does_not_fit(
    masked_hr: GeoRaster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear = masked_hr.replace(mask=None, array=np.nan_to_num(masked_hr.array))
    hr_path = write_cog(clear, tmp_path / "hr.tif")
    record = degrade_file(hr_path, tmp_path / "lr.tif", SIMULATED_METHOD, 4, seed=1, tile_id="t1")
    expected, _ = degrade_raster(read_raster(hr_path), SIMULATED_METHOD, 4, seed=1, tile_id="t1")
    np.testing.assert_array_equal(read_raster(tmp_path / "lr.tif").array, expected.array)
    assert record["simulated"] is True
    monkeypatch.setenv("MINDGAP_MEMORY_BUDGET", "8M")
    refusal = r"hr.tif: simulated_cross_sensor works on the whole image; 200 x 232"
    with pytest.raises(InputError, match=refusal):
        degrade_file(hr_path, tmp_path / "lr2.tif", SIMULATED_METHOD, 4)
    assert not (tmp_path / "lr2.tif").exists()


def test_cli_on_a_sparse_raster_larger_than_the_windows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hr = write_sparse(tmp_path / "sparse.tif", 4096)
    out = tmp_path / "lr.tif"
    assert main(["degrade", "--hr", str(hr), "--method", "bicubic", "--scale", "4", "--out", str(out)]) == 0
    assert "1024x1024" in capsys.readouterr().out
    with rasterio.open(out) as ds:
        lr = ds.read(1, window=rasterio.windows.Window(512, 512, 128, 128))
        assert ds.shape == (1024, 1024) and lr[8:120, 8:120].min() > 0.19
        assert ds.read(1, window=((0, 64), (0, 64))).max() == 0
    record = json.loads((tmp_path / "lr.tif.params.json").read_text())
    assert record["lr_shape"] == [1024, 1024]


@pytest.mark.slow
def test_20000_square_sparse_raster_within_2_gib(tmp_path: Path) -> None:
    """The acceptance case of a PlanetScope-mosaic-sized raster: 20000 x 20000 x 4 float32 (6.4 GB in
    memory) through `mindgap degrade` in a child process whose address space is capped at 6 GiB (so a
    regression fails fast instead of taking the machine's memory); its peak resident memory must stay
    under 2 GiB, with no traceback."""
    hr = write_sparse(tmp_path / "big.tif", 20000)
    argv = ["degrade", "--hr", str(hr), "--method", "bicubic", "--scale", "4",
            "--out", str(tmp_path / "lr.tif")]
    result, stderr = run_cli_capped(argv, 6 << 30, REPO_ROOT)
    assert result["code"] == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    assert result["peak_rss"] < 2 * 1024**3, f"peak RSS {result['peak_rss'] / 1024**3:.2f} GiB"
    with rasterio.open(tmp_path / "lr.tif") as ds:
        assert ds.shape == (5000, 5000)
