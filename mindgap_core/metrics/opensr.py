"""opensr-test-style consistency and correctness scores, batched in torch.

Follows ESA opensr-test (``opensr_test/main.py``, ``correctness.py``, ``distance.py``, ``utils.py``;
defaults from its ``Config``):

Consistency (SR vs LR; no HR needed):
- ``sr_to_lr``: SR resized by 1/scale, bilinear with antialiasing (opensr-test's ``apply_upsampling``).
- reflectance: per-pixel L1 over bands between LR and ``sr_to_lr``, then the mean (their ``l1``).
- spectral: per-pixel spectral angle (degrees) between LR and ``sr_to_lr``, then the mean (``sad``).
- spatial: phase cross-correlation (skimage's algorithm, upsample factor 50, as satalign's PCC) of
  the band mean of the RGB bands of LR and ``sr_to_lr``; the score is the shift length in LR pixels;
  NaN when it exceeds ``max_translation`` (5), where satalign reports the estimate unusable.

Correctness (needs LR and HR), opensr-test's default ``"nd"`` distance and ``softmin`` norm:
- ``sr_harm``: SR histogram-matched to HR per band, then shifted onto HR by the phase-correlation
  shift (bilinear, border replicated; shifts longer than ``max_translation`` are not applied).
- ``lr_to_hr``: LR upsampled ×scale, bilinear (antialias flag as opensr-test).
- nd(a, b) = mean over bands of ``|a - b| / |a + b + 1e-8|``; d_ref = nd(lr_to_hr, hr),
  d_im = nd(sr_harm, hr), d_om = nd(sr_harm, lr_to_hr).
- mask: pixels where any of the three exceeds the 75th percentile of d_ref (``"auto"`` threshold of
  ``Metrics.compute``); others are ignored.
- with ``a = d_im / d_ref`` and ``b = d_om / d_ref``, ``H = a + b - 1``:
  improvement = ``a + b (1 - exp(-0.05 H))``, omission = ``b + a (1 - exp(-0.05 H))``,
  hallucination = ``exp(-0.05 a b)``; softmin over the three with temperature 0.25; each score is the
  mean of its softmin probability over the masked pixels (fractions summing to 1).

Differences from opensr-test (documented): the border mask defaults to 0 here (opensr-test crops 16
HR pixels, meant for its 512-pixel tiles; set ``border`` to match); phase correlation and the
bilinear shift are re-implemented in torch (batched) instead of skimage + OpenCV ``warpAffine``; the
bilinear resampling of OpenCV and torch differ at the last decimals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mindgap_core.metrics.pixel import match_histograms, sam_map

UPSAMPLE_FACTOR = 50
MAX_TRANSLATION = 5.0
LAMBDA_IM = 0.05
LAMBDA_OM = 0.05
LAMBDA_HA = 0.05
SOFTMIN_T = 0.25
ND_EPS = 1e-8


@dataclass(frozen=True)
class OpensrOptions:
    """Knobs of the opensr-test scores (defaults = opensr-test's, except ``border``)."""

    border: int = 0
    threshold_quantile: float = 0.75
    max_translation: float = MAX_TRANSLATION
    upsample_factor: int = UPSAMPLE_FACTOR
    harmonise_spectral: bool = True
    harmonise_spatial: bool = True

    def as_dict(self) -> dict:
        """JSON-safe dict recorded with each score."""
        return {"opensr_border": self.border, "opensr_threshold_quantile": self.threshold_quantile,
                "opensr_max_translation": self.max_translation,
                "opensr_upsample_factor": self.upsample_factor,
                "opensr_harmonise_spectral": self.harmonise_spectral,
                "opensr_harmonise_spatial": self.harmonise_spatial}


def sr_to_lr(sr: torch.Tensor, scale: int) -> torch.Tensor:
    """SR resized to the LR grid: bilinear, antialiased (opensr-test ``apply_upsampling``)."""
    return F.interpolate(sr, scale_factor=1 / scale, mode="bilinear", antialias=True)


def lr_to_hr(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """LR resized to the HR grid: bilinear (opensr-test ``apply_downsampling``)."""
    return F.interpolate(lr, scale_factor=scale, mode="bilinear", antialias=True)


def crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    """Drop ``border`` pixels on each side of the last two dims."""
    return x[..., border:-border, border:-border] if border > 0 else x


# ------------------------------------------------------------ phase correlation -------------

def _upsampled_dft(data: torch.Tensor, region: int, factor: float,
                   offsets: torch.Tensor) -> torch.Tensor:
    """Batched skimage ``_upsampled_dft`` for (N, H, W) complex data; offsets (N, 2) (row, col)."""
    n, h, w = data.shape
    dev, cdt = data.device, data.dtype
    rdt = torch.float64 if cdt == torch.complex128 else torch.float32
    ar = torch.arange(region, device=dev, dtype=rdt)
    fw = torch.fft.fftfreq(w, d=factor, device=dev, dtype=rdt)
    fh = torch.fft.fftfreq(h, d=factor, device=dev, dtype=rdt)
    kw = torch.exp(-2j * math.pi * ((ar[None, :, None] - offsets[:, 1, None, None]) * fw[None, None, :]))
    kh = torch.exp(-2j * math.pi * ((ar[None, :, None] - offsets[:, 0, None, None]) * fh[None, None, :]))
    tmp = torch.einsum("nuw,nhw->nhu", kw.to(cdt), data)
    return torch.einsum("nvh,nhu->nvu", kh.to(cdt), tmp)


def phase_cross_correlation(reference: torch.Tensor, moving: torch.Tensor,
                            upsample_factor: int = UPSAMPLE_FACTOR) -> torch.Tensor:
    """Shift (N, 2) as (row, col) that registers ``moving`` onto ``reference``; (N, H, W) inputs.

    Same algorithm as ``skimage.registration.phase_cross_correlation`` (phase normalisation,
    matrix-multiply DFT refinement), batched.
    """
    ref = reference.to(torch.float64)
    mov = moving.to(torch.float64)
    n, h, w = ref.shape
    prod = torch.fft.fft2(ref) * torch.fft.fft2(mov).conj()
    eps = torch.finfo(torch.float64).eps
    prod = prod / prod.abs().clamp_min(100 * eps)
    cc = torch.fft.ifft2(prod).abs().reshape(n, -1)
    idx = cc.argmax(dim=1)
    shift = torch.stack([(idx // w).to(torch.float64), (idx % w).to(torch.float64)], dim=1)
    size = torch.tensor([h, w], dtype=torch.float64, device=ref.device)
    mid = torch.trunc(size / 2)
    shift = torch.where(shift > mid, shift - size, shift)
    if upsample_factor <= 1:
        return shift
    uf = float(upsample_factor)
    shift = torch.round(shift * uf) / uf
    region = int(math.ceil(uf * 1.5))
    dftshift = math.trunc(region / 2.0)
    offsets = dftshift - shift * uf
    cc = _upsampled_dft(prod.conj(), region, uf, offsets).conj().abs().reshape(n, -1)
    idx = cc.argmax(dim=1)
    maxima = torch.stack([(idx // region).to(torch.float64), (idx % region).to(torch.float64)], dim=1)
    return shift + (maxima - dftshift) / uf


def shift_image(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Move (N, C, H, W) by ``shift`` (N, 2) (row, col) pixels: out(p) = x(p - shift), bilinear,
    borders replicated (as OpenCV ``warpAffine`` with BORDER_REPLICATE)."""
    n, _, h, w = x.shape
    dev = x.device
    rows = torch.arange(h, device=dev, dtype=torch.float64)[None, :, None] - shift[:, 0, None, None]
    cols = torch.arange(w, device=dev, dtype=torch.float64)[None, None, :] - shift[:, 1, None, None]
    gx = (2 * cols / max(w - 1, 1) - 1).expand(n, h, w)
    gy = (2 * rows / max(h - 1, 1) - 1).expand(n, h, w)
    grid = torch.stack([gx, gy], dim=-1).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def rgb_mean(x: torch.Tensor, rgb_idx: list[int]) -> torch.Tensor:
    """Band mean of the RGB bands, (N, H, W) (satalign's ``channel="mean"`` feature)."""
    return x[:, rgb_idx].to(torch.float64).mean(dim=1)


# ------------------------------------------------------------ scores ------------------------

def consistency(sr: torch.Tensor, lr: torch.Tensor, scale: int, rgb_idx: list[int],
                opts: OpensrOptions = OpensrOptions()) -> dict[str, torch.Tensor]:
    """Reflectance (L1), spectral (degrees) and spatial (LR pixels) consistency per image (N,)."""
    down = sr_to_lr(sr.to(torch.float64), scale)
    b = opts.border // scale
    lr_c = crop_border(lr.to(torch.float64), b)
    down = crop_border(down, b)
    refl = (lr_c - down).abs().mean(dim=1).nanmean(dim=(-2, -1))
    ang = sam_map(lr_c, down).nanmean(dim=(-2, -1))
    shift = phase_cross_correlation(rgb_mean(down, rgb_idx), rgb_mean(lr_c, rgb_idx),
                                    opts.upsample_factor)
    dist = shift.norm(dim=1)
    dist = torch.where(dist > opts.max_translation, torch.full_like(dist, float("nan")), dist)
    return {"consistency_reflectance": refl, "consistency_spectral": ang,
            "consistency_spatial": dist}


def harmonise(sr: torch.Tensor, hr: torch.Tensor, rgb_idx: list[int],
              opts: OpensrOptions = OpensrOptions()) -> torch.Tensor:
    """opensr-test's ``sr_harm``: SR histogram-matched to HR, then aligned to HR."""
    out = match_histograms(sr, hr) if opts.harmonise_spectral else sr
    if opts.harmonise_spatial:
        shift = phase_cross_correlation(rgb_mean(hr, rgb_idx), rgb_mean(out, rgb_idx),
                                        opts.upsample_factor)
        too_far = shift.norm(dim=1) > opts.max_translation
        shift = torch.where(too_far[:, None], torch.zeros_like(shift), shift)
        out = shift_image(out.to(torch.float64), shift)
    return out.to(torch.float64)


def normalized_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """opensr-test ``nd`` at pixel level: mean over bands of |a - b| / |a + b + eps|, (N, H, W)."""
    return ((a - b).abs() / (a + b + ND_EPS).abs()).nanmean(dim=1)


def correctness_maps(sr: torch.Tensor, lr: torch.Tensor, hr: torch.Tensor, scale: int,
                     rgb_idx: list[int], opts: OpensrOptions = OpensrOptions()
                     ) -> dict[str, torch.Tensor]:
    """Per-pixel softmin probabilities (N, H, W) of improvement, omission, hallucination (NaN
    outside the mask), plus the mask."""
    sr = crop_border(sr.to(torch.float64), opts.border)
    hr = crop_border(hr.to(torch.float64), opts.border)
    up = lr_to_hr(crop_border(lr.to(torch.float64), opts.border // scale), scale)
    sr_h = harmonise(sr, hr, rgb_idx, opts)
    d_ref = normalized_difference(up, hr)
    d_im = normalized_difference(sr_h, hr)
    d_om = normalized_difference(sr_h, up)
    n = d_ref.shape[0]
    flat = d_ref.reshape(n, -1)
    k = max(int(opts.threshold_quantile * flat.shape[1]), 1)
    thr = flat.kthvalue(k, dim=1).values[:, None, None]
    mask = (d_ref > thr) | (d_im > thr) | (d_om > thr)
    nan = torch.full_like(d_ref, float("nan"))
    a = torch.where(mask, d_im / d_ref, nan)
    b = torch.where(mask, d_om / d_ref, nan)
    h = a + b - 1
    im = a + b * (1 - torch.exp(-h * LAMBDA_IM))
    om = b + a * (1 - torch.exp(-h * LAMBDA_OM))
    ha = torch.exp(-a * b * LAMBDA_HA)
    probs = torch.softmax(-torch.stack([im, om, ha], dim=0) / SOFTMIN_T, dim=0)
    return {"improvement": probs[0], "omission": probs[1], "hallucination": probs[2], "mask": mask}


def correctness(sr: torch.Tensor, lr: torch.Tensor, hr: torch.Tensor, scale: int,
                rgb_idx: list[int], opts: OpensrOptions = OpensrOptions()) -> dict[str, torch.Tensor]:
    """Improvement, omission and hallucination fractions per image (N,) (softmin means)."""
    maps = correctness_maps(sr, lr, hr, scale, rgb_idx, opts)
    return {k: maps[k].nanmean(dim=(-2, -1)) for k in ("improvement", "omission", "hallucination")}
