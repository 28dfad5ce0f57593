from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from skimage.filters import window
from skimage.registration import phase_cross_correlation

from mindgap_core.data.grid import downsample_area
from mindgap_core.degrade.sensor_config import EFFECTS, SimulatorConfig, TemporalConfig
from mindgap_core.degrade.sensor_params import (
    CHANGE_PALETTE,
    ChangedObject,
    SimulatorParams,
    params_for_tile,
    sample_params,
    spectral_base_matrix,
    tile_seed,
)
from mindgap_core.degrade.sensor_sim import displacement_field, fourier_shift, simulate_cross_sensor
from mindgap_core.degrade.synthetic import gaussian_blur
from mindgap_core.errors import ConfigError
from mindgap_core.types import CANONICAL_BANDS

SCALE = 4


def simulate(hr: np.ndarray, params: SimulatorParams, scale: int = SCALE) -> np.ndarray:
    return simulate_cross_sensor(hr, CANONICAL_BANDS, scale, params)


def test_effect_names() -> None:
    assert EFFECTS == ("mtf", "spectral", "radiometric", "temporal", "misregistration", "noise")
    assert SimulatorConfig().enabled_effects == EFFECTS
    assert SimulatorConfig.all_off().enabled_effects == ()
    assert SimulatorConfig().with_only("noise", "mtf").enabled_effects == ("mtf", "noise")
    without_temporal = tuple(e for e in EFFECTS if e != "temporal")
    assert SimulatorConfig().without("temporal").enabled_effects == without_temporal
    with pytest.raises(ConfigError, match="unknown simulator effect.*known: mtf, spectral"):
        SimulatorConfig().with_only("clouds")


def test_all_off_is_exactly_area_downsampling(hr_tile: np.ndarray) -> None:
    params = params_for_tile(SimulatorConfig.all_off(), 0, "t0")
    assert params == SimulatorParams()
    before = hr_tile.copy()
    np.testing.assert_array_equal(simulate(hr_tile, params), downsample_area(hr_tile, SCALE))
    np.testing.assert_array_equal(hr_tile, before)


@pytest.mark.parametrize("effect", EFFECTS)
def test_each_effect_changes_output_only_when_on(hr_tile: np.ndarray, effect: str) -> None:
    area = downsample_area(hr_tile, SCALE)
    all_on = params_for_tile(SimulatorConfig(), 7, "tile-3")
    only = params_for_tile(SimulatorConfig().with_only(effect), 7, "tile-3")
    assert only.enabled_effects == (effect,)
    # an effect's drawn values do not depend on which other effects are on (own random stream)
    assert getattr(only, effect) == getattr(all_on, effect)

    on = simulate(hr_tile, only)
    assert on.shape == area.shape and on.dtype == np.float32
    diff = np.abs(on - area)
    assert diff.mean() > 5e-4, f"{effect} barely changes the output (mean |diff| {diff.mean():.2e})"

    # switching the effect off again gives back plain area downsampling, bit for bit
    off = simulate(hr_tile, replace(only, **{effect: None}))
    np.testing.assert_array_equal(off, area)
    # and removing it from the full chain changes the full chain's output
    without = params_for_tile(SimulatorConfig().without(effect), 7, "tile-3")
    assert getattr(without, effect) is None
    assert not np.allclose(simulate(hr_tile, without), simulate(hr_tile, all_on))


def test_same_seed_same_output_different_seed_different(hr_tile: np.ndarray) -> None:
    config = SimulatorConfig()
    a = simulate(hr_tile, params_for_tile(config, 0, "a"))
    b = simulate(hr_tile, params_for_tile(config, 0, "a"))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, simulate(hr_tile, params_for_tile(config, 1, "a")))
    assert not np.array_equal(a, simulate(hr_tile, params_for_tile(config, 0, "b")))
    assert params_for_tile(config, 0, 5) == params_for_tile(config, 0, "5")


def test_tile_seed_is_a_stable_hash() -> None:
    # pinned: a change here silently changes every simulated dataset
    assert tile_seed(0, "tile-0") == int.from_bytes(
        __import__("hashlib").sha256(b"mindgap-sensor-sim:0:tile-0").digest()[:8], "little"
    )
    assert tile_seed(0, "tile-0") == 17543166246952317808
    assert tile_seed(0, "tile-0") != tile_seed(1, "tile-0") != tile_seed(0, "tile-1")


