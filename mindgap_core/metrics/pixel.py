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

import numpy as np
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
    nx = (x * x).sum(dim=1).sqrt()  # faster than Tensor.norm over the band axis on CPU
    ny = (y * y).sum(dim=1).sqrt()
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


def _correlate(a: torch.Tensor, b_small: torch.Tensor, n_shifts: int) -> torch.Tensor:
    """``out[..., u, v] = sum_ij a[..., i + u, j + v] * b_small[..., i, j]`` for u, v < n_shifts (FFT;
    ``b_small`` zero-padded to ``a``'s size, so no shift wraps around)."""
    h, w = a.shape[-2:]
    fa = torch.fft.rfft2(a)
    fb = torch.fft.rfft2(b_small, s=(h, w)).conj().resolve_conj()
    return torch.fft.irfft2(fa * fb, s=(h, w))[..., :n_shifts, :n_shifts]


def cpsnr(x: torch.Tensor, y: torch.Tensor, max_shift: int = 3, data_range: float = 1.0,
          valid: torch.Tensor | None = None) -> torch.Tensor:
    """Shift- and bias-tolerant PSNR per image and band, (N, C), PROBA-V style.

    For every shift the bias-corrected MSE is ``sum(w d^2)/n - (sum(w d)/n)^2`` with ``d`` the HR crop
    minus the SR centre crop and ``w`` the joint validity; all the window sums for all shifts come
    from six FFT cross-correlations (float64), instead of one pass per shift.
    """
    k = int(max_shift)
    h, w = x.shape[-2:]
    if k < 0 or 2 * k >= min(h, w):
        raise ValueError(f"cPSNR max shift {k} does not fit images of {h}x{w}")
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    ns = 2 * k + 1
    if valid is None:
        return _cpsnr_unmasked(x, y, k, data_range)
    m = _weights(valid, x)
    mc = m[..., k:h - k, k:w - k]
    xc = x[..., k:h - k, k:w - k] * mc
    my = m * y
    n = _correlate(m, mc, ns)
    s_y = _correlate(my, mc, ns)
    s_yy = _correlate(my * y, mc, ns)
    s_x = _correlate(m, xc, ns)
    s_xx = _correlate(m, xc * x[..., k:h - k, k:w - k], ns)
    s_xy = _correlate(my, xc, ns)
    n = n.clamp_min(1.0)
    mean_d = (s_y - s_x) / n
    cmse = (s_yy - 2 * s_xy + s_xx) / n - mean_d**2
    cmse = cmse.clamp_min(1e-30)  # exact matches: rounding may leave a tiny negative
    return psnr_from_mse(cmse, data_range).amax(dim=(-2, -1))


def _window_sums(a: torch.Tensor, hh: int, ww: int, n_shifts: int) -> torch.Tensor:
    """Sums of ``a`` over every hh x ww window at offsets (u, v) < n_shifts (summed-area table)."""
    s = torch.nn.functional.pad(a.cumsum(-2).cumsum(-1), (1, 0, 1, 0))
    u = torch.arange(n_shifts, device=a.device)
    top, left = u[:, None], u[None, :]
    return (s[..., top + hh, left + ww] - s[..., top, left + ww] - s[..., top + hh, left]
            + s[..., top, left])


def _cpsnr_unmasked(x: torch.Tensor, y: torch.Tensor, k: int, data_range: float) -> torch.Tensor:
    """cPSNR without a mask: window sums of y and y^2 from summed-area tables, sums of the SR
    centre crop are constants, and only the cross term needs an FFT correlation."""
    h, w = x.shape[-2:]
    hh, ww = h - 2 * k, w - 2 * k
    ns = 2 * k + 1
    n = float(hh * ww)
    xc = x[..., k:h - k, k:w - k]
    s_y = _window_sums(y, hh, ww, ns)
    s_yy = _window_sums(y * y, hh, ww, ns)
    s_x = xc.sum(dim=(-2, -1))[..., None, None]
    s_xx = (xc * xc).sum(dim=(-2, -1))[..., None, None]
    s_xy = _correlate(y, xc, ns)
    mean_d = (s_y - s_x) / n
    cmse = ((s_yy - 2 * s_xy + s_xx) / n - mean_d**2).clamp_min(1e-30)
    return psnr_from_mse(cmse, data_range).amax(dim=(-2, -1))


def abs_error_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel absolute error per band, (N, C, H, W) float64."""
    return (x.to(torch.float64) - y.to(torch.float64)).abs()


def match_histograms(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per image and band, map ``source`` values so their CDF matches ``reference``'s.

    Equals ``skimage.exposure.match_histograms(src, ref, channel_axis=0)`` for each image
    (ties handled exactly: equal source values map to one value). Shapes (N, C, H, W) and
    (N, C, H', W') — the reference may be smaller (e.g. the LR image). Returns source's dtype and
    device. Runs in numpy (sorting rows is faster there than in torch on the CPU).
    """
    n, c = source.shape[:2]
    src = source.detach().to("cpu").numpy().reshape(n * c, -1)
    ref = reference.detach().to("cpu").numpy().reshape(n * c, -1)
    out = np.empty(src.shape, dtype=np.float64)
    for i in range(n * c):
        order = np.argsort(src[i])
        s_sorted = src[i][order]
        s_last = _run_ends(s_sorted)
        s_q = _run_end_index(s_last) / s_sorted.size  # share of source values <= each value
        r_sorted = np.sort(ref[i])
        r_last = _run_ends(r_sorted)
        r_q = (np.flatnonzero(r_last) + 1) / r_sorted.size  # skimage's cumsum(counts) / size
        out[i, order] = np.interp(s_q, r_q, r_sorted[r_last].astype(np.float64))
    return torch.from_numpy(out.reshape(source.shape)).to(device=source.device, dtype=source.dtype)


def _run_ends(sorted_values: np.ndarray) -> np.ndarray:
    """True at the last element of each run of equal values in a sorted 1-D array."""
    last = np.empty(sorted_values.size, dtype=bool)
    last[:-1] = sorted_values[1:] != sorted_values[:-1]
    last[-1] = True
    return last


def _run_end_index(last: np.ndarray) -> np.ndarray:
    """For each position, 1 + the index of the end of its run (= count of values <= it)."""
    ends = np.where(last, np.arange(1, last.size + 1), last.size)
    return np.minimum.accumulate(ends[::-1])[::-1].astype(np.float64)
