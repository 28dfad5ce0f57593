"""Tile layout and blending weights for seamless tiled inference.

Tiles of ``tile`` LR pixels start every ``tile - overlap`` pixels; the last tile along an axis is
shifted back so that it ends exactly on the image edge (no padding unless the image is smaller than
one tile). Each tile's output is weighted by a separable window and the blend is normalised by the
sum of weights.

The 1-D window, on a side that faces a neighbouring tile (an *interior* side), over the ``overlap``
(in output pixels) nearest that side:

* outer quarter — the *guard band*: weight ``GUARD_WEIGHT`` (1e-6, positive but negligible). Pixels
  there see the tile's padding within a model's receptive field, so they should not count;
* middle half — raised-cosine ramp ``sin²(π/2 · t)`` from ~0 up to 1;
* rest of the tile — weight 1.

Two neighbours overlapping by exactly ``overlap`` have mirror-image ramps that sum to 1 (sin² + cos²),
so the cross-fade is a partition of unity with no seam. Sides on the image border get weight 1 (no
neighbour to fade into). Consequence, tested: for a deterministic model whose receptive field is at
most ``overlap // 4`` LR pixels, tiled output equals untiled output everywhere (up to ~1e-6 x the
tile-to-tile difference from the guard weight).
"""

from __future__ import annotations

import math

import numpy as np

#: Weight of the guard band: > 0 so every pixel has positive total weight, small enough to vanish.
GUARD_WEIGHT: float = 1e-6


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap``.

    The last tile ends on ``length`` (shifted back, so its overlap with the previous one may exceed
    ``overlap``); when ``length <= tile`` there is a single tile at 0.
    """
    if tile <= 0 or overlap < 0 or overlap >= tile:
        raise ValueError(f"need 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def taper_1d(length: int, overlap: int, *, taper_start: bool, taper_end: bool) -> np.ndarray:
    """1-D blending weights (float64, all > 0) of a tile of ``length`` output pixels.

    ``overlap`` is in output pixels; ``taper_start``/``taper_end`` say whether that side faces a
    neighbouring tile (True) or the image border (False).
    """
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    weights = np.ones(length, dtype=np.float64)
    if overlap == 0 or not (taper_start or taper_end):
        return weights
    if 2 * overlap > length:
        raise ValueError(f"need 2 * overlap <= length, got overlap={overlap}, length={length}")
    guard = overlap // 4
    ramp_len = overlap - 2 * guard
    ramp = np.sin(0.5 * math.pi * (np.arange(ramp_len) + 0.5) / ramp_len) ** 2
    edge = np.concatenate([np.full(guard, GUARD_WEIGHT), ramp])
    edge = np.maximum(edge, GUARD_WEIGHT)
    if taper_start:
        weights[: edge.size] = np.minimum(weights[: edge.size], edge)
    if taper_end:
        weights[length - edge.size :] = np.minimum(weights[length - edge.size :], edge[::-1])
    return weights


def tile_weights(
    height: int,
    width: int,
    overlap: int,
    *,
    top: bool,
    bottom: bool,
    left: bool,
    right: bool,
) -> np.ndarray:
    """Separable 2-D weights (height, width), float64 > 0; a flag is True where that side tapers."""
    rows = taper_1d(height, overlap, taper_start=top, taper_end=bottom)
    cols = taper_1d(width, overlap, taper_start=left, taper_end=right)
    return np.outer(rows, cols)