def test_sample_params_draws_within_config_ranges() -> None:
    config = SimulatorConfig()
    for i in range(20):
        p = sample_params(config, np.random.default_rng(i))
        assert 0.25 <= p.mtf.mtf_nyquist <= 0.35
        assert abs(p.misregistration.dx) <= 0.5 and abs(p.misregistration.dy) <= 0.5
        assert 0 <= p.misregistration.warp_amplitude <= 0.1
        assert 1 <= len(p.temporal.objects) <= 3
        matrix = np.asarray(p.spectral.matrix)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)
        assert (matrix >= 0).all() and np.abs(matrix - np.eye(4)).max() < 0.15
        assert all(0.95 <= g <= 1.05 for g in p.spectral.gains)


def test_spectral_base_matrix_is_near_identity() -> None:
    matrix = spectral_base_matrix()
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert np.all(np.diag(matrix) > 0.9)
    assert matrix[0, 1] > 0.01  # S2 B2 (FWHM 66 nm) sees some of PlanetScope's green


def test_params_json_round_trip() -> None:
    configs = (SimulatorConfig(), SimulatorConfig().with_only("temporal", "noise"), SimulatorConfig.all_off())
    for config in configs:
        params = params_for_tile(config, 3, "tile-9")
        text = json.dumps(params.to_dict())
        assert SimulatorParams.from_dict(json.loads(text)) == params
    config = SimulatorConfig().without("mtf")
    assert SimulatorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_params_from_dict_rejects_garbage() -> None:
    with pytest.raises(ConfigError):
        SimulatorParams.from_dict({"mtf": {"not_a_field": 1.0}})
    with pytest.raises(ConfigError, match="unknown simulator effect"):
        SimulatorParams.from_dict({"blur": None})


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="mtf_nyquist_range"):
        SimulatorConfig().mtf.__class__(mtf_nyquist_range=(0.4, 0.2))
    with pytest.raises(ConfigError, match="ndvi_ramp"):
        TemporalConfig(ndvi_ramp=(0.5, 0.2))


def test_params_are_resolution_free(hr_tile: np.ndarray) -> None:
    """The same params apply at another tile size and scale."""
    params = params_for_tile(SimulatorConfig(), 0, "x")
    assert simulate(hr_tile, params, scale=2).shape == (4, 64, 64)
    assert simulate(hr_tile[:, :64, :96], params).shape == (4, 16, 24)


def test_band_order_is_respected(hr_tile: np.ndarray) -> None:
    params = params_for_tile(SimulatorConfig().without("misregistration", "mtf"), 2, "o")
    canonical = simulate(hr_tile, params)
    order = [3, 1, 0, 2]
    names = tuple(CANONICAL_BANDS[i] for i in order)
    shuffled = simulate_cross_sensor(hr_tile[order], names, SCALE, params)
    np.testing.assert_allclose(shuffled, canonical[order], atol=1e-6)


def test_wrong_bands_and_scale(hr_tile: np.ndarray) -> None:
    params = SimulatorParams()
    with pytest.raises(ConfigError, match="needs exactly the bands"):
        simulate_cross_sensor(hr_tile[:3], ("blue", "green", "red"), SCALE, params)
    with pytest.raises(ConfigError, match="scale 3 does not divide"):
        simulate_cross_sensor(hr_tile, CANONICAL_BANDS, 3, params)


def test_changed_object_has_its_reflectance(hr_tile: np.ndarray) -> None:
    base = params_for_tile(SimulatorConfig().with_only("temporal"), 0, "obj")
    roof = ChangedObject("bright_roof", "rectangle", 0.5, 0.5, 0.25, 0.25, CHANGE_PALETTE["bright_roof"])
    params = replace(base, temporal=replace(base.temporal, greening=0.0, objects=(roof,)))
    lr = simulate(hr_tile, params)
    # HR rows/cols 48..79 are inside: LR 12..19; interior LR blocks hold exactly the roof
    roof_pixels = np.broadcast_to(np.array(roof.reflectance)[:, None, None], (4, 6, 6))
    np.testing.assert_allclose(lr[:, 13:19, 13:19], roof_pixels, atol=1e-6)
    area = downsample_area(hr_tile, SCALE)
    np.testing.assert_array_equal(lr[:, :11], area[:, :11])  # untouched outside


