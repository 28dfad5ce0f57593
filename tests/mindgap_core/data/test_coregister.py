"""Sub-pixel phase correlation on the real 5 m image with known Fourier shifts."""

from __future__ import annotations

import numpy as np
import pytest

from mindgap_core.data.coregister import UNKNOWN_SHIFT, apply_shift, estimate_shift, shifted_valid
from mindgap_core.data.grid import downsample_area
from tests.fixtures import hr_sample_reflectance


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return hr_sample_reflectance().array[:, :400, :512].astype(np.float64)


@pytest.mark.parametrize(("dx", "dy"), [(0.3, -0.2), (-1.35, 0.8), (4.6, -2.25)])
def test_recovers_known_shift_with_sign_convention(image, dx, dy):
    moved = apply_shift(image, dx, dy, method="fourier")
    inner = (slice(None), slice(8, -8), slice(8, -8))  # drop the wrapped-around border
    shift = estimate_shift(image[inner], moved[inner])
    assert shift.dx == pytest.approx(dx, abs=0.02)
    assert shift.dy == pytest.approx(dy, abs=0.02)
    assert shift.peak > 0.8


def test_shift_survives_area_downsampling(image):
    """The pairs use case: LR vs HR area-downsampled, shift given in LR pixels."""
    dx, dy = 0.3, -0.2
    moved = apply_shift(image, 2 * dx, 2 * dy, method="fourier")
    ref, mov = downsample_area(image, 2)[:, 4:-4, 4:-4], downsample_area(moved, 2)[:, 4:-4, 4:-4]
    shift = estimate_shift(ref, mov)
    assert (shift.dx, shift.dy) == pytest.approx((dx, dy), abs=0.03)
    plain = estimate_shift(ref, mov, lowpass=None)  # unweighted phase correlation is biased here
    assert abs(plain.dx - dx) > abs(shift.dx - dx)


def test_correction_undoes_shift(image):
    moved = apply_shift(image, 1.4, -0.6, method="fourier")
    est = estimate_shift(image, moved)
    back = apply_shift(moved, -est.dx, -est.dy, method="bicubic")
    inner = (slice(None), slice(10, -10), slice(10, -10))
    residual = estimate_shift(image[inner], back[inner])
    assert residual.magnitude < 0.05 < est.magnitude
    assert np.abs(back - image)[inner].mean() < np.abs(moved - image)[inner].mean() / 3


def test_mask_ignores_invalid_pixels(image):
    moved = apply_shift(image, 0.5, 0.25, method="fourier")
    corrupted = moved.copy()
    corrupted[:, 100:200, 100:250] = 5.0  # a bright "cloud" present in one image only
    mask = np.ones(image.shape[1:], bool)
    mask[100:200, 100:250] = False
    inner = (slice(None), slice(8, -8), slice(8, -8))
    masked = estimate_shift(image[inner], corrupted[inner], mask=mask[8:-8, 8:-8])
    assert (masked.dx, masked.dy) == pytest.approx((0.5, 0.25), abs=0.05)


def test_unknown_when_too_few_valid_pixels(image):
    mask = np.zeros(image.shape[1:], bool)
    mask[:10, :10] = True
    shift = estimate_shift(image, image, mask=mask)
    assert not shift.is_valid and shift is UNKNOWN_SHIFT
    assert not estimate_shift(np.ones((32, 32)), np.ones((32, 32))).is_valid


def test_unrelated_images_have_low_peak(image):
    noise = np.random.default_rng(0).random(image.shape)
    assert estimate_shift(image, noise).peak < 0.2 < estimate_shift(image, image).peak


def test_shape_mismatch_and_bad_method(image):
    with pytest.raises(ValueError, match="shape"):
        estimate_shift(image, image[:, :-1])
    with pytest.raises(ValueError, match="unknown shift method"):
        apply_shift(image, 1, 1, method="sinc")


def test_apply_shift_does_not_mutate_and_integer_shift_is_exact(image):
    before = image.copy()
    out = apply_shift(image[0], 3, -2, method="bicubic")
    assert np.array_equal(image, before)
    assert np.allclose(out[10:-10, 10:-10], image[0, 12:-8, 7:-13], atol=1e-6)


def test_shifted_valid_marks_pixels_shifted_in():
    valid = np.ones((20, 30), bool)
    out = shifted_valid(valid, 2.5, -1.5)
    assert not out[:, :3].any() and not out[-2:, :].any()
    assert out[5:15, 5:25].all()
