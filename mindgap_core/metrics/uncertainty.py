"""Is a diffusion model's spread trustworthy? Calibration scores of N samples against the HR reference.

A model that draws N samples per tile gives, per pixel and band, a predictive distribution. It is
*calibrated* when the HR value behaves like one more draw from that distribution. The scores:

- **Coverage** of the central interval at nominal level p (50 / 80 / 90 / 95 %): the share of HR
  values inside it. Built from ranks, as an ensemble forecaster's rank histogram (Hamill 2001,
  Monthly Weather Review 129:550): with ``r`` samples below the HR value and ``e`` equal to it, the
  HR's probability integral transform lies in ``[r, r + e + 1] / (N + 1)``; the coverage of a pixel is
  the share of that range inside ``[(1 - p) / 2, (1 + p) / 2]`` (the expectation of the randomised
  PIT, so no random draw is needed). If the HR is exchangeable with the samples, the expected
  coverage is exactly p for any N and any distribution — unlike quantiles of 8 samples, whose
  widest interval (min to max) covers only (N - 1) / (N + 1) = 78 % of a calibrated model's truth.
  Below p: over-confident (spread too small); above: under-confident.
- **Reliability curve**: coverage at many nominal levels (:data:`RELIABILITY_LEVELS`).
- **Spread** (sharpness): mean per-pixel standard deviation of the samples (reflectance).
- **Error-uncertainty agreement**: Spearman rank correlation of the per-pixel |mean - HR| with the
  spread, and the AUROC of the spread for detecting the pixels with the largest errors (top
  :data:`TOP_ERROR_FRACTION` of the tile's |error|; ties count one half, Mann-Whitney).

All functions take samples (N, S, C, H, W) and the HR (N, C, H, W), an optional valid mask (N, H, W),
and return one value per tile (float64). A model whose samples are all equal (deterministic) has no
uncertainty: :func:`has_spread` is False and these scores are not defined for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: the nominal central-interval levels MindGap reports
NOMINAL_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
#: the levels of a reliability curve
RELIABILITY_LEVELS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))
#: the share of a tile's pixels counted as "largest errors" for the AUROC
TOP_ERROR_FRACTION = 0.1


def has_spread(samples: torch.Tensor) -> bool:
    """Whether the samples differ anywhere (False for deterministic models or a single sample)."""
    return samples.shape[1] > 1 and bool((samples != samples[:, :1]).any())


def _valid_weights(valid: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) float64 weights: the mask broadcast over bands (ones when None)."""
    if valid is None:
        return torch.ones(like.shape, dtype=torch.float64, device=like.device)
    return valid[:, None].expand(like.shape).to(torch.float64)


