from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from mindgap_core.data.grid import downsample_area
from mindgap_core.degrade.synthetic import (
    NOISE_BLOCK,
    SYNTHETIC_DEGRADATIONS,
    add_noise,
    bicubic,
    gaussian_blur,
    gaussian_kernel_1d,
    gaussian_mtf,
    opensr_like,
    sigma_for_mtf,
    unit_noise,
)
from mindgap_core.errors import ConfigError


def test_registry_names() -> None:
    assert set(SYNTHETIC_DEGRADATIONS) == {"bicubic", "gaussian_mtf", "opensr_like"}


@pytest.mark.parametrize("name", sorted(SYNTHETIC_DEGRADATIONS))
@pytest.mark.parametrize("scale", [2, 4])
def test_shapes_dtype_and_input_untouched(hr_tile: np.ndarray, name: str, scale: int) -> None:
    before = hr_tile.copy()
    lr = SYNTHETIC_DEGRADATIONS[name](hr_tile, scale)
    assert lr.shape == (4, 128 // scale, 128 // scale)
    assert lr.dtype == np.float32
    np.testing.assert_array_equal(hr_tile, before)
    # an LR image still resembles the HR one: same mean reflectance within a few percent
    assert abs(lr.mean() - hr_tile.mean()) < 0.02 * hr_tile.mean()


@pytest.mark.parametrize("name", sorted(SYNTHETIC_DEGRADATIONS))
def test_constant_image_stays_constant(name: str) -> None:
    hr = np.full((4, 32, 48), 0.25, dtype=np.float32)
    np.testing.assert_allclose(SYNTHETIC_DEGRADATIONS[name](hr, 4), 0.25, atol=1e-6)


@pytest.mark.parametrize("name", sorted(SYNTHETIC_DEGRADATIONS))
def test_deterministic(hr_tile: np.ndarray, name: str) -> None:
    fn = SYNTHETIC_DEGRADATIONS[name]
    np.testing.assert_array_equal(fn(hr_tile, 4), fn(hr_tile, 4))


@pytest.mark.parametrize("name", sorted(SYNTHETIC_DEGRADATIONS))
def test_scale_must_divide_size(name: str) -> None:
    hr = np.zeros((4, 30, 32), dtype=np.float32)
    with pytest.raises(ConfigError, match="scale 4 does not divide the image size 30x32"):
        SYNTHETIC_DEGRADATIONS[name](hr, 4)


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_scale_must_be_positive_integer(bad: object) -> None:
    with pytest.raises(ConfigError, match="positive integer"):
        bicubic(np.zeros((1, 8, 8), dtype=np.float32), bad)  # type: ignore[arg-type]


def test_wrong_ndim() -> None:
    with pytest.raises(ConfigError, match=r"\(bands, H, W\)"):
        bicubic(np.zeros((8, 8), dtype=np.float32), 2)


def test_area_downsample_is_block_mean(hr_tile: np.ndarray) -> None:
    expected = hr_tile.reshape(4, 32, 4, 32, 4).astype(np.float64).mean(axis=(2, 4))
    np.testing.assert_allclose(downsample_area(hr_tile, 4), expected, rtol=1e-6)
    pooled = F.avg_pool2d(torch.from_numpy(hr_tile)[None], kernel_size=4)[0].numpy()
    np.testing.assert_array_equal(downsample_area(hr_tile, 4), pooled)  # float32: same bits as torch


def test_bicubic_is_torch_antialiased_bicubic(hr_tile: np.ndarray) -> None:
    ref = F.interpolate(torch.from_numpy(hr_tile)[None], size=(64, 64), mode="bicubic", antialias=True)[0]
    np.testing.assert_allclose(bicubic(hr_tile, 2), ref.numpy(), atol=1e-6)


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("mtf", [0.25, 0.3, 0.35, 0.5])
def test_sigma_for_mtf_gives_requested_mtf_at_nyquist(scale: int, mtf: float) -> None:
    """The DFT of the sampled, truncated kernel at 0.5/scale cycles per HR pixel equals ``mtf``."""
    kernel_1d = gaussian_kernel_1d(sigma_for_mtf(mtf, scale)).astype(np.float64)
    kernel_2d = np.outer(kernel_1d, kernel_1d)
    n = 256  # bin k sits at k/n cycles per pixel: the Nyquist bin is n / (2 scale)
    spectrum = np.abs(np.fft.fft2(kernel_2d, s=(n, n)))
    k = n // (2 * scale)
    assert spectrum[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert spectrum[0, k] == pytest.approx(mtf, abs=2e-3)
    assert spectrum[k, 0] == pytest.approx(mtf, abs=2e-3)


def test_sigma_for_mtf_formula() -> None:
    # scale 4, MTF 0.3: sigma = sqrt(-ln 0.3 / (2 pi^2 0.125^2)) ~ 1.976 HR px
    assert sigma_for_mtf(0.3, 4) == pytest.approx(math.sqrt(-math.log(0.3) / (2 * math.pi**2 / 64)))
    assert sigma_for_mtf(0.3, 4) == pytest.approx(1.9759, abs=1e-3)
    with pytest.raises(ConfigError):
        sigma_for_mtf(1.2, 4)


def test_gaussian_blur_attenuates_nyquist_cosine_by_mtf() -> None:
    """A cosine at the LR Nyquist frequency keeps ``mtf`` of its amplitude after the PSF."""
    scale, mtf = 4, 0.3
    cols = np.arange(256)
    wave = np.cos(2 * np.pi * (0.5 / scale) * cols)
    hr = np.broadcast_to(0.2 + 0.1 * wave, (1, 64, 256)).astype(np.float32)
    blurred = gaussian_blur(hr, sigma_for_mtf(mtf, scale))
    interior = blurred[0, 32, 32:-32] - 0.2
    amplitude = np.sqrt(2 * np.mean(interior**2)) / 0.1
    assert amplitude == pytest.approx(mtf, abs=0.005)


def test_gaussian_mtf_is_blur_then_area(hr_tile: np.ndarray) -> None:
    expected = downsample_area(gaussian_blur(hr_tile, sigma_for_mtf(0.3, 4)), 4)
    np.testing.assert_allclose(gaussian_mtf(hr_tile, 4), expected, atol=1e-7)
    # a lower MTF is a blurrier image: less high-frequency energy
    sharp, soft = gaussian_mtf(hr_tile, 4, mtf_nyquist=0.6), gaussian_mtf(hr_tile, 4, mtf_nyquist=0.1)
    assert np.abs(np.diff(soft, axis=-1)).mean() < np.abs(np.diff(sharp, axis=-1)).mean()


def test_opensr_like_matches_opensr_degradation_recipe(hr_tile: np.ndarray) -> None:
    """Same as torchvision GaussianBlur(13, sigma=3.1) + bilinear interpolate(scale_factor=1/4)."""
    blur = torchvision.transforms.GaussianBlur(13, sigma=3.1)
    x = torch.from_numpy(hr_tile)
    blurred = torch.cat([blur(x[i][None]) for i in range(4)])
    ref = F.interpolate(blurred[None], scale_factor=1 / 4, mode="bilinear", antialias=False)[0]
    np.testing.assert_allclose(opensr_like(hr_tile, 4), ref.numpy(), atol=1e-5)


def test_add_noise_seeded_and_sized(hr_tile: np.ndarray) -> None:
    lr = downsample_area(hr_tile, 4)
    before = lr.copy()
    a = add_noise(lr, 3, sigma=0.01)
    b = add_noise(lr, 3, sigma=0.01)
    c = add_noise(lr, 4, sigma=0.01)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(lr, before)
    assert np.std(a - lr) == pytest.approx(0.01, rel=0.05)
    assert np.corrcoef((a - lr)[0].ravel(), (a - lr)[1].ravel())[0, 1] == pytest.approx(0, abs=0.1)


def test_noise_of_a_window_is_the_noise_of_the_whole_grid() -> None:
    # blocks of NOISE_BLOCK pixels draw their own noise, so a window straddling four blocks gets the
    # values of the same pixels of the whole grid, and the blocks are independent of each other
    whole = unit_noise(7, 2, (0, 600), (0, 520))
    part = unit_noise(7, 2, (250, 530), (100, 300))
    np.testing.assert_array_equal(part, whole[:, 250:530, 100:300])
    b = NOISE_BLOCK
    neighbours = np.corrcoef(whole[0, :b, :b].ravel(), whole[0, :b, b : 2 * b].ravel())[0, 1]
    assert neighbours == pytest.approx(0, abs=0.02)
    assert whole.std() == pytest.approx(1.0, rel=0.01) and whole.dtype == np.float32


def test_add_noise_signal_dependent() -> None:
    lr = np.concatenate([np.full((1, 64, 64), 0.04), np.full((1, 64, 64), 0.64)]).astype(np.float32)
    noisy = add_noise(lr, 0, sigma=0.01, signal_dependent=True, read_sigma=0.001)
    std_dark, std_bright = np.std(noisy - lr, axis=(1, 2))
    assert std_dark == pytest.approx(math.sqrt(0.001**2 + 0.01**2 * 0.04), rel=0.05)
    assert std_bright == pytest.approx(math.sqrt(0.001**2 + 0.01**2 * 0.64), rel=0.05)
    with pytest.raises(ConfigError):
        add_noise(lr, 0, sigma=-1.0)
