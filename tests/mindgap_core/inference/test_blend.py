"""Tile layout and blending weights: coverage, positivity, partition of unity across overlaps."""

from __future__ import annotations

import numpy as np
import pytest

from mindgap_core.inference.blend import GUARD_WEIGHT, taper_1d, tile_starts, tile_weights


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(64, 32, 8), (70, 24, 8), (100, 30, 0), (33, 32, 15)]
)
def test_tile_starts_cover_with_at_least_the_overlap(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(b > a for a, b in zip(starts, starts[1:], strict=False))
    assert all(a + tile - b >= overlap for a, b in zip(starts, starts[1:], strict=False))
    assert all(b - a == tile - overlap for a, b in zip(starts[:-1], starts[1:-1], strict=False))


def test_scene_smaller_than_a_tile_is_one_tile() -> None:
    assert tile_starts(10, 32, 8) == [0]
    assert tile_starts(32, 32, 8) == [0]


@pytest.mark.parametrize(("tile", "overlap"), [(8, 8), (8, 9), (0, 0), (8, -1)])
def test_tile_starts_rejects_bad_overlap(tile: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        tile_starts(100, tile, overlap)


@pytest.mark.parametrize("overlap", [1, 2, 5, 8, 16, 33])
def test_neighbours_overlapping_by_overlap_sum_to_one(overlap: int) -> None:
    length = 2 * overlap + 7
    left = taper_1d(length, overlap, taper_start=False, taper_end=True)
    right = taper_1d(length, overlap, taper_start=True, taper_end=False)
    total = left[length - overlap :] + right[:overlap]
    np.testing.assert_allclose(total, 1.0, atol=2 * GUARD_WEIGHT)


def test_weights_are_positive_taper_and_keep_a_guard_band() -> None:
    w = taper_1d(64, 16, taper_start=True, taper_end=True)
    assert (w > 0).all()
    np.testing.assert_array_equal(w[:4], GUARD_WEIGHT)  # guard = overlap // 4
    np.testing.assert_array_equal(w[-4:], GUARD_WEIGHT)
    np.testing.assert_array_equal(w[12:-12], 1.0)
    assert (np.diff(w[:12]) >= 0).all() and (np.diff(w[-12:]) <= 0).all()
    np.testing.assert_array_equal(taper_1d(64, 16, taper_start=False, taper_end=False), 1.0)


def test_tile_weights_are_separable_and_only_taper_interior_sides() -> None:
    w = tile_weights(40, 48, 8, top=True, bottom=False, left=False, right=True)
    rows = taper_1d(40, 8, taper_start=True, taper_end=False)
    cols = taper_1d(48, 8, taper_start=False, taper_end=True)
    np.testing.assert_array_equal(w, np.outer(rows, cols))
    assert w[-1, 0] == 1.0 and w[0, -1] < 1e-9


def test_taper_rejects_overlap_wider_than_half_the_tile() -> None:
    with pytest.raises(ValueError):
        taper_1d(10, 6, taper_start=True, taper_end=False)