def pit_range(samples: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel range ``[lo, hi]`` of the truth's probability integral transform among the samples."""
    s = samples.shape[1]
    t = truth[:, None].to(samples.dtype)
    below = (samples < t).sum(dim=1).to(torch.float64)
    equal = (samples == t).sum(dim=1).to(torch.float64)
    return below / (s + 1), (below + equal + 1) / (s + 1)


def coverages(samples: torch.Tensor, truth: torch.Tensor, levels: Sequence[float],
              valid: torch.Tensor | None = None) -> torch.Tensor:
    """Expected share of truth values inside the central interval of each level, (N, len(levels))."""
    lo, hi = pit_range(samples, truth)
    w = _valid_weights(valid, lo)
    total = w.sum(dim=(1, 2, 3)).clamp_min(1)
    out = []
    for level in levels:
        a, b = (1.0 - level) / 2.0, (1.0 + level) / 2.0
        inside = (hi.clamp(max=b) - lo.clamp(min=a)).clamp_min(0)
        out.append((inside / (hi - lo) * w).sum(dim=(1, 2, 3)) / total)
    return torch.stack(out, dim=1)


def coverage(samples: torch.Tensor, truth: torch.Tensor, level: float,
             valid: torch.Tensor | None = None) -> torch.Tensor:
    """Expected share of truth values inside the central ``level`` interval, per tile (N,)."""
    return coverages(samples, truth, (level,), valid)[:, 0]


def reliability(samples: torch.Tensor, truth: torch.Tensor, levels: Sequence[float] = RELIABILITY_LEVELS,
                valid: torch.Tensor | None = None) -> torch.Tensor:
    """Observed coverage at each nominal level, (N, len(levels))."""
    return coverages(samples, truth, levels, valid)


def spread_map(samples: torch.Tensor) -> torch.Tensor:
    """Per-pixel standard deviation over the samples (population form, as the saved uncertainty maps)."""
    return samples.to(torch.float64).std(dim=1, unbiased=False)


def mean_spread(samples: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean per-pixel spread per tile (N,) (sharpness; reflectance units)."""
    sd = spread_map(samples)
    w = _valid_weights(valid, sd)
    return (sd * w).sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3)).clamp_min(1)


def _flat_valid(values: torch.Tensor, valid: torch.Tensor | None, i: int) -> np.ndarray:
    """Tile ``i``'s values over bands and valid pixels as a 1-D float64 array."""
    v = values[i].detach().cpu().to(torch.float64).numpy()
    if valid is None:
        return v.ravel()
    mask = np.broadcast_to(valid[i].detach().cpu().numpy()[None], v.shape)
    return v[mask]


def _average_ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, method="average")


def spearman(a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Spearman rank correlation of two (N, C, H, W) maps per tile (ties: average ranks); NaN when
    one of them is constant."""
    out = []
    for i in range(a.shape[0]):
        ra, rb = _average_ranks(_flat_valid(a, valid, i)), _average_ranks(_flat_valid(b, valid, i))
        if ra.std() == 0 or rb.std() == 0:
            out.append(float("nan"))
            continue
        out.append(float(np.corrcoef(ra, rb)[0, 1]))
    return torch.tensor(out, dtype=torch.float64)


def auroc(score: torch.Tensor, positive: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Area under the ROC curve of ``score`` for the boolean ``positive`` pixels, per tile (Mann-Whitney,
    ties count one half); NaN when a tile has no positive or no negative pixel."""
    out = []
    for i in range(score.shape[0]):
        s = _flat_valid(score, valid, i)
        p = _flat_valid(positive.to(torch.float64), valid, i) > 0.5
        n_pos, n_neg = int(p.sum()), int((~p).sum())
        if n_pos == 0 or n_neg == 0:
            out.append(float("nan"))
            continue
        ranks = _average_ranks(s)
        out.append(float((ranks[p].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)))
    return torch.tensor(out, dtype=torch.float64)


def largest_errors(error: torch.Tensor, valid: torch.Tensor | None = None,
                   fraction: float = TOP_ERROR_FRACTION) -> torch.Tensor:
    """Boolean (N, C, H, W): the ``fraction`` of each tile's valid band-pixels with the largest error."""
    out = torch.zeros(error.shape, dtype=torch.bool, device=error.device)
    for i in range(error.shape[0]):
        vals = torch.from_numpy(_flat_valid(error, valid, i))
        if vals.numel() == 0:
            continue
        k = max(int(round((1.0 - fraction) * vals.numel())), 1)
        threshold = vals.kthvalue(k).values.item()
        mask = error[i].to(torch.float64) > threshold
        if valid is not None:
            mask &= valid[i][None].expand_as(mask)
        out[i] = mask
    return out


def error_spread_agreement(samples: torch.Tensor, truth: torch.Tensor,
                           valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(Spearman of |error| vs spread, AUROC of the spread for the largest errors), each (N,)."""
    error = (samples.to(torch.float64).mean(dim=1) - truth.to(torch.float64)).abs()
    sd = spread_map(samples)
    return spearman(error, sd, valid), auroc(sd, largest_errors(error, valid), valid)


def scale_spread(samples: torch.Tensor, factor: float) -> torch.Tensor:
    """Samples with their deviation from the per-pixel mean multiplied by ``factor`` (a temperature)."""
    mean = samples.mean(dim=1, keepdim=True)
    return mean + factor * (samples - mean)


def fit_spread_scale(batches: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]],
                     levels: Sequence[float] = NOMINAL_LEVELS, low: float = 0.1, high: float = 20.0,
                     steps: int = 60) -> float:
    """The spread factor that brings coverage closest to nominal on ``batches`` of (samples, truth,
    valid): minimises the mean squared coverage error over ``levels`` on a log grid of ``steps``
    factors in [low, high], refined by a golden-section search around the best grid point."""
    def loss(f: float) -> float:
        total, count = 0.0, 0
        for samples, truth, valid in batches:
            c = coverages(scale_spread(samples, f), truth, levels, valid)
            total += float(((c - torch.tensor(levels, dtype=c.dtype)) ** 2).sum())
            count += c.numel()
        return total / max(count, 1)

    grid = np.geomspace(low, high, steps)
    losses = [loss(f) for f in grid]
    k = int(np.argmin(losses))
    a, b = np.log(grid[max(k - 1, 0)]), np.log(grid[min(k + 1, steps - 1)])
    phi = (np.sqrt(5.0) - 1) / 2
    c, d = b - phi * (b - a), a + phi * (b - a)
    fc, fd = loss(float(np.exp(c))), loss(float(np.exp(d)))
    for _ in range(30):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - phi * (b - a)
            fc = loss(float(np.exp(c)))
        else:
            a, c, fc = c, d, fd
            d = a + phi * (b - a)
            fd = loss(float(np.exp(d)))
    return float(np.exp((a + b) / 2))
