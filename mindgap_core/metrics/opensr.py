"""opensr-test-style consistency, synthesis and correctness scores, batched in torch.

Follows ESA opensr-test 1.3.3 (``opensr_test/main.py``, ``correctness.py``, ``distance.py``,
``utils.py``, ``spatial.py`` and satalign 0.1.17's ``PCC``; defaults from its ``Config``), in its
order of operations:

Setup (``Metrics.setup``): crop ``border`` HR pixels from SR and HR and ``border // scale`` LR
pixels from LR (``apply_mask``) first; every resampling below works on the cropped images.
- ``sr_to_lr``: cropped SR resized by 1/scale, bilinear with antialiasing (their ``apply_upsampling``).
- ``lr_to_hr``: cropped LR resized ×scale, bilinear (their ``apply_downsampling``; antialias is a no-op
  when enlarging).
- ``sr_harm`` (``sr_harm_setup``): SR histogram-matched to HR per band (skimage ``match_histograms``),
  then moved onto HR by the phase-correlation shift between the **mean of all bands** of HR
  (reference) and of the matched SR (satalign's default ``channel="mean"``); bilinear, border
  replicated (OpenCV ``warpAffine``); a shift longer than ``max_translation`` (5) is not applied.

Consistency (SR vs LR; no HR needed):
- reflectance: per LR pixel mean over bands of ``|LR - sr_to_lr|``, then the mean (their ``l1``).
- spectral: per LR pixel spectral angle (degrees) between LR and ``sr_to_lr``, then the mean (``sad``).
- spatial: phase cross-correlation (skimage's algorithm, upsample factor 50, as satalign's PCC)
  between the mean of the RGB bands of ``sr_to_lr`` (reference) and of LR (opensr-test passes only
  the RGB bands here); the shift length in LR pixels, NaN beyond ``max_translation``.

Synthesis: per HR pixel mean over bands of ``|lr_to_hr - sr_harm|``, then the mean: the detail the
SR adds over bilinear upsampling. opensr-test's README: higher is better.

Correctness, opensr-test's default ``"nd"`` distance and ``softmin`` norm:
- nd(a, b) = mean over bands of ``|a - b| / |a + b + 1e-8|``; d_ref = nd(lr_to_hr, hr),
  d_im = nd(sr_harm, hr), d_om = nd(sr_harm, lr_to_hr).
- mask: pixels where any of the three exceeds the 75th percentile of d_ref (``"auto"`` threshold of
  ``Metrics.compute``, ``kthvalue``); others are ignored.
- with ``a = d_im / d_ref`` and ``b = d_om / d_ref``, ``H = a + b - 1``:
  improvement = ``a + b (1 - exp(-0.05 H))``, omission = ``b + a (1 - exp(-0.05 H))``,
  hallucination = ``exp(-0.05 a b)``; softmin over the three with temperature 0.25; each score is the
  mean of its softmin probability over the masked pixels (fractions summing to 1).

Differences from opensr-test: the border defaults to 0 here (opensr-test crops 16 HR pixels, meant for
its 512-pixel tiles; set ``border`` to match); everything runs in float64 torch, batched, where
opensr-test computes in the input's dtype (float32 for float32 tensors) one tile at a time with
skimage, OpenCV and torch. Checked against opensr-test 1.3.3 itself by
``tests/mindgap_core/metrics/test_opensr_parity.py`` (golden values from ``scripts/opensr_reference.py``):
equal within 3e-6 relative for float64 inputs. What remains is opensr-test's float32 arithmetic:
OpenCV warps ``sr_harm`` in float32 (rarely, a pixel crosses the hard correctness mask threshold:
~1e-3 on one tile in 256), and with float32 inputs its phase correlation can land on the
neighbouring 1/50-pixel peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mindgap_core.errors import ConfigError
from mindgap_core.metrics.pixel import match_histograms, sam_map

UPSAMPLE_FACTOR = 50
MAX_TRANSLATION = 5.0
LAMBDA_IM = 0.05
LAMBDA_OM = 0.05
LAMBDA_HA = 0.05
SOFTMIN_T = 0.25
ND_EPS = 1e-8
CONSISTENCY = ("consistency_reflectance", "consistency_spectral", "consistency_spatial")
CORRECTNESS = ("improvement", "omission", "hallucination")
#: Every score :func:`opensr_scores` can return.
SCORES = (*CONSISTENCY, "synthesis", *CORRECTNESS)


@dataclass(frozen=True)
class OpensrOptions:
    """Knobs of the opensr-test scores (defaults = opensr-test's, except ``border``)."""

    border: int = 0
    threshold_quantile: float = 0.75
    max_translation: float = MAX_TRANSLATION
    upsample_factor: int = UPSAMPLE_FACTOR
    harmonise_spectral: bool = True
    harmonise_spatial: bool = True

    def __post_init__(self) -> None:
        if self.border < 0:
            raise ConfigError(f"opensr border must be >= 0, got {self.border}")
        if not 0 < self.threshold_quantile < 1:
            raise ConfigError(f"opensr threshold quantile must be in (0, 1), got {self.threshold_quantile}")

    def as_dict(self) -> dict:
        """JSON-safe dict recorded with each score."""
        return {"opensr_border": self.border, "opensr_threshold_quantile": self.threshold_quantile,
                "opensr_max_translation": self.max_translation,
                "opensr_upsample_factor": self.upsample_factor,
                "opensr_harmonise_spectral": self.harmonise_spectral,
                "opensr_harmonise_spatial": self.harmonise_spatial}


#: opensr-test's settings (border 0), the default of every function here.
DEFAULTS = OpensrOptions()


def sr_to_lr(sr: torch.Tensor, scale: int) -> torch.Tensor:
    """SR resized to the LR grid: bilinear, antialiased (opensr-test ``apply_upsampling``)."""
    return F.interpolate(sr, scale_factor=1 / scale, mode="bilinear", antialias=True)


def lr_to_hr(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """LR resized to the HR grid: bilinear (opensr-test ``apply_downsampling``)."""
    return F.interpolate(lr, scale_factor=scale, mode="bilinear", antialias=True)


def crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    """Drop ``border`` pixels on each side of the last two dims (opensr-test ``apply_mask``)."""
    return x[..., border:-border, border:-border] if border > 0 else x


def check_border(hr_shape: tuple[int, int], scale: int, border: int) -> None:
    """:class:`ConfigError` unless ``border`` is a multiple of ``scale`` leaving pixels to score."""
    if border % scale:
        raise ConfigError(f"opensr border {border} must be a multiple of the scale {scale} "
                          "(opensr-test crops border // scale LR pixels)")
    if 2 * border >= min(hr_shape):
        raise ConfigError(f"opensr border {border} leaves no pixels of a {hr_shape[0]}x{hr_shape[1]} tile")


# ------------------------------------------------------------ phase correlation -------------

def _upsampled_dft(data: torch.Tensor, region: int, factor: float,
                   offsets: torch.Tensor) -> torch.Tensor:
    """Batched skimage ``_upsampled_dft`` for (N, H, W) complex data; offsets (N, 2) (row, col).

    skimage's kernels ``exp(-2 pi i (u - offset) f)`` are split into a fixed kernel
    ``exp(-2 pi i u f)`` and a per-image phase ramp ``exp(2 pi i offset f)`` applied to the data, so
    the two contractions are plain matrix products over the whole batch.
    """
    n, h, w = data.shape
    dev, cdt = data.device, data.dtype
    rdt = torch.float64 if cdt == torch.complex128 else torch.float32
    ar = torch.arange(region, device=dev, dtype=rdt)
    fw = torch.fft.fftfreq(w, d=factor, device=dev, dtype=rdt)
    fh = torch.fft.fftfreq(h, d=factor, device=dev, dtype=rdt)
    kw = torch.exp(-2j * math.pi * (ar[:, None] * fw[None, :])).to(cdt)  # (U, W)
    kh = torch.exp(-2j * math.pi * (ar[:, None] * fh[None, :])).to(cdt)  # (V, H)
    ramp_w = torch.exp(2j * math.pi * (offsets[:, 1, None].to(rdt) * fw[None, :])).to(cdt)  # (N, W)
    ramp_h = torch.exp(2j * math.pi * (offsets[:, 0, None].to(rdt) * fh[None, :])).to(cdt)  # (N, H)
    d = data * ramp_h[:, :, None] * ramp_w[:, None, :]
    tmp = (d.reshape(n * h, w) @ kw.T).reshape(n, h, region)  # (N, H, U)
    out = kh @ tmp.transpose(0, 1).reshape(h, n * region)  # (V, N * U)
    return out.reshape(region, n, region).transpose(0, 1)  # (N, V, U)


def phase_cross_correlation(reference: torch.Tensor, moving: torch.Tensor,
                            upsample_factor: int = UPSAMPLE_FACTOR) -> torch.Tensor:
    """Shift (N, 2) as (row, col) that registers ``moving`` onto ``reference``; (N, H, W) inputs.

    Same algorithm as ``skimage.registration.phase_cross_correlation`` (phase normalisation,
    matrix-multiply DFT refinement), batched, in float64.
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
    cc = _upsampled_dft(prod.conj(), region, uf, offsets).abs().reshape(n, -1)  # |conj z| = |z|
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


def band_mean(x: torch.Tensor, bands: list[int] | None = None) -> torch.Tensor:
    """(N, H, W) mean over ``bands`` (all when None): satalign's ``channel="mean"`` feature."""
    x = x.to(torch.float64)
    return (x if bands is None else x[:, bands]).mean(dim=1)


def _nanmean(x: torch.Tensor, dim: int | tuple[int, ...]) -> torch.Tensor:
    """``x.nanmean(dim)`` (opensr-test's per-pixel and per-image means); the plain mean, ~4x faster
    on the CPU, unless a NaN is present."""
    m = x.mean(dim=dim)
    return x.nanmean(dim=dim) if torch.isnan(m).any() else m


def _limit(shift: torch.Tensor, max_translation: float) -> torch.Tensor:
    """(N,) bool: True where the shift is longer than satalign's ``max_translations``."""
    return shift.norm(dim=1) > max_translation


# ------------------------------------------------------------ scores ------------------------

def consistency(sr: torch.Tensor, lr: torch.Tensor, scale: int, rgb_idx: list[int],
                opts: OpensrOptions = DEFAULTS) -> dict[str, torch.Tensor]:
    """Reflectance (L1), spectral (degrees) and spatial (LR pixels) consistency per image (N,);
    ``rgb_idx``: indices of the red, green and blue bands (spatial is NaN when empty)."""
    check_border(tuple(sr.shape[-2:]), scale, opts.border)
    lr_c = crop_border(lr.to(torch.float64), opts.border // scale)
    down = sr_to_lr(crop_border(sr.to(torch.float64), opts.border), scale)
    refl = _nanmean(_nanmean((lr_c - down).abs_(), 1), (-2, -1))
    ang = sam_map(lr_c, down).nanmean(dim=(-2, -1))
    if rgb_idx:
        shift = phase_cross_correlation(band_mean(down, rgb_idx), band_mean(lr_c, rgb_idx),
                                        opts.upsample_factor)
        dist = shift.norm(dim=1)
        dist = torch.where(_limit(shift, opts.max_translation), torch.full_like(dist, float("nan")), dist)
    else:  # no red/green/blue bands: spatial consistency is undefined
        dist = torch.full_like(refl, float("nan"))
    return {"consistency_reflectance": refl, "consistency_spectral": ang,
            "consistency_spatial": dist}


def harmonise(sr: torch.Tensor, hr: torch.Tensor,
              opts: OpensrOptions = DEFAULTS) -> torch.Tensor:
    """opensr-test's ``sr_harm`` (float64) of already cropped SR and HR: histogram-matched to HR,
    then aligned to HR on the mean of all bands."""
    sr = sr.to(torch.float64)
    out = match_histograms(sr, hr) if opts.harmonise_spectral else sr
    if opts.harmonise_spatial:
        shift = phase_cross_correlation(band_mean(hr), band_mean(out), opts.upsample_factor)
        shift = torch.where(_limit(shift, opts.max_translation)[:, None], torch.zeros_like(shift), shift)
        out = shift_image(out, shift)
    return out


def normalized_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """opensr-test ``nd`` at pixel level: mean over bands of |a - b| / |a + b + eps|, (N, H, W)."""
    return _nanmean((a - b).abs_().div_((a + b).add_(ND_EPS).abs_()), 1)


@dataclass(frozen=True)
class Harmonised:
    """The cropped float64 images the HR-referenced scores share (opensr-test's ``setup``)."""

    hr: torch.Tensor
    lr_to_hr: torch.Tensor
    sr_harm: torch.Tensor


def harmonised(sr: torch.Tensor, lr: torch.Tensor, hr: torch.Tensor, scale: int,
               opts: OpensrOptions = DEFAULTS) -> Harmonised:
    """Crop, upsample LR and harmonise SR once for synthesis and correctness."""
    check_border(tuple(sr.shape[-2:]), scale, opts.border)
    hr_c = crop_border(hr.to(torch.float64), opts.border)
    up = lr_to_hr(crop_border(lr.to(torch.float64), opts.border // scale), scale)
    return Harmonised(hr_c, up, harmonise(crop_border(sr, opts.border), hr_c, opts))


def synthesis_from(h: Harmonised) -> torch.Tensor:
    """Synthesis per image (N,): mean |lr_to_hr - sr_harm| (band mean per pixel, then pixel mean)."""
    return _nanmean(_nanmean((h.lr_to_hr - h.sr_harm).abs_(), 1), (-2, -1))


def correctness_maps_from(h: Harmonised, opts: OpensrOptions = DEFAULTS) -> dict[str, torch.Tensor]:
    """Per-pixel softmin probabilities (N, H, W) of improvement, omission, hallucination (NaN
    outside the mask), plus the mask."""
    d_ref = normalized_difference(h.lr_to_hr, h.hr)
    d_im = normalized_difference(h.sr_harm, h.hr)
    d_om = normalized_difference(h.sr_harm, h.lr_to_hr)
    n = d_ref.shape[0]
    flat = d_ref.reshape(n, -1)
    k = max(int(opts.threshold_quantile * flat.shape[1]), 1)
    thr = flat.kthvalue(k, dim=1).values[:, None, None]
    mask = (d_ref > thr) | (d_im > thr) | (d_om > thr)
    nan = torch.full_like(d_ref, float("nan"))
    a = torch.where(mask, d_im / d_ref, nan)
    b = torch.where(mask, d_om / d_ref, nan)
    hh = a + b - 1
    g_im = 1 - torch.exp(-hh * LAMBDA_IM)
    g_om = g_im if LAMBDA_OM == LAMBDA_IM else 1 - torch.exp(-hh * LAMBDA_OM)
    im = a + b * g_im
    om = b + a * g_om
    ha = torch.exp(-a * b * LAMBDA_HA)
    probs = torch.softmax(-torch.stack([im, om, ha], dim=0) / SOFTMIN_T, dim=0)
    return {"improvement": probs[0], "omission": probs[1], "hallucination": probs[2], "mask": mask}


def synthesis(sr: torch.Tensor, lr: torch.Tensor, hr: torch.Tensor, scale: int,
              opts: OpensrOptions = DEFAULTS) -> dict[str, torch.Tensor]:
    """Synthesis per image (N,) (reflectance units)."""
    return {"synthesis": synthesis_from(harmonised(sr, lr, hr, scale, opts))}


def correctness_maps(sr: torch.Tensor, lr: torch.Tensor, hr: torch.Tensor, scale: int,
                     opts: OpensrOptions = DEFAULTS) -> dict[str, torch.Tensor]:
    """:func:`correctness_maps_from` of SR, LR and HR (cropped by ``opts.border``)."""
    return correctness_maps_from(harmonised(sr, lr, hr, scale, opts), opts)


def correctness_from(h: Harmonised, opts: OpensrOptions = DEFAULTS) -> dict[str, torch.Tensor]:
    """Improvement, omission and hallucination fractions per image (N,): the softmin probabilities'
    means over the masked pixels."""
    maps = correctness_maps_from(h, opts)
    return {k: maps[k].nanmean(dim=(-2, -1)) for k in CORRECTNESS}


def correctness(sr: torch.Tensor, lr: torch.Tensor, hr: torch.Tensor, scale: int,
                opts: OpensrOptions = DEFAULTS) -> dict[str, torch.Tensor]:
    """:func:`correctness_from` of SR, LR and HR (cropped by ``opts.border``)."""
    return correctness_from(harmonised(sr, lr, hr, scale, opts), opts)


def opensr_scores(sr: torch.Tensor, lr: torch.Tensor, hr: torch.Tensor | None, scale: int,
                  rgb_idx: list[int], opts: OpensrOptions = DEFAULTS,
                  names: tuple[str, ...] = SCORES) -> dict[str, torch.Tensor]:
    """The ``names`` scores (of :data:`SCORES`) per image (N,), sharing ``sr_harm`` between
    synthesis and correctness (``hr`` may be None when only consistency is asked)."""
    out: dict[str, torch.Tensor] = {}
    sr, lr = sr.to(torch.float64), lr.to(torch.float64)  # once, not in every step
    hr = None if hr is None else hr.to(torch.float64)
    if any(n in CONSISTENCY for n in names):
        out.update(consistency(sr, lr, scale, rgb_idx, opts))
    if any(n == "synthesis" or n in CORRECTNESS for n in names):
        h = harmonised(sr, lr, hr, scale, opts)
        if "synthesis" in names:
            out["synthesis"] = synthesis_from(h)
        if any(n in CORRECTNESS for n in names):
            out.update(correctness_from(h, opts))
    return {k: v for k, v in out.items() if k in names}
