"""Training data: the manifest's LR/HR tiles held in memory, seeded batches, flips and rotations.

Tiles are small (the demo has a few dozen 64x64 pairs), so every tile is read once
(:func:`load_pair_tiles`) and batches are cut from memory. A batch is a pure function of
``(seed, step, rank)`` (:class:`SeededBatches`), which makes a resumed run draw the same batches as
an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from mindgap_core.data.manifest import resolve
from mindgap_core.errors import InputError
from mindgap_core.types import CANONICAL_BANDS, ProgressFn, no_progress


@dataclass(frozen=True, eq=False)
class PairTiles:
    """LR/HR reflectance tiles, stacked: ``lr`` (N, C, h, w), ``hr`` (N, C, h*scale, w*scale)."""

    lr: torch.Tensor
    hr: torch.Tensor
    pair_ids: tuple[str, ...]
    domains: tuple[str, ...]
    block_ids: tuple[str, ...]
    scale: int
    band_names: tuple[str, ...] = CANONICAL_BANDS

    def __len__(self) -> int:
        return int(self.lr.shape[0])


def _read_tile(path: Path, band_names: Sequence[str]) -> np.ndarray:
    """One tile as float32 (bands, rows, cols); invalid pixels filled with the band's valid mean."""
    from mindgap_core.io import read_raster

    if not path.is_file():
        raise InputError(path, "tile listed in the manifest does not exist")
    raster = read_raster(path, units="reflectance")
    if raster.array.shape[0] != len(band_names):
        raise InputError(
            path,
            f"has {raster.array.shape[0]} bands; MindGap models take {len(band_names)} "
            f"({', '.join(band_names)})",
        )
    names = tuple(n.lower() for n in raster.band_names)
    if all(not n.startswith("b") or not n[1:].isdigit() for n in names) and names != tuple(band_names):
        raise InputError(path, f"bands are {raster.band_names}; expected {tuple(band_names)} in this order")
    array = raster.array.astype(np.float32, copy=True)
    valid = raster.valid & np.isfinite(array).all(axis=0)
    if not valid.all():
        for b in range(array.shape[0]):
            fill = float(array[b][valid].mean()) if valid.any() else 0.0
            array[b][~valid] = fill
    return array


def load_pair_tiles(
    manifest_path: str | Path, rows: pd.DataFrame, band_names: Sequence[str] = CANONICAL_BANDS,
    on_progress: ProgressFn = no_progress,
) -> PairTiles:
    """Read the LR/HR tiles of ``rows`` (manifest rows) into memory; check bands, scale and sizes."""
    if rows.empty:
        raise InputError(manifest_path, "no training pairs selected")
    scales = sorted(set(int(s) for s in rows["scale"]))
    if len(scales) != 1:
        raise InputError(
            manifest_path, f"selected pairs mix scale factors {scales}; train one scale at a time"
        )
    scale = scales[0]
    lrs, hrs = [], []
    for i, row in enumerate(rows.itertuples(index=False), start=1):
        lr_path = resolve(manifest_path, row.lr_path)
        hr_path = resolve(manifest_path, row.hr_path)
        lr = _read_tile(lr_path, band_names)
        hr = _read_tile(hr_path, band_names)
        if hr.shape[1] != lr.shape[1] * scale or hr.shape[2] != lr.shape[2] * scale:
            raise InputError(
                hr_path,
                f"HR tile is {hr.shape[1:]} but the LR tile {lr_path.name} is {lr.shape[1:]} "
                f"at scale {scale}",
            )
        if lrs and (lr.shape != lrs[0].shape or hr.shape != hrs[0].shape):
            raise InputError(
                hr_path, f"tile size {hr.shape[1:]} differs from the first tile's {hrs[0].shape[1:]}"
            )
        lrs.append(lr)
        hrs.append(hr)
        on_progress(i, len(rows))
    return PairTiles(
        lr=torch.from_numpy(np.stack(lrs)), hr=torch.from_numpy(np.stack(hrs)),
        pair_ids=tuple(str(v) for v in rows["pair_id"]), domains=tuple(str(v) for v in rows["domain"]),
        block_ids=tuple(str(v) for v in rows["block_id"]), scale=scale, band_names=tuple(band_names),
    )


