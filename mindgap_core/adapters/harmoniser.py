"""Classical harmoniser: per-band histogram matching, sub-pixel co-registration and MTF matching.

Fitted on paired training tiles of a source domain (cross-sensor LR) and a target domain (synthetic LR
of the same HR tiles):

1. **Histogram matching**: a monotone per-band transfer function mapping the pooled source quantiles
   onto the pooled target quantiles (101 quantiles, linear in between, linear extrapolation outside);
   it fixes global gain, offset, haze level and spectral-response differences on average.
2. **Co-registration** (option ``coregister``): each tile is moved by the sub-pixel shift that phase
   correlation finds against a reference. At fit time the reference is the target LR; at inference it
   is the HR tile area-averaged to the LR grid, i.e. *oracle geometry*, as pairing-time co-registration
   of a dataset uses. Without it, blind inference needs no reference.
3. **MTF matching**: a radially symmetric Wiener filter H(f) = Σ Re(T·S*) / Σ |S|² per band and
   radial frequency bin (Hann-windowed spectra of the matched, optionally registered, source S and the
   target T), so the source's blur and sharpening become the target's; H(0) = 1 and H ≤ ``max_gain``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config

from mindgap_core.adapters.base import AdapterPairs, LRAdapter
from mindgap_core.data.coregister import apply_shift, estimate_shift
from mindgap_core.errors import InputError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.types import CANONICAL_BANDS

HARMONISER_FILE = "harmoniser.json"
N_QUANTILES = 101
N_FREQ_BINS = 12
MAX_RADIUS = float(np.sqrt(0.5))  # cycles per pixel at the FFT grid's corner
PAD = 8


def _radial_frequency(rows: int, cols: int) -> np.ndarray:
    fy = np.fft.fftfreq(rows)[:, None]
    fx = np.fft.fftfreq(cols)[None, :]
    return np.hypot(fy, fx)


def _bin_centres() -> np.ndarray:
    edges = np.linspace(0.0, MAX_RADIUS, N_FREQ_BINS + 1)
    return 0.5 * (edges[:-1] + edges[1:])


def quantile_map(x: np.ndarray, src_q: np.ndarray, tgt_q: np.ndarray) -> np.ndarray:
    """Piecewise-linear monotone map of ``x`` from source to target quantiles, extrapolated linearly."""
    out = np.interp(x, src_q, tgt_q)
    lo_slope = (tgt_q[1] - tgt_q[0]) / max(src_q[1] - src_q[0], 1e-9)
    hi_slope = (tgt_q[-1] - tgt_q[-2]) / max(src_q[-1] - src_q[-2], 1e-9)
    out = np.where(x < src_q[0], tgt_q[0] + (x - src_q[0]) * lo_slope, out)
    return np.where(x > src_q[-1], tgt_q[-1] + (x - src_q[-1]) * hi_slope, out)


def _register(tile: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``tile`` (C, h, w) moved onto ``reference`` by the phase-correlation shift (bicubic)."""
    shift = estimate_shift(reference, tile)
    if not (np.isfinite(shift.dx) and np.isfinite(shift.dy)):
        return tile
    return apply_shift(tile, -shift.dx, -shift.dy, method="bicubic").astype(np.float32)


