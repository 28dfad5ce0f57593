"""In-memory tiles, dihedral augmentation and step-seeded batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mindgap_core.data.manifest import read_manifest
from mindgap_core.errors import InputError
from mindgap_core.train.data import PairDataset, SeededBatches, augment_pair, load_pair_tiles, tile_statistics
from mindgap_core.train.regimes import select_training_rows


def test_load_tiles_and_statistics(tiny_manifest: Path) -> None:
    rows = select_training_rows(read_manifest(tiny_manifest), "synthetic", source="m").rows
    tiles = load_pair_tiles(tiny_manifest, rows)
    assert tiles.lr.shape == (6, 4, 8, 8) and tiles.hr.shape == (6, 4, 16, 16) and tiles.scale == 2
    assert tiles.lr.dtype == torch.float32
    # the synthetic LR is the area-downsampled HR
    assert torch.allclose(tiles.lr, F.avg_pool2d(tiles.hr, 2), atol=1e-6)
    stats = tile_statistics(tiles)
    assert np.allclose(stats["band_mean"], tiles.hr.mean(dim=(0, 2, 3)).numpy(), atol=1e-6)
    assert all(s > 0 for s in stats["band_std"] + stats["residual_std"])


def test_wrong_band_count_names_the_tile(three_band_manifest: Path) -> None:
    rows = read_manifest(three_band_manifest)
    with pytest.raises(InputError, match=r"r0c0.tif: has 3 bands; MindGap models take 4"):
        load_pair_tiles(three_band_manifest, rows.iloc[:1])


def test_augmentation_commutes_with_downsampling() -> None:
    hr = torch.rand(4, 8, 8)
    lr = F.avg_pool2d(hr[None], 2)[0]
    seen = set()
    for code in range(8):
        a_lr, a_hr = augment_pair(lr, hr, code)
        assert torch.allclose(F.avg_pool2d(a_hr[None], 2)[0], a_lr, atol=1e-6)
        seen.add(a_hr.numpy().tobytes())
    assert len(seen) == 8  # the eight dihedral transforms are distinct
    ds = PairDataset(type("T", (), {"lr": lr[None], "hr": hr[None], "__len__": lambda s: 1})(), augment=False)
    assert torch.equal(ds[0][1], hr)


def test_batches_are_a_pure_function_of_seed_and_step() -> None:
    a = SeededBatches(10, 4, seed=3)
    b = SeededBatches(10, 4, seed=3)
    for step in (0, 7, 2, 7):
        ia, ca = a.indices(step)
        ib, cb = b.indices(step)
        assert np.array_equal(ia, ib) and np.array_equal(ca, cb)
    # one epoch of 10 items in batches of 4: steps 0, 1 and the first half of 2 cover every item once
    first = np.concatenate([a.indices(s)[0] for s in range(2)] + [a.indices(2)[0][:2]])
    assert sorted(first) == list(range(10))
    assert not np.array_equal(SeededBatches(10, 4, seed=4).indices(0)[0], a.indices(0)[0])
    # two ranks split the global batch
    r0 = SeededBatches(10, 2, seed=3, rank=0, world_size=2).indices(0)[0]
    r1 = SeededBatches(10, 2, seed=3, rank=1, world_size=2).indices(0)[0]
    assert np.array_equal(np.concatenate([r0, r1]), a.indices(0)[0])
    weighted = SeededBatches(4, 1000, seed=0, weights=np.array([0.7, 0.1, 0.1, 0.1]))
    idx, _ = weighted.indices(0)
    assert abs(np.mean(idx == 0) - 0.7) < 0.05
