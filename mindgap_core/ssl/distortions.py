"""The distortion families LPIPS-Sat is calibrated on and checked against (one definition for both).

Every family maps reference tiles ``x`` (N, 4, H, W) float64 reflectance, bands blue, green, red,
NIR, to distorted copies with a per-tile severity (N,) and a seed; deterministic for equal inputs.

- ``blur`` (structural): separable Gaussian of σ px, reflect-padded
  (:func:`~mindgap_core.degrade.synthetic.gaussian_blur`);
- ``bicubic`` (structural): antialiased bicubic ×1/f (:func:`~mindgap_core.degrade.synthetic.bicubic`),
  then bicubic ×f back; f an integer factor;
- ``noise`` (structural): i.i.d. Gaussian per pixel and band, σ in reflectance;
- ``shift`` (structural): translation by s whole pixels east, the first column replicated;
- ``texture`` (structural): synthetic high-frequency texture — a band-pass (DoG σ 0.5/1.5 px)
  Gaussian random field, zero mean and unit std per tile, the same pattern in every band scaled by
  that band's std in the tile (RMS over bands 1) — of RMS amplitude a (reflectance);
- ``global_gain`` (radiometric): x·(1+g);
- ``global_offset`` (radiometric): x + c in every band;
- ``band_offset`` (radiometric): x + c·(+1, −1, +1, −1);
- ``band_mixing`` (spectral): each band mixed with its spectral neighbours,
  (1−α)·x_b + α·mean(neighbours).

``structural`` errors change spatial detail and cannot be undone by a per-band gain and offset;
``radiometric`` ones can (one or two numbers per band); ``spectral`` mixing is neither. The cross-family
rule of the calibration (:mod:`mindgap_core.ssl.calibrate`) uses these kinds. Noise, texture, offsets,
gain and mixing have MSE exactly (or, for noise, in expectation) proportional to severity²; blur,
bicubic and shift are monotone in PSNR on natural tiles, which :func:`matched_severity` relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mindgap_core.degrade.synthetic import bicubic, gaussian_blur
from mindgap_core.metrics.pixel import psnr

#: the neighbours each band (blue, green, red, NIR) is mixed with by ``band_mixing``
MIX_NEIGHBOURS: tuple[tuple[int, ...], ...] = ((1,), (0, 2), (1, 3), (2,))
#: the per-band sign pattern of ``band_offset`` (RMS over bands 1, so MSE = c²)
BAND_OFFSET_PATTERN: tuple[float, ...] = (1.0, -1.0, 1.0, -1.0)
#: the DoG of ``texture`` (px)
TEXTURE_SIGMAS: tuple[float, float] = (0.5, 1.5)

DistortFn = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class Family:
    """One distortion family: ``apply(x, severities, seed)``, its severity grid and its kind."""

    name: str
    kind: str  # "structural" | "radiometric" | "spectral"
    unit: str
    severities: tuple[float, ...]
    apply: DistortFn
    continuous: bool = True  # severities between grid values are meaningful (matched PSNR)


def _per_tile(x: np.ndarray, sev: np.ndarray, fn: Callable[[np.ndarray, float], np.ndarray]) -> np.ndarray:
    """Apply ``fn(tile, severity)`` tile by tile; severity 0 leaves a tile unchanged."""
    out = x.copy()
    for i, s in enumerate(sev):
        if s > 0:
            out[i] = fn(x[i], float(s))
    return out


def blur(x: np.ndarray, sev: np.ndarray, seed: int = 0) -> np.ndarray:
    """Gaussian blur of σ = ``sev`` px."""
    return _per_tile(x, sev, lambda t, s: gaussian_blur(t.astype(np.float32), s).astype(np.float64))


def bicubic_resampling(x: np.ndarray, sev: np.ndarray, seed: int = 0) -> np.ndarray:
    """Antialiased bicubic down-sampling by the integer factor ``sev``, bicubic up-sampling back."""
    def down_up(t: np.ndarray, s: float) -> np.ndarray:
        lr = bicubic(t.astype(np.float32), int(round(s)))
        up = F.interpolate(torch.from_numpy(lr)[None], size=t.shape[-2:], mode="bicubic",
                           align_corners=False)
        return up[0].numpy().astype(np.float64)
    return _per_tile(x, sev, down_up)


def noise(x: np.ndarray, sev: np.ndarray, seed: int = 0) -> np.ndarray:
    """Additive white Gaussian noise of std ``sev`` (reflectance)."""
    z = np.random.default_rng(seed).standard_normal(x.shape)
    return x + z * sev[:, None, None, None]


def shift(x: np.ndarray, sev: np.ndarray, seed: int = 0) -> np.ndarray:
    """Translation by ``sev`` whole pixels towards +column (east), the first column replicated."""
    def move(t: np.ndarray, s: float) -> np.ndarray:
        k = int(round(s))
        return np.concatenate([np.repeat(t[..., :1], k, axis=-1), t[..., :-k]], axis=-1)
    return _per_tile(x, sev, move)


def texture_field(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """(N, H, W) band-pass Gaussian random field, zero mean and unit std per tile."""
    z = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    lo, hi = TEXTURE_SIGMAS
    f = (gaussian_blur(z, lo) - gaussian_blur(z, hi)).astype(np.float64)
    f -= f.mean(axis=(-2, -1), keepdims=True)
    return f / f.std(axis=(-2, -1), keepdims=True)


def texture(x: np.ndarray, sev: np.ndarray, seed: int = 0) -> np.ndarray:
    """Synthetic high-frequency texture of RMS amplitude ``sev``, spectrally shaped like the tile."""
    n, _, h, w = x.shape
    field = texture_field((n, h, w), seed)
    sd = x.std(axis=(-2, -1))  # (N, C)
    scale = sd / np.sqrt((sd**2).mean(axis=1, keepdims=True)).clip(1e-12)
    return x + sev[:, None, None, None] * scale[:, :, None, None] * field[:, None]


def global_gain(x: np.ndarray, sev: np.ndarray, seed: int = 0) -> np.ndarray:
    """x·(1 + ``sev``)."""
    return x * (1.0 + sev[:, None, None, None])


def global_offset(x: np.ndarray, sev: np.ndarray, seed: int = 0) -> np.ndarray:
    """x + ``sev`` in every band."""
    return x + sev[:, None, None, None]


def band_offset(x: np.ndarray, sev: np.ndarray, seed: int = 0) -> np.ndarray:
    """x + ``sev``·(+1, −1, +1, −1): a per-band offset (a colour change) of RMS ``sev``."""
    p = np.asarray(BAND_OFFSET_PATTERN)[None, :, None, None]
    return x + sev[:, None, None, None] * p


def band_mixing(x: np.ndarray, sev: np.ndarray, seed: int = 0) -> np.ndarray:
    """(1 − α)·x_b + α·mean of band b's spectral neighbours, α = ``sev``."""
    mixed = np.stack([x[:, list(nb)].mean(axis=1) for nb in MIX_NEIGHBOURS], axis=1)
    a = sev[:, None, None, None]
    return (1.0 - a) * x + a * mixed


