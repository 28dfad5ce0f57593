from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from mindgap_core.data.grid import downsample_area
from mindgap_core.degrade.apply import DEGRADATION_METHODS, degrade_raster, params_sidecar_path
from mindgap_core.degrade.sensor_config import SimulatorConfig
from mindgap_core.degrade.sensor_params import SimulatorParams, params_for_tile
from mindgap_core.degrade.sensor_sim import simulate_cross_sensor
from mindgap_core.degrade.synthetic import NoiseConfig, bicubic
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.types import CANONICAL_BANDS, GeoRaster


@pytest.fixture()
def hr_raster(read_tile) -> GeoRaster:
    array, transform, crs = read_tile(64, 120, 200)
    return GeoRaster(array, transform, crs, band_names=CANONICAL_BANDS, tags={"source": "x"})


def test_methods() -> None:
    assert DEGRADATION_METHODS == ("bicubic", "gaussian_mtf", "opensr_like", "simulated_cross_sensor")


@pytest.mark.parametrize("method", DEGRADATION_METHODS)
def test_lr_grid_and_metadata(hr_raster: GeoRaster, method: str) -> None:
    lr, record = degrade_raster(hr_raster, method, 4, seed=1)
    assert lr.shape == (16, 16) and lr.array.dtype == np.float32
    assert lr.transform == hr_raster.transform @ Affine.scale(4)
    assert lr.resolution == 20.0 and lr.bounds == pytest.approx(hr_raster.bounds)
    assert lr.crs == hr_raster.crs and lr.band_names == CANONICAL_BANDS and lr.units == "reflectance"
    assert lr.mask is None
    assert lr.tags["source"] == "x" and lr.tags["mindgap_degradation"] == method
    assert record["method"] == method and record["scale"] == 4 and record["seed"] == 1
    assert record["lr_shape"] == [16, 16]
    json.dumps(record)  # JSON-safe
    simulated = method == "simulated_cross_sensor"
    assert record["simulated"] is simulated
    assert ("simulated" in lr.tags["description"]) is simulated


def test_synthetic_pixels_and_noise(hr_raster: GeoRaster) -> None:
    lr, record = degrade_raster(hr_raster, "bicubic", 2)
    np.testing.assert_array_equal(lr.array, bicubic(hr_raster.array, 2))
    noisy, record = degrade_raster(hr_raster, "bicubic", 2, seed=5, noise=NoiseConfig(sigma=0.01))
    again, _ = degrade_raster(hr_raster, "bicubic", 2, seed=5, noise=NoiseConfig(sigma=0.01))
    np.testing.assert_array_equal(noisy.array, again.array)
    assert np.std(noisy.array - lr.array) == pytest.approx(0.01, rel=0.1)
    assert record["noise"] == {"sigma": 0.01, "signal_dependent": False, "read_sigma": 0.0}


def test_simulated_uses_seed_tile_and_config(hr_raster: GeoRaster) -> None:
    config = SimulatorConfig().without("noise")
    lr, record = degrade_raster(hr_raster, "simulated_cross_sensor", 4, seed=3, config=config, tile_id="t7")
    params = params_for_tile(config, 3, "t7")
    assert SimulatorParams.from_dict(record["parameters"]) == params
    assert record["effects"] == list(config.enabled_effects) and record["label"] == "simulated cross-sensor"
    expected = simulate_cross_sensor(hr_raster.array, CANONICAL_BANDS, 4, params)
    np.testing.assert_array_equal(lr.array, expected)
    off, _ = degrade_raster(hr_raster, "simulated_cross_sensor", 4, config=SimulatorConfig.all_off())
    np.testing.assert_array_equal(off.array, downsample_area(hr_raster.array, 4))


def test_simulator_keeps_canonical_bands_in_order(hr_raster: GeoRaster) -> None:
    names = ("nir", "red", "green", "blue", "extra")
    array = np.concatenate([hr_raster.array[::-1], hr_raster.array[:1]])
    raster = hr_raster.replace(array=array, band_names=names)
    lr, record = degrade_raster(raster, "simulated_cross_sensor", 4, config=SimulatorConfig.all_off())
    assert lr.band_names == CANONICAL_BANDS and record["bands"] == list(CANONICAL_BANDS)


def test_mask_is_all_valid_in_block_and_nodata_does_not_spread(hr_raster: GeoRaster) -> None:
    mask = np.ones((64, 64), dtype=bool)
    mask[5, 9] = False  # LR block (1, 2) at scale 4
    array = hr_raster.array.copy()
    array[:, 5, 9] = np.nan
    raster = hr_raster.replace(array=array, mask=mask, nodata=-1.0)
    lr, _ = degrade_raster(raster, "gaussian_mtf", 4)
    expected = np.ones((16, 16), dtype=bool)
    expected[1, 2] = False
    np.testing.assert_array_equal(lr.mask, expected)
    assert np.isfinite(lr.array).all()
    assert (lr.array[:, 1, 2] == -1.0).all() and (lr.array[:, expected] > 0).all()


def test_errors(hr_raster: GeoRaster) -> None:
    with pytest.raises(InputError, match="hr.tif: units are 'DN'"):
        degrade_raster(hr_raster.replace(units="DN"), "bicubic", 4, source="hr.tif")
    with pytest.raises(InputError, match="looks like digital numbers"):
        degrade_raster(hr_raster.replace(array=hr_raster.array * 10000), "bicubic", 4)
    with pytest.raises(InputError, match="size 64x64 .* not divisible by scale 3"):
        degrade_raster(hr_raster, "bicubic", 3)
    with pytest.raises(ConfigError, match="positive integer"):
        degrade_raster(hr_raster, "bicubic", 0)
    with pytest.raises(ConfigError, match="method 'lanczos'; known: bicubic, gaussian_mtf, opensr_like, sim"):
        degrade_raster(hr_raster, "lanczos", 4)
    rgb = hr_raster.select(("blue", "green", "red"))
    with pytest.raises(InputError, match="needs the bands blue, green, red, nir; missing nir"):
        degrade_raster(rgb, "simulated_cross_sensor", 4)
    assert degrade_raster(rgb, "bicubic", 4)[0].band_names == ("blue", "green", "red")
    with pytest.raises(ConfigError, match="apply to simulated_cross_sensor only"):
        degrade_raster(hr_raster, "bicubic", 4, config=SimulatorConfig())
    with pytest.raises(ConfigError, match="draws its own noise"):
        degrade_raster(hr_raster, "simulated_cross_sensor", 4, noise=NoiseConfig())


def test_params_sidecar_path() -> None:
    from pathlib import Path

    assert params_sidecar_path(Path("out/lr.tif")) == Path("out/lr.tif.params.json")


def test_crs_none_is_kept(hr_raster: GeoRaster) -> None:
    lr, _ = degrade_raster(hr_raster.replace(crs=None), "opensr_like", 2)
    assert lr.crs is None and lr.shape == (32, 32)
    assert isinstance(hr_raster.crs, CRS)
