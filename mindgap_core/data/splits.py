"""Spatial block splits: neighbouring tiles share a split, so train and test never touch.

Tiles are grouped into blocks of ``block_size x block_size`` tile positions (block of tile
``(row, col)`` = ``(row // block_size, col // block_size)``, id ``f"b{brow}_{bcol}"``); whole blocks are
assigned to train/val/test. The number of blocks per split follows the fractions (largest remainder
rounding); with at least 3 blocks every split with a non-zero fraction gets at least one block. Which
blocks go where is a seeded permutation of the sorted block ids: deterministic for a given seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mindgap_core.errors import ConfigError

SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)


def block_id(row: int, col: int, block_size: int) -> str:
    """The id of the block that holds tile ``(row, col)``."""
    return f"b{row // block_size}_{col // block_size}"


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validate train/val/test fractions (three non-negative numbers summing to 1)."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(not math.isfinite(f) or f < 0 for f in values):
        raise ConfigError(
            f"split fractions must be three non-negative numbers (train, val, test), got {fractions!r}"
        )
    if abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must sum to 1, got {fractions!r} (sum {sum(values):g})")
    return values  # type: ignore[return-value]


def split_counts(n_blocks: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """How many blocks each split gets (see the module docstring)."""
    fr = check_fractions(fractions)
    raw = [f * n_blocks for f in fr]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(3), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n_blocks - sum(counts)]:
        counts[i] += 1
    if n_blocks >= 3:
        for i in range(3):
            if fr[i] > 0 and counts[i] == 0:
                donor = max(range(3), key=lambda k: (counts[k], -k))
                counts[donor] -= 1
                counts[i] += 1
    return counts[0], counts[1], counts[2]


def assign_block_splits(
    rows: Sequence[int],
    cols: Sequence[int],
    block_size: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> list[tuple[str, str]]:
    """``(block_id, split)`` for each tile ``(rows[i], cols[i])``, in the input order."""
    if not isinstance(block_size, int | np.integer) or isinstance(block_size, bool) or block_size < 1:
        raise ConfigError(f"block size must be a positive integer, got {block_size!r}")
    if len(rows) != len(cols):
        raise ValueError(f"{len(rows)} rows but {len(cols)} cols")
    keys = [(int(r) // block_size, int(c) // block_size) for r, c in zip(rows, cols, strict=True)]
    blocks = sorted(set(keys))
    counts = split_counts(len(blocks), fractions)
    order = np.random.default_rng(seed).permutation(len(blocks))
    split_of: dict[tuple[int, int], str] = {}
    start = 0
    for name, count in zip(SPLITS, counts, strict=True):
        for k in order[start : start + count]:
            split_of[blocks[k]] = name
        start += count
    return [(block_id(br, bc, 1), split_of[(br, bc)]) for br, bc in keys]
