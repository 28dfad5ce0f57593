from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from mindgap_core.cli import main
from mindgap_core.degrade.sensor_config import SimulatorConfig
from mindgap_core.degrade.sensor_params import SimulatorParams, sample_params
from mindgap_core.io import read_raster, write_cog
from mindgap_core.types import CANONICAL_BANDS, GeoRaster


@pytest.fixture()
def hr_path(tmp_path: Path, read_tile) -> Path:
    array, transform, crs = read_tile(64, 120, 200)
    raster = GeoRaster(array=array, transform=transform, crs=crs, band_names=CANONICAL_BANDS)
    return write_cog(raster, tmp_path / "hr.tif")


def test_simulated_end_to_end(tmp_path: Path, hr_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lr" / "sim.tif"
    argv = ["degrade", "--hr", str(hr_path), "--method", "simulated_cross_sensor", "--scale", "4"]
    code = main([*argv, "--out", str(out), "--seed", "11", "--disable", "temporal", "noise"])
    assert code == 0, capsys.readouterr().err
    lr = read_raster(out)
    assert lr.shape == (16, 16) and lr.band_names == CANONICAL_BANDS and lr.units == "reflectance"
    hr = read_raster(hr_path)
    assert lr.transform.a == 4 * hr.transform.a and lr.crs == hr.crs
    with rasterio.open(out) as src:
        assert "simulated" in src.tags()["description"]

    record = json.loads((tmp_path / "lr" / "sim.tif.params.json").read_text())
    assert record["method"] == "simulated_cross_sensor" and record["scale"] == 4 and record["seed"] == 11
    assert record["simulated"] is True and "temporal" not in record["effects"]
    params = SimulatorParams.from_dict(record["parameters"])
    assert params.temporal is None and params.noise is None and params.mtf is not None
    assert params == sample_params(SimulatorConfig().without("temporal", "noise"), np.random.default_rng(11))

    # same command, same bytes
    again = tmp_path / "again.tif"
    assert main([*argv, "--out", str(again), "--seed", "11", "--disable", "temporal", "noise"]) == 0
    np.testing.assert_array_equal(read_raster(again).array, lr.array)


def test_synthetic_with_noise(tmp_path: Path, hr_path: Path) -> None:
    out = tmp_path / "bicubic.tif"
    argv = ["degrade", "--hr", str(hr_path), "--method", "bicubic", "--scale", "2", "--out", str(out)]
    assert main([*argv, "--noise-sigma", "0.01", "--signal-dependent-noise"]) == 0
    record = json.loads(Path(f"{out}.params.json").read_text())
    assert record["simulated"] is False and record["noise"]["signal_dependent"] is True
    with rasterio.open(out) as src:
        assert "simulated" not in src.tags()["description"]
        assert src.shape == (32, 32)


def test_dn_input_needs_dn_scale(tmp_path: Path, read_tile, capsys: pytest.CaptureFixture[str]) -> None:
    array, transform, crs = read_tile(64, 120, 200)
    dn_array = np.round(array * 10000).astype(np.uint16)
    dn = GeoRaster(array=dn_array, transform=transform, crs=crs, band_names=CANONICAL_BANDS, units="DN")
    dn_path = write_cog(dn, tmp_path / "dn.tif")
    out = tmp_path / "lr.tif"
    argv = ["degrade", "--hr", str(dn_path), "--method", "gaussian_mtf", "--scale", "4", "--out", str(out)]
    assert main(argv) == 2
    assert "units are 'DN'" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--dn-scale", "0.0001"]) == 0 and out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scale", "3"], "not divisible by scale 3"),
        (["--scale", "4", "--method", "nearest"], "unknown degradation method 'nearest'"),
        (["--scale", "4", "--disable", "clouds"], "unknown simulator effect"),
        (["--scale", "4", "--method", "bicubic", "--disable", "mtf"], "apply to simulated_cross_sensor only"),
    ],
)
def test_bad_input_exit_2_and_no_output(
    tmp_path: Path, hr_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "bad.tif"
    argv = ["degrade", "--hr", str(hr_path), "--method", "simulated_cross_sensor", "--out", str(out), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and not Path(f"{out}.params.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hr.tif"]


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["degrade", "--hr", str(tmp_path / "nope.tif"), "--method", "bicubic", "--scale", "2"]
    assert main([*argv, "--out", str(tmp_path / "o.tif")]) == 2
    assert "file not found" in capsys.readouterr().err
