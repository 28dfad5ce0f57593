"""Reference-exact pixel metrics on reflectance, batched in torch.

All functions take (N, C, H, W) tensors (SR first, reference second), never modify them, and return
float64 tensors. ``valid`` is an optional (N, H, W) bool mask (True = pixel counts).

Definitions (each equals the formula written out in the tests):
- PSNR per band: ``10 log10(R^2 / MSE_b)``; over all bands: ``10 log10(R^2 / mean_b MSE_b)``
  (skimage's ``peak_signal_noise_ratio`` on the whole cube).
- SAM: per pixel ``arccos(<x, y> / (|x| |y|))`` in degrees, averaged over pixels where both spectra
  are non-zero.
- ERGAS: ``100 / scale * sqrt(mean_b (RMSE_b / mean(y_b))^2)``, scale = HR/LR resolution ratio.
- cPSNR (PROBA-V Kelvins challenge, Märtens et al. 2019): for every integer shift (u, v) within
  ``+-max_shift``, compare the central crop of SR (border ``max_shift`` removed) with the HR crop
  shifted by (u, v), remove the mean bias, and keep the highest PSNR. Done per band.
- Histogram matching: skimage's ``match_histograms`` (exact cumulative-CDF matching with ties),
  batched; opensr-test matches SR to the reference before scoring.
"""

from __future__ import annotations

import math

import torch


def _weights(valid: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) float64 weights from a validity mask (ones when None)."""
    if valid is None:
        return torch.ones((like.shape[0], 1, *like.shape[-2:]), dtype=torch.float64, device=like.device)
    return valid[:, None].to(torch.float64)


def mse_per_band(x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per image and band, (N, C)."""
    d = (x.to(torch.float64) - y.to(torch.float64)) ** 2
    w = _weights(valid, x)
    return (d * w).sum(dim=(-2, -1)) / w.sum(dim=(-2, -1)).clamp_min(1)


def psnr_from_mse(mse: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB from MSE (inf where MSE is 0)."""
    return 10.0 * torch.log10(data_range**2 / mse)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0,
         valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(per band (N, C), all bands (N,)) PSNR in dB."""
    mse = mse_per_band(x, y, valid)
    return psnr_from_mse(mse, data_range), psnr_from_mse(mse.mean(dim=1), data_range)


def sam_map(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-pixel spectral angle in degrees, (N, H, W); NaN where either spectrum is all zero."""
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    dot = (x * y).sum(dim=1)
    nx = x.norm(dim=1)
    ny = y.norm(dim=1)
    cos = (dot / (nx * ny).clamp_min(eps)).clamp(-1.0, 1.0)
    ang = torch.rad2deg(torch.arccos(cos))
    return torch.where((nx > eps) & (ny > eps), ang, torch.full_like(ang, float("nan")))


def nanmean_valid(m: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of an (N, H, W) map per image over valid, non-NaN pixels (NaN if none)."""
    ok = ~torch.isnan(m)
    if valid is not None:
        ok = ok & valid
    s = torch.where(ok, m, torch.zeros_like(m)).sum(dim=(-2, -1))
    n = ok.sum(dim=(-2, -1))
    return torch.where(n > 0, s / n.clamp_min(1), torch.full_like(s, float("nan")))


def sam(x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean spectral angle (degrees) per image, (N,)."""
    return nanmean_valid(sam_map(x, y), valid)


def ergas(x: torch.Tensor, y: torch.Tensor, scale: float,
          valid: torch.Tensor | None = None) -> torch.Tensor:
    """ERGAS per image, (N,): ``100 / scale * sqrt(mean_b (RMSE_b / mean(y_b))^2)``."""
    if scale <= 0:
        raise ValueError(f"ERGAS needs a positive scale factor, got {scale}")
    w = _weights(valid, y)
    mean_y = (y.to(torch.float64) * w).sum(dim=(-2, -1)) / w.sum(dim=(-2, -1)).clamp_min(1)
    rmse = mse_per_band(x, y, valid).sqrt()
    return 100.0 / scale * torch.sqrt(((rmse / mean_y) ** 2).mean(dim=1))


def cpsnr(x: torch.Tensor, y: torch.Tensor, max_shift: int = 3, data_range: float = 1.0,
          valid: torch.Tensor | None = None) -> torch.Tensor:
    """Shift- and bias-tolerant PSNR per image and band, (N, C), PROBA-V style."""
    k = int(max_shift)
    h, w = x.shape[-2:]
    if k < 0 or 2 * k >= min(h, w):
        raise ValueError(f"cPSNR max shift {k} does not fit images of {h}x{w}")
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    wt = _weights(valid, x)
    xc = x[..., k:h - k, k:w - k]
    best = torch.full(x.shape[:2], -math.inf, dtype=torch.float64, device=x.device)
    for u in range(2 * k + 1):
        for v in range(2 * k + 1):
            yc = y[..., u:u + h - 2 * k, v:v + w - 2 * k]
            wc = wt[..., u:u + h - 2 * k, v:v + w - 2 * k] * wt[..., k:h - k, k:w - k]
            n = wc.sum(dim=(-2, -1)).clamp_min(1)
            diff = yc - xc
            bias = (diff * wc).sum(dim=(-2, -1)) / n
            cmse = (((diff - bias[..., None, None]) ** 2) * wc).sum(dim=(-2, -1)) / n
            best = torch.maximum(best, psnr_from_mse(cmse, data_range))
    return best


def abs_error_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel absolute error per band, (N, C, H, W) float64."""
    return (x.to(torch.float64) - y.to(torch.float64)).abs()


def match_histograms(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per image and band, map ``source`` values so their CDF matches ``reference``'s.

    Equals ``skimage.exposure.match_histograms(src, ref, channel_axis=0)`` for each image
    (ties handled exactly: equal source values map to one value). Shapes (N, C, H, W) and
    (N, C, H', W') — the reference may be smaller (e.g. the LR image). Returns source's dtype.
    """
    n, c = source.shape[:2]
    src = source.reshape(n * c, -1).to(torch.float64)
    ref = reference.reshape(n * c, -1).to(torch.float64)
    src_sorted = src.sort(dim=1).values
    ref_sorted = ref.sort(dim=1).values
    # quantile of each source value = share of source values <= it (skimage's cumsum of counts)
    src_q = torch.searchsorted(src_sorted, src, right=True).to(torch.float64) / src.shape[1]
    # reference CDF at each sorted value; duplicates repeat the same (q, value) point
    ref_q = torch.searchsorted(ref_sorted, ref_sorted, right=True).to(torch.float64) / ref.shape[1]
    out = _interp(src_q, ref_q, ref_sorted)
    return out.reshape(source.shape).to(source.dtype)


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Row-wise ``numpy.interp`` for sorted ``xp`` (repeated points allowed)."""
    k = xp.shape[1]
    j = torch.searchsorted(xp, x, right=True)
    lo = (j - 1).clamp(0, k - 1)
    hi = j.clamp(0, k - 1)
    x0 = xp.gather(1, lo)
    x1 = xp.gather(1, hi)
    f0 = fp.gather(1, lo)
    f1 = fp.gather(1, hi)
    span = x1 - x0
    t = torch.where(span > 0, (x - x0) / torch.where(span > 0, span, torch.ones_like(span)),
                    torch.zeros_like(x))
    out = f0 + t * (f1 - f0)
    out = torch.where(x < xp[:, :1], fp[:, :1], out)
    return torch.where(x >= xp[:, -1:], fp[:, -1:], out)
