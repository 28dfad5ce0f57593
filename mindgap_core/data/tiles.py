"""Tile windows over an aligned LR/HR pair.

HR tiles are ``tile_size`` pixels square, LR tiles ``tile_size // scale``; windows step by ``stride``
HR pixels (default: the tile size, no overlap) from the top-left corner of the aligned grid, and
partial tiles at the right/bottom edges are not made. Tile ``(row, col)`` is the window's index in
that stepping (not a pixel offset); its id is ``f"r{row}c{col}"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine

from mindgap_core.errors import ConfigError


@dataclass(frozen=True)
class Tile:
    """One tile window: HR and LR pixel offsets in the aligned grid, and its bounds in the grid CRS."""

    tile_id: str
    row: int
    col: int
    hr_row_off: int
    hr_col_off: int
    size_hr: int
    scale: int
    bounds: tuple[float, float, float, float]  # left, bottom, right, top
    valid_fraction: float

    @property
    def size_lr(self) -> int:
        return self.size_hr // self.scale

    @property
    def lr_row_off(self) -> int:
        return self.hr_row_off // self.scale

    @property
    def lr_col_off(self) -> int:
        return self.hr_col_off // self.scale

    @property
    def hr_window(self) -> tuple[int, int, int, int]:
        """``(row_off, col_off, rows, cols)`` in the aligned HR grid."""
        return self.hr_row_off, self.hr_col_off, self.size_hr, self.size_hr

    @property
    def lr_window(self) -> tuple[int, int, int, int]:
        """``(row_off, col_off, rows, cols)`` in the cropped LR grid."""
        return self.lr_row_off, self.lr_col_off, self.size_lr, self.size_lr


def tile_id(row: int, col: int) -> str:
    """The id of the tile at window index ``(row, col)``."""
    return f"r{row}c{col}"


def check_tiling(tile_size: int, scale: int, stride: int | None = None) -> int:
    """Validate the tiling settings; returns the stride. Raises :class:`ConfigError` naming values."""
    for name, value in (("tile size", tile_size), ("scale", scale)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if tile_size % scale:
        raise ConfigError(
            f"tile size {tile_size} is not divisible by scale {scale}: the LR tile would be "
            f"{tile_size / scale:g} pixels; choose a tile size that is a multiple of {scale}"
        )
    stride = tile_size if stride is None else stride
    if not isinstance(stride, int | np.integer) or stride < 1 or stride % scale:
        raise ConfigError(f"stride {stride!r} must be a positive multiple of scale {scale}")
    return int(stride)


def make_tiles(
    valid: np.ndarray,
    transform: Affine,
    tile_size: int,
    scale: int,
    *,
    stride: int | None = None,
    min_valid: float = 0.9,
) -> list[Tile]:
    """Tiles over an aligned HR grid whose valid fraction (of ``valid``) is at least ``min_valid``.

    ``valid`` is the combined HR-resolution validity mask (rows and cols multiples of ``scale``) and
    ``transform`` the aligned HR grid's transform. A tile without any valid pixel is never kept,
    even with ``min_valid=0``. Tiles are returned in row-major order.
    """
    stride = check_tiling(tile_size, scale, stride)
    if not 0.0 <= min_valid <= 1.0:
        raise ConfigError(f"min_valid must be in [0, 1], got {min_valid!r}")
    rows, cols = valid.shape
    tiles: list[Tile] = []
    for i, r in enumerate(range(0, rows - tile_size + 1, stride)):
        for j, c in enumerate(range(0, cols - tile_size + 1, stride)):
            fraction = float(valid[r : r + tile_size, c : c + tile_size].mean())
            if fraction < min_valid or fraction == 0.0:
                continue
            x0, y0 = transform @ (c, r)
            x1, y1 = transform @ (c + tile_size, r + tile_size)
            bounds = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            tiles.append(Tile(tile_id(i, j), i, j, r, c, tile_size, scale, bounds, fraction))
    return tiles


def tile_grid_shape(shape: Sequence[int], tile_size: int, stride: int) -> tuple[int, int]:
    """Number of tile rows and columns that fit in an HR grid of ``shape``."""
    rows, cols = shape
    n_r = 0 if rows < tile_size else (rows - tile_size) // stride + 1
    n_c = 0 if cols < tile_size else (cols - tile_size) // stride + 1
    return n_r, n_c
