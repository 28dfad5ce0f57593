"""Spatial block splits: neighbouring tiles share a split, so a block is never cut between splits.

Tiles are grouped into blocks of ``block_rows x block_cols`` tile positions (``block_size``: one int for
square blocks or a ``(rows, cols)`` pair; block of tile ``(row, col)`` = ``(row // block_rows,
col // block_cols)``, id ``f"b{brow}_{bcol}"``); whole blocks are assigned to train/val/test. The number of
blocks per split follows the fractions (largest remainder rounding); with at least 3 blocks every split
with a non-zero fraction gets at least one block. Which blocks go where is a seeded permutation of the
sorted block ids: deterministic for a given seed.

``separate``: splits whose blocks must not touch each other (not even at a corner). A block is the unit
of independence of the gap statistics (:mod:`mindgap_core.analysis`), so two touching test blocks would
be one dependent unit counted twice. Blocks are then taken greedily in the seeded order, skipping a
block that touches one already in that split; the first of up to :data:`SEPARATION_TRIES` seeded orders
that fills every separated split wins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mindgap_core.errors import ConfigError

SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)
SEPARATION_TRIES = 1000


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


def block_shape(block_size: int | Sequence[int]) -> tuple[int, int]:
    """``(rows, cols)`` of a block from an int (square) or a pair; :class:`ConfigError` otherwise."""
    if isinstance(block_size, int | np.integer):
        values: tuple = (block_size, block_size)
    elif isinstance(block_size, Sequence) and not isinstance(block_size, str):
        values = tuple(block_size)
    else:
        values = ()
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1
                               for v in values):
        raise ConfigError(f"block size must be a positive integer or a (rows, cols) pair of them, "
                          f"got {block_size!r}")
    return int(values[0]), int(values[1])


def _touch(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two grid-aligned blocks share an edge or a corner."""
    return abs(a[0] - b[0]) <= 1 and abs(a[1] - b[1]) <= 1


def _order(blocks: list[tuple[int, int]], counts: tuple[int, int, int], seed: int,
           separate: Sequence[str]) -> dict[tuple[int, int], str]:
    """Split of each block: the seeded order, with separated splits taking non-touching blocks."""
    for attempt in range(SEPARATION_TRIES if separate else 1):
        rng = np.random.default_rng(seed if attempt == 0 else (seed, attempt))
        order = [blocks[k] for k in rng.permutation(len(blocks))]
        split_of: dict[tuple[int, int], str] = {}
        for name, count in zip(SPLITS, counts, strict=True):
            if name not in separate:
                continue
            taken = []
            for b in order:
                if len(taken) == count:
                    break
                if b not in split_of and not any(_touch(b, t) for t in taken):
                    taken.append(b)
                    split_of[b] = name
            if len(taken) < count:
                break
        else:
            rest = iter(b for b in order if b not in split_of)
            for name, count in zip(SPLITS, counts, strict=True):
                if name not in separate:
                    for _ in range(count):
                        split_of[next(rest)] = name
            return split_of
    raise ConfigError(f"cannot place the {', '.join(separate)} blocks apart: {len(blocks)} blocks, "
                      f"{dict(zip(SPLITS, counts, strict=True))} per split; use smaller blocks or fewer "
                      "of them in that split")


def assign_block_splits(
    rows: Sequence[int],
    cols: Sequence[int],
    block_size: int | Sequence[int],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    separate: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """``(block_id, split)`` for each tile ``(rows[i], cols[i])``, in the input order."""
    bh, bw = block_shape(block_size)
    unknown = [s for s in separate if s not in SPLITS]
    if unknown:
        raise ConfigError(f"unknown split(s) {unknown} to separate; known: {list(SPLITS)}")
    if len(rows) != len(cols):
        raise ValueError(f"{len(rows)} rows but {len(cols)} cols")
    keys = [(int(r) // bh, int(c) // bw) for r, c in zip(rows, cols, strict=True)]
    blocks = sorted(set(keys))
    counts = split_counts(len(blocks), fractions)
    split_of = _order(blocks, counts, seed, tuple(separate))
    return [(f"b{br}_{bc}", split_of[(br, bc)]) for br, bc in keys]
