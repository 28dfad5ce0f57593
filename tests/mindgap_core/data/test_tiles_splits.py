"""Tile windows and spatial block splits."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from affine import Affine

from mindgap_core.data.splits import assign_block_splits, split_counts
from mindgap_core.data.tiles import check_tiling, make_tiles, tile_grid_shape
from mindgap_core.errors import ConfigError

T = Affine(2.5, 0, 1000.0, 0, -2.5, 5000.0)


def test_tiles_cover_grid_without_overlap():
    valid = np.ones((100, 130), bool)
    tiles = make_tiles(valid, T, 32, 4)
    assert len(tiles) == 3 * 4 == np.prod(tile_grid_shape(valid.shape, 32, 32))
    assert [t.tile_id for t in tiles[:5]] == ["r0c0", "r0c1", "r0c2", "r0c3", "r1c0"]
    t = tiles[5]  # r1c1
    assert (t.row, t.col, t.hr_window, t.lr_window) == (1, 1, (32, 32, 32, 32), (8, 8, 8, 8))
    assert t.bounds == (1000.0 + 32 * 2.5, 5000.0 - 64 * 2.5, 1000.0 + 64 * 2.5, 5000.0 - 32 * 2.5)
    assert all(t.valid_fraction == 1.0 for t in tiles)


def test_tiles_below_min_valid_are_dropped():
    valid = np.ones((64, 96), bool)
    valid[:32, :32] = False  # r0c0 fully invalid
    valid[32:, 32:40] = False  # r1c1: 25 % invalid
    valid[:2, 64:] = False  # r0c2: 1/16 invalid
    ids = {t.tile_id: t.valid_fraction for t in make_tiles(valid, T, 32, 2, min_valid=0.9)}
    assert set(ids) == {"r0c1", "r0c2", "r1c0", "r1c2"}
    assert ids["r0c2"] == pytest.approx(30 / 32)
    assert "r1c1" in {t.tile_id for t in make_tiles(valid, T, 32, 2, min_valid=0.75)}
    assert "r0c0" not in {t.tile_id for t in make_tiles(valid, T, 32, 2, min_valid=0.0)}


def test_tile_must_be_divisible_by_scale():
    with pytest.raises(ConfigError, match=r"tile size 30 is not divisible by scale 4"):
        check_tiling(30, 4)
    with pytest.raises(ConfigError, match="stride"):
        check_tiling(32, 4, stride=6)
    assert check_tiling(32, 4, stride=16) == 16
    with pytest.raises(ConfigError, match="min_valid"):
        make_tiles(np.ones((8, 8), bool), T, 4, 2, min_valid=1.5)


def test_overlapping_stride():
    tiles = make_tiles(np.ones((64, 64), bool), T, 32, 2, stride=16)
    assert len(tiles) == 9 and tiles[1].hr_col_off == 16


def grid(n_rows, n_cols):
    rows, cols = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    return rows.ravel().tolist(), cols.ravel().tolist()


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_blocks_never_straddle_splits(seed):
    rows, cols = grid(8, 10)
    out = assign_block_splits(rows, cols, 2, (0.7, 0.15, 0.15), seed)
    assert len(out) == len(rows)
    splits_of_block = defaultdict(set)
    for (r, c), (block, split) in zip(zip(rows, cols, strict=True), out, strict=True):
        assert block == f"b{r // 2}_{c // 2}"
        splits_of_block[block].add(split)
    assert all(len(s) == 1 for s in splits_of_block.values())
    counts = defaultdict(int)
    for s in splits_of_block.values():
        counts[next(iter(s))] += 1
    assert split_counts(20, (0.7, 0.15, 0.15)) == (14, 3, 3)
    assert (counts["train"], counts["val"], counts["test"]) == (14, 3, 3)


def test_deterministic_and_seed_dependent():
    rows, cols = grid(6, 6)
    a = assign_block_splits(rows, cols, 2, seed=3)
    assert a == assign_block_splits(rows, cols, 2, seed=3)
    assert any(assign_block_splits(rows, cols, 2, seed=s) != a for s in range(1, 5))


@pytest.mark.parametrize("n", [3, 4, 5, 9])
def test_every_split_non_empty_from_three_blocks(n):
    rows, cols = [0] * n, list(range(n))
    for seed in range(5):
        assert {s for _, s in assign_block_splits(rows, cols, 1, seed=seed)} == {"train", "val", "test"}
    assert sum(split_counts(n, (0.7, 0.15, 0.15))) == n


def test_fewer_blocks_and_zero_fraction():
    assert {s for _, s in assign_block_splits([0, 0], [0, 1], 1)} <= {"train", "val", "test"}
    assert split_counts(1, (0.7, 0.15, 0.15)) == (1, 0, 0)
    assert split_counts(5, (0.8, 0.2, 0.0))[2] == 0


def test_bad_split_settings():
    with pytest.raises(ConfigError, match="sum to 1"):
        assign_block_splits([0], [0], 1, (0.5, 0.2, 0.2))
    with pytest.raises(ConfigError, match="three"):
        assign_block_splits([0], [0], 1, (0.5, 0.5))
    with pytest.raises(ConfigError, match="block size"):
        assign_block_splits([0], [0], 0)


@pytest.mark.parametrize("shape", [(2, 1), (1, 2), (1, 3)])
def test_rectangular_blocks(shape):
    rows, cols = grid(6, 8)
    out = assign_block_splits(rows, cols, shape, (0.6, 0.15, 0.25), seed=0)
    bh, bw = shape
    for (r, c), (block, _) in zip(zip(rows, cols, strict=True), out, strict=True):
        assert block == f"b{r // bh}_{c // bw}"
    by_block = defaultdict(set)
    for block, split in out:
        by_block[block].add(split)
    assert all(len(s) == 1 for s in by_block.values())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_separated_test_blocks_never_touch(seed):
    rows, cols = grid(6, 8)
    out = assign_block_splits(rows, cols, (2, 1), (0.6, 0.15, 0.25), seed=seed, separate=("test",))
    test_tiles = {(r, c) for (r, c), (_, s) in zip(zip(rows, cols, strict=True), out, strict=True)
                  if s == "test"}
    blocks = defaultdict(set)
    for (r, c), (b, s) in zip(zip(rows, cols, strict=True), out, strict=True):
        if s == "test":
            blocks[b].add((r, c))
    assert len(blocks) == split_counts(24, (0.6, 0.15, 0.25))[2] == 6
    for b, tiles in blocks.items():  # no tile of one test block touches a tile of another
        others = test_tiles - tiles
        assert not any(abs(r - r2) <= 1 and abs(c - c2) <= 1 for r, c in tiles for r2, c2 in others), b
    assert out == assign_block_splits(rows, cols, (2, 1), (0.6, 0.15, 0.25), seed=seed, separate=("test",))
    # without the constraint the same seed is free to place test blocks side by side
    plain = assign_block_splits(rows, cols, (2, 1), (0.6, 0.15, 0.25), seed=seed)
    assert sorted(s for _, s in plain) == sorted(s for _, s in out)


def test_impossible_separation_and_bad_shapes_are_refused():
    rows, cols = grid(2, 4)
    with pytest.raises(ConfigError, match="cannot place the test blocks apart"):
        assign_block_splits(rows, cols, 1, (0.2, 0.1, 0.7), separate=("test",))
    with pytest.raises(ConfigError, match="unknown split"):
        assign_block_splits(rows, cols, 1, separate=("holdout",))
    for bad in ((0, 1), (1, 2, 3), (True, 1), 1.5):
        with pytest.raises(ConfigError, match="block size"):
            assign_block_splits(rows, cols, bad)