def test_greening_moves_nir_and_red_in_vegetation_only() -> None:
    veg = np.array([0.03, 0.06, 0.04, 0.40], dtype=np.float32)  # NDVI 0.82
    soil = np.array([0.10, 0.14, 0.18, 0.22], dtype=np.float32)  # NDVI 0.10
    hr = np.concatenate([np.broadcast_to(v[:, None, None], (4, 8, 8)) for v in (veg, soil)], axis=2)
    base = params_for_tile(SimulatorConfig().with_only("temporal"), 0, "veg")
    params = replace(base, temporal=replace(base.temporal, greening=0.1, objects=()))
    lr = simulate_cross_sensor(hr, CANONICAL_BANDS, 8, params)
    np.testing.assert_allclose(lr[:, 0, 0], veg * np.array([1, 1, 0.9, 1.1]), rtol=1e-6)
    np.testing.assert_allclose(lr[:, 0, 1], soil, rtol=1e-6)


def test_noise_quantises_to_l2a_dn(hr_tile: np.ndarray) -> None:
    params = params_for_tile(SimulatorConfig().with_only("noise"), 0, "n")
    lr = simulate(hr_tile, params)
    dn = lr.astype(np.float64) * 10000
    np.testing.assert_allclose(dn, np.round(dn), atol=1e-2)
    residual = lr - downsample_area(hr_tile, SCALE)
    assert 5e-4 < residual.std() < 5e-3
    assert lr.min() >= 0


def test_integer_shift_moves_content_right_and_down(hr_tile: np.ndarray) -> None:
    """Sign convention: +dx moves content right (east), +dy moves it down (south)."""
    base = params_for_tile(SimulatorConfig().with_only("misregistration"), 0, "s")
    params = replace(base, misregistration=replace(base.misregistration, dx=1.0, dy=2.0, warp_amplitude=0.0))
    lr, area = simulate(hr_tile, params), downsample_area(hr_tile, SCALE)
    np.testing.assert_allclose(lr[:, 2:, 1:], area[:, :-2, :-1], atol=1e-5)


def test_warp_is_zero_mean_around_the_shift() -> None:
    base = params_for_tile(SimulatorConfig(), 4, "w")
    m = replace(base.misregistration, warp_amplitude=0.1)
    dx, dy = displacement_field(m, 64, 64)
    assert dx.mean() == pytest.approx(m.dx, abs=1e-9) and dy.mean() == pytest.approx(m.dy, abs=1e-9)
    assert 0 < np.abs(dx - m.dx).max() <= 0.1 + 1e-9


def test_fourier_shift_exact_for_integers() -> None:
    x = np.random.default_rng(0).random((2, 16, 20)).astype(np.float32)
    np.testing.assert_allclose(fourier_shift(x, 0.0, 0.0), x, atol=1e-6)
    np.testing.assert_allclose(fourier_shift(x, 3.0, -2.0)[:, 3:, :-2], x[:, :-3, 2:], atol=1e-5)


@pytest.mark.parametrize("scale", [2, 4])
def test_misregistration_recovered_by_phase_correlation(scale: int, read_tile) -> None:
    """Injected (dx, dy) LR pixels (warp included) are found within 0.1 LR px.

    Area-downsampled real imagery is aliased, which biases sub-pixel phase correlation toward whole
    pixels; a 1 LR-pixel Gaussian low-pass, mean removal and a Hann window remove that bias (they do
    not depend on the shift). phase_cross_correlation returns the shift that registers ``moving`` onto
    ``reference``, i.e. minus the content motion: (-dy, -dx).
    """
    hr = read_tile(64 * scale, 100, 150)[0]
    reference = downsample_area(hr, scale).mean(axis=0)
    hann = window("hann", reference.shape)

    def prepare(img: np.ndarray) -> np.ndarray:
        smooth = gaussian_blur(img[None], 1.0)[0]
        return (smooth - smooth.mean()) * hann

    rng = np.random.default_rng(scale)
    for i in range(4):
        base = params_for_tile(SimulatorConfig().with_only("misregistration"), i, f"reg-{scale}")
        dx, dy = rng.uniform(-0.5, 0.5, size=2)
        params = replace(base, misregistration=replace(base.misregistration, dx=float(dx), dy=float(dy)))
        moving = simulate(hr, params, scale).mean(axis=0)
        estimate, _, _ = phase_cross_correlation(
            prepare(reference), prepare(moving), upsample_factor=100, normalization=None
        )
        assert estimate == pytest.approx([-dy, -dx], abs=0.1), f"injected dx={dx:.3f} dy={dy:.3f}"