def tile_statistics(tiles: PairTiles) -> dict[str, list[float]]:
    """Normalisation statistics of the training tiles.

    ``band_mean``/``band_std``: per band over all HR pixels; ``residual_std``: per band std of the
    normalised residual n(HR) - n(up(LR)) (SRDiff's residual scale).
    """
    from mindgap_core.models.base import upsample

    hr = tiles.hr.double()
    mean = hr.mean(dim=(0, 2, 3))
    std = hr.std(dim=(0, 2, 3)).clamp_min(1e-4)
    up = upsample(tiles.lr.float(), tiles.scale).double()
    view = (1, -1, 1, 1)
    residual = (hr - up) / std.view(view)
    res_std = residual.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return {
        "band_mean": [float(v) for v in mean],
        "band_std": [float(v) for v in std],
        "residual_std": [float(v) for v in res_std],
    }


def augment_pair(lr: torch.Tensor, hr: torch.Tensor, code: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One of the 8 dihedral transforms (code 0..7: rot90 by code % 4, then a flip if code >= 4)."""
    k = code % 4
    lr, hr = torch.rot90(lr, k, dims=(-2, -1)), torch.rot90(hr, k, dims=(-2, -1))
    if code >= 4:
        lr, hr = torch.flip(lr, dims=(-1,)), torch.flip(hr, dims=(-1,))
    return lr, hr


class PairDataset(Dataset):
    """torch Dataset over in-memory tiles; ``__getitem__`` returns (lr, hr), augmented when asked.

    ``augment`` applies a random flip/rot90 drawn from ``rng`` (a numpy Generator, seeded by the
    caller); :meth:`batch` builds a batch for given indices and transform codes.
    """

    def __init__(
        self, tiles: PairTiles, augment: bool = True, rng: np.random.Generator | None = None
    ) -> None:
        self.tiles = tiles
        self.augment = augment
        self.rng = rng or np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr = self.tiles.lr[index], self.tiles.hr[index]
        if self.augment:
            lr, hr = augment_pair(lr, hr, int(self.rng.integers(8)))
        return lr, hr

    def batch(self, indices: Sequence[int], codes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked (lr, hr) for ``indices`` with dihedral transform ``codes`` (all 0: none)."""
        pairs = [
            augment_pair(self.tiles.lr[i], self.tiles.hr[i], int(c))
            for i, c in zip(indices, codes, strict=True)
        ]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


class SeededBatches:
    """Which tiles (and which transforms) make the batch of a given step, as a pure function.

    Without ``weights``: epochs of seeded permutations over all tiles (each tile once per epoch).
    With ``weights`` (sampling probabilities per tile, e.g. the mixed regime): independent draws.
    With several processes each rank takes its own slice of the global batch.
    """

    def __init__(
        self, n_items: int, batch_size: int, seed: int, weights: np.ndarray | None = None,
        augment: bool = True, rank: int = 0, world_size: int = 1,
    ) -> None:
        if n_items < 1 or batch_size < 1:
            raise ValueError("SeededBatches needs at least one item and batch_size >= 1")
        self.n_items = n_items
        self.batch_size = batch_size
        self.seed = seed
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)
        self.augment = augment
        self.rank = rank
        self.world_size = world_size

    def indices(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(tile indices, transform codes) of this rank's part of the batch at ``step``."""
        global_batch = self.batch_size * self.world_size
        rng = np.random.default_rng([self.seed, 1, step])
        if self.weights is not None:
            idx = rng.choice(self.n_items, size=global_batch, p=self.weights)
        else:
            start = step * global_batch
            positions = range(start, start + global_batch)
            idx = np.array([self._perm(pos // self.n_items)[pos % self.n_items] for pos in positions])
        if self.augment:
            codes = rng.integers(0, 8, size=global_batch)
        else:
            codes = np.zeros(global_batch, dtype=np.int64)
        part = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        return idx[part], codes[part]

    def _perm(self, epoch: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_perm_cache", {})
        if epoch not in cache:
            cache.clear()
            cache[epoch] = np.random.default_rng([self.seed, 0, epoch]).permutation(self.n_items)
        return cache[epoch]
