"""check_reflectance / check_digital_numbers: DN-vs-reflectance mix-ups give one clear InputError."""

from __future__ import annotations

import numpy as np
import pytest

from mindgap_core.errors import InputError
from mindgap_core.io import check_digital_numbers, check_reflectance
from tests.fixtures.sentinel2_safe import simulate_l2a


@pytest.fixture(scope="module")
def reflectance() -> np.ndarray:
    return (simulate_l2a(cloud_fraction=0.0).reflectance_dn / 10000.0).astype(np.float32)


def test_real_reflectance_passes(reflectance):
    check_reflectance(reflectance, "scene.tif")
    check_reflectance(np.zeros((4, 8, 8), np.float32), "empty.tif")  # nothing to judge
    check_reflectance(np.full((4, 8, 8), np.nan, np.float32), "all_nodata.tif")


def test_dn_passed_as_reflectance(reflectance):
    dn = np.rint(reflectance * 10000).astype(np.uint16)
    with pytest.raises(InputError, match="digital numbers") as err:
        check_reflectance(dn, "s2.tif")
    assert err.value.source == "s2.tif"


def test_reflectance_divided_twice(reflectance):
    with pytest.raises(InputError, match="divided by 10000 again"):
        check_reflectance(reflectance / 10000.0, "ps.tif")


def test_mask_excludes_invalid_pixels(reflectance):
    spoiled = reflectance.copy()
    spoiled[:, :20, :] = 30000.0  # e.g. fill values in a masked stripe
    mask = np.ones(spoiled.shape[1:], dtype=bool)
    mask[:20, :] = False
    check_reflectance(spoiled, "x.tif", mask)
    with pytest.raises(InputError):
        check_reflectance(spoiled, "x.tif")


def test_a_few_hot_pixels_are_tolerated(reflectance):
    glint = reflectance.copy()
    glint[:, 0, :5] = 2.5  # specular glint in < 1 % of values
    check_reflectance(glint, "x.tif")


def test_check_digital_numbers(reflectance):
    check_digital_numbers(np.rint(reflectance * 10000).astype(np.uint16), "dn.tif")
    check_digital_numbers((reflectance * 10000).astype(np.float32), "dn_as_float.tif")
    with pytest.raises(InputError, match="reflectance already"):
        check_digital_numbers(reflectance, "refl.tif")