class Harmoniser(LRAdapter):
    """Histogram matching + optional co-registration + MTF matching (module docstring)."""

    kind: ClassVar[str] = "harmoniser"
    file_parts: ClassVar[tuple[str, ...]] = ("src_quantiles", "tgt_quantiles", "filter_gain")

    @register_to_config
    def __init__(self, *, src_quantiles: np.ndarray, tgt_quantiles: np.ndarray, filter_gain: np.ndarray,
                 coregister: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.src_quantiles = np.asarray(src_quantiles, dtype=np.float64)  # (C, Q)
        self.tgt_quantiles = np.asarray(tgt_quantiles, dtype=np.float64)
        self.filter_gain = np.asarray(filter_gain, dtype=np.float64)  # (C, bins)
        self.coregister = bool(coregister)
        self.uses_reference = self.coregister

    # --- fitting -------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, pairs: AdapterPairs, *, coregister: bool = False, max_gain: float = 3.0,
            band_names: tuple[str, ...] = CANONICAL_BANDS) -> Harmoniser:
        """Fit on paired training tiles (source LR -> target LR)."""
        src = pairs.source.double().numpy()
        tgt = pairs.target.double().numpy()
        levels = np.linspace(0.0, 1.0, N_QUANTILES)
        src_q = np.stack([np.quantile(src[:, c], levels) for c in range(src.shape[1])])
        tgt_q = np.stack([np.quantile(tgt[:, c], levels) for c in range(tgt.shape[1])])
        mapped = np.stack([[quantile_map(tile[c], src_q[c], tgt_q[c]) for c in range(src.shape[1])]
                           for tile in src])
        if coregister:
            mapped = np.stack([_register(m, t) for m, t in zip(mapped, tgt, strict=True)])
        gain = cls._wiener_gain(mapped, tgt, max_gain)
        return cls(src_quantiles=src_q, tgt_quantiles=tgt_q, filter_gain=gain, coregister=coregister,
                   band_names=band_names)

    @staticmethod
    def _wiener_gain(source: np.ndarray, target: np.ndarray, max_gain: float) -> np.ndarray:
        """Per band and radial bin: Σ Re(T S*) / Σ |S|² over tiles (Hann-windowed, mean removed)."""
        _, channels, rows, cols = source.shape
        window = np.outer(np.hanning(rows), np.hanning(cols))
        radius_bins = (_radial_frequency(rows, cols) / MAX_RADIUS * N_FREQ_BINS).astype(int)
        bins = np.minimum(radius_bins, N_FREQ_BINS - 1)
        gain = np.ones((channels, N_FREQ_BINS))
        for c in range(channels):
            s = np.fft.fft2((source[:, c] - source[:, c].mean(axis=(1, 2), keepdims=True)) * window)
            t = np.fft.fft2((target[:, c] - target[:, c].mean(axis=(1, 2), keepdims=True)) * window)
            cross = np.bincount(bins.ravel(), (t * np.conj(s)).real.sum(axis=0).ravel(), N_FREQ_BINS)
            power = np.bincount(bins.ravel(), (np.abs(s) ** 2).sum(axis=0).ravel(), N_FREQ_BINS)
            with np.errstate(divide="ignore", invalid="ignore"):
                g = np.where(power > 0, cross / power, 1.0)
            gain[c] = np.clip(g, 0.0, max_gain)
        gain[:, 0] = 1.0  # the mean is the histogram matching's job
        return gain

    # --- applying ------------------------------------------------------------------------------------
    def _filter(self, x: torch.Tensor) -> torch.Tensor:
        """The MTF-matching filter on (N, C, h, w), reflect-padded against wrap-around."""
        pad = min(PAD, x.shape[-2] - 1, x.shape[-1] - 1)
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect") if pad > 0 else x
        rows, cols = padded.shape[-2:]
        radius = _radial_frequency(rows, cols)
        response = np.stack([np.interp(radius, _bin_centres(), g, left=1.0) for g in self.filter_gain])
        response[:, 0, 0] = 1.0
        h = torch.as_tensor(response, dtype=torch.float64, device=x.device)
        out = torch.fft.ifft2(torch.fft.fft2(padded.double()) * h).real
        return out[..., pad : rows - pad, pad : cols - pad].to(x.dtype)

    def _matched(self, lr: torch.Tensor) -> np.ndarray:
        arr = lr.detach().double().cpu().numpy()
        for c in range(arr.shape[1]):
            arr[:, c] = quantile_map(arr[:, c], self.src_quantiles[c], self.tgt_quantiles[c])
        return arr

    def adapt(self, lr: torch.Tensor, reference_hr: torch.Tensor | None = None) -> torch.Tensor:
        self.check_bands(lr)
        arr = self._matched(lr)
        if self.coregister:
            if reference_hr is None:
                raise ValueError("this harmoniser co-registers: pass the HR reference (oracle geometry)")
            ref = F.adaptive_avg_pool2d(reference_hr.double(), lr.shape[-2:]).cpu().numpy()
            arr = np.stack([_register(a, r) for a, r in zip(arr, ref, strict=True)])
        out = torch.as_tensor(arr, device=lr.device, dtype=torch.float64)
        return self._filter(out).to(lr.dtype)

    # --- persistence ---------------------------------------------------------------------------------
    def _save_files(self, folder: Path) -> None:
        data = {"src_quantiles": self.src_quantiles.tolist(), "tgt_quantiles": self.tgt_quantiles.tolist(),
                "filter_gain": self.filter_gain.tolist(), "filter_bin_centres": _bin_centres().tolist()}
        with atomic_path(folder / HARMONISER_FILE) as tmp:
            tmp.write_text(json.dumps(data))

    @classmethod
    def _load_files(cls, folder: Path) -> dict[str, Any]:
        path = folder / HARMONISER_FILE
        try:
            data = json.loads(path.read_text())
            return {name: np.array(data[name]) for name in cls.file_parts}
        except (OSError, KeyError, json.JSONDecodeError) as exc:
            raise InputError(path, f"missing or unreadable harmoniser statistics ({exc})") from None