#: name -> family, in the card's order
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("blur", "structural", "σ px", (0.5, 1.0, 1.5, 2.0, 3.0), blur),
    Family("bicubic", "structural", "factor", (2.0, 4.0, 8.0), bicubic_resampling, continuous=False),
    Family("noise", "structural", "σ refl.", (0.0025, 0.005, 0.01, 0.02, 0.04), noise),
    Family("shift", "structural", "px", (1.0, 2.0, 3.0, 4.0), shift, continuous=False),
    Family("texture", "structural", "RMS refl.", (0.0025, 0.005, 0.01, 0.02, 0.04), texture),
    Family("global_gain", "radiometric", "gain−1", (0.02, 0.05, 0.1, 0.2, 0.4), global_gain),
    Family("global_offset", "radiometric", "refl.", (0.0025, 0.005, 0.01, 0.02, 0.04), global_offset),
    Family("band_offset", "radiometric", "RMS refl.", (0.0025, 0.005, 0.01, 0.02, 0.04), band_offset),
    Family("band_mixing", "spectral", "α", (0.05, 0.1, 0.2, 0.4), band_mixing),
)}


def distort(family: str, x: np.ndarray, severity: float | np.ndarray, seed: int = 0) -> np.ndarray:
    """Copies of ``x`` (N, C, H, W) under ``family`` at ``severity`` (scalar or one per tile)."""
    sev = np.broadcast_to(np.asarray(severity, dtype=np.float64), (x.shape[0],)).copy()
    return FAMILIES[family].apply(np.asarray(x, dtype=np.float64), sev, seed)


def psnr_db(distorted: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """PSNR (dB, data range 1 = reflectance) per tile over all bands, (N,)."""
    return psnr(torch.from_numpy(distorted), torch.from_numpy(reference))[1].numpy()


def matched_severity(family: str, x: np.ndarray, target_db: float, seed: int = 0,
                     tol_db: float = 0.01, iters: int = 60) -> np.ndarray:
    """Per-tile severity at which ``family`` gives PSNR ``target_db`` (bisection in log severity).

    Needs a continuous family whose PSNR falls as severity grows; the search brackets between
    1/100 of the family's smallest and 4 times its largest grid severity.
    """
    fam = FAMILIES[family]
    if not fam.continuous:
        raise ValueError(f"{family}: severities are discrete, no matched-PSNR severity")
    lo = np.full(x.shape[0], np.log(min(fam.severities) / 100.0))
    hi = np.full(x.shape[0], np.log(max(fam.severities) * 4.0))
    for _ in range(iters):
        mid = (lo + hi) / 2
        p = psnr_db(distort(family, x, np.exp(mid), seed), x)
        too_mild = p > target_db
        lo = np.where(too_mild, mid, lo)
        hi = np.where(too_mild, hi, mid)
        if np.all(np.abs(p - target_db) < tol_db):
            return np.exp(mid)
    return np.exp((lo + hi) / 2)
