"""Synthetic degradations: HR reflectance -> LR reflectance by a known, fixed operator.

Every function takes a float32 array ``(bands, H, W)`` in reflectance and returns
``(bands, H // scale, W // scale)``; ``H`` and ``W`` must be divisible by ``scale``. Functions never
modify their input and are deterministic (the noise is a function of its seed and of the pixel's place
in the LR grid, :func:`unit_noise`). Blurs and interpolation run in torch on ``device`` ("cpu" or
"cuda"), the block mean (area downsampling) in numpy; arrays go in and out as numpy.
:func:`context_hr` says how much context each LR pixel needs, so that images larger than memory can be
degraded by windows with exactly the whole-image result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mindgap_core.data.grid import downsample_area
from mindgap_core.errors import ConfigError

#: opensr-degradation's blur (``torchvision.transforms.GaussianBlur(13, sigma=3.1)`` per band)
OPENSR_SIGMA: float = 3.1
OPENSR_KERNEL_SIZE: int = 13
#: default MTF at the LR Nyquist frequency of :func:`gaussian_mtf` (Sentinel-2 MSI is ~0.25-0.35)
DEFAULT_MTF_NYQUIST: float = 0.3

Device = str | torch.device


def check_downsample_input(hr: np.ndarray, scale: int) -> np.ndarray:
    """``hr`` as a float32 ``(bands, H, W)`` array; ConfigError when ``scale`` does not fit it."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ConfigError(f"scale must be a positive integer, got {scale!r}")
    arr = np.asarray(hr)
    if arr.ndim != 3:
        raise ConfigError(f"expected an array of shape (bands, H, W), got shape {arr.shape}")
    _, rows, cols = arr.shape
    if rows % scale or cols % scale:
        raise ConfigError(
            f"scale {scale} does not divide the image size {rows}x{cols} (rows x cols); "
            f"crop it to {rows - rows % scale}x{cols - cols % scale} or choose another scale"
        )
    if rows == 0 or cols == 0:
        raise ConfigError(f"empty image of size {rows}x{cols}")
    return arr.astype(np.float32, copy=False)


def _to_tensor(arr: np.ndarray, device: Device) -> torch.Tensor:
    """(bands, H, W) numpy -> (1, bands, H, W) float32 tensor on ``device`` (a copy)."""
    return torch.tensor(arr, dtype=torch.float32, device=device).unsqueeze(0)


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.squeeze(0).detach().to("cpu").numpy().astype(np.float32, copy=False)


