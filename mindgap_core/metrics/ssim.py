"""SSIM in torch, batched, equal to ``skimage.metrics.structural_similarity``.

Reference settings (Wang et al. 2004, and skimage with ``gaussian_weights=True, sigma=1.5,
use_sample_covariance=False``): a separable Gaussian window of radius ``int(3.5 * sigma + 0.5)``
(= 5, window 11), filtered with scipy's ``mode="reflect"`` (half-sample symmetric padding), population
covariance, K1 = 0.01, K2 = 0.03. The mean SSIM excludes a border of ``(win - 1) // 2`` pixels, as
skimage does; the returned map is skimage's full map (``full=True``) including that border.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

K1 = 0.01
K2 = 0.03
SIGMA = 1.5
TRUNCATE = 3.5


def gaussian_kernel1d(sigma: float = SIGMA, truncate: float = TRUNCATE, *, dtype=torch.float64,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """scipy.ndimage's normalised 1-D Gaussian of radius ``int(truncate * sigma + 0.5)``."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return (w / w.sum()).to(dtype=dtype, device=device)


def symmetric_pad(x: torch.Tensor, r: int) -> torch.Tensor:
    """Pad the last two dims by ``r`` with half-sample symmetry (scipy ``reflect``: d c b a | a b c d)."""
    if r == 0:
        return x
    x = torch.cat([x[..., :r].flip(-1), x, x[..., -r:].flip(-1)], dim=-1)
    return torch.cat([x[..., :r, :].flip(-2), x, x[..., -r:, :].flip(-2)], dim=-2)


def gaussian_filter(x: torch.Tensor, sigma: float = SIGMA) -> torch.Tensor:
    """Separable Gaussian filter of (N, C, H, W), scipy ``gaussian_filter(mode="reflect", truncate=3.5)``."""
    k = gaussian_kernel1d(sigma, dtype=x.dtype, device=x.device)
    r = (k.numel() - 1) // 2
    c = x.shape[1]
    xp = symmetric_pad(x, r)
    x = F.conv2d(xp, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0,
             sigma: float = SIGMA) -> torch.Tensor:
    """Per-pixel SSIM of (N, C, H, W) tensors, per band; same shape as the inputs."""
    if x.shape != y.shape:
        raise ValueError(f"SSIM needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    win = 2 * int(TRUNCATE * sigma + 0.5) + 1
    if min(x.shape[-2:]) < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win} pixels, got {tuple(x.shape[-2:])}")
    c = x.shape[1]
    # only vx + vy enters SSIM, so x^2 + y^2 is filtered once (4 filtered maps instead of 5)
    stats = gaussian_filter(torch.cat([x, y, x * x + y * y, x * y], dim=1), sigma)
    ux, uy, uxx_yy, uxy = stats.split(c, dim=1)
    ux2_uy2 = ux * ux + uy * uy
    vx_vy = uxx_yy - ux2_uy2
    vxy = uxy - ux * uy
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux2_uy2 + c1) * (vx_vy + c2))


def ssim_from_map(smap: torch.Tensor, valid: torch.Tensor | None = None,
                  sigma: float = SIGMA) -> torch.Tensor:
    """Mean SSIM per (N, C) over the interior (border of (win-1)//2 excluded), valid pixels only."""
    pad = int(TRUNCATE * sigma + 0.5)
    inner = smap[..., pad:-pad, pad:-pad] if pad else smap
    if valid is None:
        return inner.to(torch.float64).mean(dim=(-2, -1))
    v = (valid[:, None, pad:-pad, pad:-pad] if pad else valid[:, None]).to(torch.float64)
    return (inner.to(torch.float64) * v).sum(dim=(-2, -1)) / v.sum(dim=(-2, -1)).clamp_min(1)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0,
         valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean SSIM per image and band: (N, C) float64."""
    return ssim_from_map(ssim_map(x, y, data_range), valid)