def bicubic(hr: np.ndarray, scale: int, *, device: Device = "cpu") -> np.ndarray:
    """Antialiased bicubic downsampling (torch ``interpolate(mode="bicubic", antialias=True)``)."""
    arr = check_downsample_input(hr, scale)
    _, rows, cols = arr.shape
    out = F.interpolate(
        _to_tensor(arr, device),
        size=(rows // scale, cols // scale),
        mode="bicubic",
        antialias=True,
        align_corners=False,
    )
    return _to_numpy(out)


def sigma_for_mtf(mtf_nyquist: float, scale: int) -> float:
    """Std (in HR pixels) of the Gaussian PSF whose MTF at the LR Nyquist frequency is ``mtf_nyquist``.

    A Gaussian PSF of std σ has MTF(f) = exp(-2 π² σ² f²) (f in cycles per HR pixel). The LR Nyquist
    frequency is 0.5 cycles per LR pixel = f_N = 0.5 / scale cycles per HR pixel, hence

        σ_hr = sqrt(-ln(mtf_nyquist) / (2 π² f_N²)).
    """
    if not 0.0 < mtf_nyquist < 1.0:
        raise ConfigError(f"mtf_nyquist must be in (0, 1), got {mtf_nyquist}")
    if scale < 1:
        raise ConfigError(f"scale must be a positive integer, got {scale!r}")
    f_nyquist = 0.5 / scale
    return math.sqrt(-math.log(mtf_nyquist) / (2.0 * math.pi**2 * f_nyquist**2))


def gaussian_kernel_1d(sigma: float, radius: int | None = None) -> np.ndarray:
    """Normalised sampled Gaussian ``exp(-x²/2σ²)`` on ``-radius..radius`` (default radius ceil(4σ))."""
    if sigma <= 0:
        raise ConfigError(f"Gaussian sigma must be positive, got {sigma}")
    if radius is None:
        radius = max(1, math.ceil(4.0 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


def gaussian_blur(
    hr: np.ndarray, sigma: float, radius: int | None = None, *, device: Device = "cpu"
) -> np.ndarray:
    """Separable Gaussian blur of every band, mirror ("reflect") padded; same shape as ``hr``."""
    arr = np.asarray(hr, dtype=np.float32)
    return _to_numpy(_blur_tensor(_to_tensor(arr, device), gaussian_kernel_1d(sigma, radius)))


def _blur_tensor(x: torch.Tensor, kernel_1d: np.ndarray) -> torch.Tensor:
    """Depthwise separable convolution of (1, C, H, W) with a symmetric 1-D kernel."""
    channels, rows, cols = x.shape[1:]
    radius = len(kernel_1d) // 2
    # torch "reflect" needs pad < size; very small images fall back to edge replication
    mode = "reflect" if radius < min(rows, cols) else "replicate"
    k = torch.tensor(kernel_1d, dtype=x.dtype, device=x.device)
    kx = k.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    ky = k.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    x = F.pad(x, (radius, radius, radius, radius), mode=mode)
    x = F.conv2d(x, kx, groups=channels)
    return F.conv2d(x, ky, groups=channels)


def gaussian_mtf(
    hr: np.ndarray, scale: int, mtf_nyquist: float = DEFAULT_MTF_NYQUIST, *, device: Device = "cpu"
) -> np.ndarray:
    """Gaussian PSF with MTF ``mtf_nyquist`` at the LR Nyquist frequency, then area downsampling.

    σ_hr = sqrt(-ln(mtf_nyquist) / (2 π² (0.5/scale)²)) HR pixels (see :func:`sigma_for_mtf`); the
    kernel is truncated at ceil(4σ). The block mean that follows
    (:func:`~mindgap_core.data.grid.downsample_area`) is the detector's pixel aperture and
    multiplies the MTF by its own sinc factor (sinc(0.5) ≈ 0.64 at Nyquist), so the end-to-end MTF at
    Nyquist is ≈ 0.64 × ``mtf_nyquist``.
    """
    arr = check_downsample_input(hr, scale)
    return downsample_area(gaussian_blur(arr, sigma_for_mtf(mtf_nyquist, scale), device=device), scale)


def bilinear_decimate(x: np.ndarray, scale: int) -> np.ndarray:
    """torch's ``interpolate(mode="bilinear", antialias=False, align_corners=False)`` down by an integer
    ``scale`` on the last two axes, computed elementwise in numpy.

    Output pixel ``i`` samples the input at ``i * scale + (scale - 1) / 2``: one pixel for odd
    ``scale``, the mean of two neighbours (weights 1/2, rows then columns) for even ``scale``. Same
    values as torch up to its rounding, but every output depends only on its own inputs, never on
    the array's size (torch's vectorised loops round a pixel differently depending on where it falls
    in a SIMD chunk), so windows of an image degrade exactly as the whole.
    """
    arr = np.asarray(x, dtype=np.float32)
    first = (scale - 1) // 2
    half = np.float32(0.5)
    for axis in (-2, -1):
        a = np.take(arr, np.arange(first, arr.shape[axis], scale), axis=axis)
        if scale % 2 == 0:
            b = np.take(arr, np.arange(first + 1, arr.shape[axis], scale), axis=axis)
            a = half * a + half * b
        arr = a
    return np.ascontiguousarray(arr, dtype=np.float32)


def opensr_like(hr: np.ndarray, scale: int, *, device: Device = "cpu") -> np.ndarray:
    """opensr-degradation's NAIP blur: Gaussian σ=3.1, 13-tap kernel (reflect padded), then bilinear
    (non-antialiased) downsampling by 1/scale, as ``torchvision.GaussianBlur(13, 3.1)`` +
    ``interpolate(scale_factor=1/scale, mode="bilinear")`` do (the latter by
    :func:`bilinear_decimate`).
    """
    arr = check_downsample_input(hr, scale)
    kernel = gaussian_kernel_1d(OPENSR_SIGMA, radius=OPENSR_KERNEL_SIZE // 2)
    blurred = _to_numpy(_blur_tensor(_to_tensor(arr, device), kernel))
    return bilinear_decimate(blurred, scale)


@dataclass(frozen=True)
class NoiseConfig:
    """Additive Gaussian noise in reflectance units.

    Signal-dependent (shot + read): std(x) = sqrt(read_sigma² + sigma² · max(x, 0)), i.e. ``sigma`` is
    the shot-noise std at reflectance 1. Signal-independent: std = sqrt(read_sigma² + sigma²).
    """

    sigma: float = 0.01
    signal_dependent: bool = False
    read_sigma: float = 0.0

    def __post_init__(self) -> None:
        if self.sigma < 0 or self.read_sigma < 0:
            raise ConfigError(f"noise sigmas must be >= 0, got sigma={self.sigma}, read={self.read_sigma}")

    def to_dict(self) -> dict[str, float | bool]:
        return {
            "sigma": float(self.sigma),
            "signal_dependent": bool(self.signal_dependent),
            "read_sigma": float(self.read_sigma),
        }


def noise_std(lr: np.ndarray, sigma: float, signal_dependent: bool, read_sigma: float = 0.0) -> np.ndarray:
    """Per-pixel noise std of :func:`add_noise` (see :class:`NoiseConfig`)."""
    signal = np.maximum(np.asarray(lr, dtype=np.float32), 0.0) if signal_dependent else 1.0
    return np.sqrt(np.float32(read_sigma) ** 2 + np.float32(sigma) ** 2 * signal).astype(np.float32)


#: side, in LR pixels, of the blocks of the LR grid that each draw their own noise
NOISE_BLOCK: int = 256


def unit_noise(seed: int, bands: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """Standard normal float32 noise for LR rows ``rows`` = (start, stop) and ``cols`` of a grid.

    Each :data:`NOISE_BLOCK` x :data:`NOISE_BLOCK` block of the grid (and band) draws from its own
    ``np.random.default_rng([seed, band, block_row, block_col])``, so any window of the grid gets the
    values the whole grid would: an image degraded by windows gets exactly the noise of the whole.
    """
    (r0, r1), (c0, c1) = rows, cols
    out = np.empty((bands, r1 - r0, c1 - c0), dtype=np.float32)
    block = NOISE_BLOCK
    entropy = int(seed) & 0xFFFFFFFFFFFFFFFF
    for br in range(r0 // block, (r1 - 1) // block + 1):
        rs, re = max(r0, br * block), min(r1, (br + 1) * block)
        for bc in range(c0 // block, (c1 - 1) // block + 1):
            cs, ce = max(c0, bc * block), min(c1, (bc + 1) * block)
            for band in range(bands):
                z = np.random.default_rng([entropy, band, br, bc]).standard_normal((block, block), np.float32)
                out[band, rs - r0 : re - r0, cs - c0 : ce - c0] = z[
                    rs - br * block : re - br * block, cs - bc * block : ce - bc * block
                ]
    return out


def add_noise(
    lr: np.ndarray,
    seed: int,
    sigma: float = 0.01,
    signal_dependent: bool = False,
    read_sigma: float = 0.0,
    *,
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """``lr`` plus Gaussian noise (a new array; see :class:`NoiseConfig`). ``lr`` is the window of an
    LR grid starting at row, col ``origin``; the noise comes from :func:`unit_noise` (``seed``)."""
    config = NoiseConfig(sigma=sigma, signal_dependent=signal_dependent, read_sigma=read_sigma)
    arr = np.asarray(lr, dtype=np.float32)
    std = noise_std(arr, config.sigma, config.signal_dependent, config.read_sigma)
    bands, rows, cols = arr.shape
    z = unit_noise(seed, bands, (origin[0], origin[0] + rows), (origin[1], origin[1] + cols))
    return (arr + z * std).astype(np.float32)


def context_hr(method: str, scale: int) -> int:
    """HR pixels, beyond an LR pixel's own ``scale x scale`` block, that its value depends on (each
    side) under a registered synthetic degradation: the halo a window needs to be degraded exactly as
    in the whole image."""
    if method == "bicubic":  # antialiased bicubic: taps within 2 LR pixels of the centre
        return math.ceil(1.5 * scale) + 1
    if method == "gaussian_mtf":  # blur radius, then the block mean
        return max(1, math.ceil(4.0 * sigma_for_mtf(DEFAULT_MTF_NYQUIST, scale)))
    if method == "opensr_like":  # 13-tap blur, then bilinear taps at most one pixel outside the block
        return OPENSR_KERNEL_SIZE // 2 + 1
    raise ConfigError(f"unknown synthetic degradation {method!r}; known: {', '.join(SYNTHETIC_DEGRADATIONS)}")


#: name -> ``fn(hr, scale, *, device="cpu") -> lr``
SYNTHETIC_DEGRADATIONS: dict[str, Callable[..., np.ndarray]] = {
    "bicubic": bicubic,
    "gaussian_mtf": gaussian_mtf,
    "opensr_like": opensr_like,
}


def synthetic_parameters(method: str, scale: int) -> dict[str, object]:
    """A JSON-safe description of what a registered synthetic degradation does at ``scale``."""
    if method == "bicubic":
        return {"kernel": "bicubic", "antialias": True}
    if method == "gaussian_mtf":
        return {
            "mtf_nyquist": DEFAULT_MTF_NYQUIST,
            "sigma_hr": sigma_for_mtf(DEFAULT_MTF_NYQUIST, scale),
            "downsampling": "area",
        }
    if method == "opensr_like":
        return {
            "sigma_hr": OPENSR_SIGMA,
            "kernel_size": OPENSR_KERNEL_SIZE,
            "downsampling": "bilinear",
        }
    raise ConfigError(f"unknown synthetic degradation {method!r}; known: {', '.join(SYNTHETIC_DEGRADATIONS)}")
