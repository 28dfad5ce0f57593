"""Diversity scaling (docs/science.md, "Diversity scaling"): does training on more distinct regions help?

Two kinds of series, same steps and seed for every run:

* :func:`run_scaling_series` (``mindgap train --blocks-series``): run ``K`` trains on every tile of the
  first ``K`` blocks (natural ``block_id`` order), ``<out>/blocks-KKK``. More blocks also means more
  tiles here, so this series confounds diversity with data size.
* :func:`run_fixed_size_series`: the two factors separated (:func:`fixed_size_design`). The *diversity*
  arm varies the number of blocks K at a fixed number of training tiles N (N/K tiles from each block);
  the *size* arm (the control) varies N at a fixed K. Run ``(K, m)`` trains on m tiles of each of the
  first K blocks, ``<out>/blocks-KKK-tiles-NNN``, through a sub-manifest of exactly those tiles
  (``<out>/manifests/``; the trainer's own selection then keeps all of them). Which m tiles of a block:
  a permutation of the block's tile ids seeded by the series seed and the block id, its first m, so
  smaller selections are nested in larger ones.

A ``scaling.json`` in ``<out>`` lists the runs when a series is done. The analysis
(:mod:`mindgap_core.analysis.scaling`) reads K from ``training.json`` ``blocks`` (the ``train_blocks``
column of the results) and N from ``n_train_pairs``.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from mindgap_core.errors import ConfigError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.train.trainer import TrainOptions, TrainResult, train
from mindgap_core.types import ProgressFn, no_progress

SCALING_JSON = "scaling.json"


def scaling_counts(n_blocks: int) -> list[int]:
    """1, 2, 4, ... up to ``n_blocks``, plus ``n_blocks`` itself (all the data) when not a power of 2."""
    if n_blocks < 1:
        raise ConfigError("diversity scaling needs at least one training block")
    counts = []
    k = 1
    while k <= n_blocks:
        counts.append(k)
        k *= 2
    if counts[-1] != n_blocks:
        counts.append(n_blocks)
    return counts


def _selection(opts: TrainOptions):
    from mindgap_core.data.manifest import read_manifest
    from mindgap_core.train.regimes import select_training_rows

    return select_training_rows(
        read_manifest(opts.manifest), opts.regime, source=opts.manifest, mix_ratio=opts.mix_ratio,
        cross_domain=opts.cross_domain,
    )


def available_blocks(opts: TrainOptions) -> tuple[str, ...]:
    """The train blocks that ``opts``'s regime selects from its manifest."""
    return _selection(opts).blocks


def run_dir(out: Path, blocks: int, tiles: int | None = None) -> Path:
    """Output folder of the run on ``blocks`` blocks (and ``tiles`` training tiles in a fixed-size series)."""
    return Path(out) / (f"blocks-{blocks:03d}" + (f"-tiles-{tiles:03d}" if tiles is not None else ""))


def _write_summary(opts: TrainOptions, runs: list[dict]) -> None:
    summary = {"method": opts.method, "regime": opts.regime, "steps": opts.steps, "seed": opts.seed,
               "runs": runs}
    with atomic_path(Path(opts.out) / SCALING_JSON) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")


def run_scaling_series(
    opts: TrainOptions, counts: Sequence[int] | None = None, on_progress: ProgressFn = no_progress,
) -> list[TrainResult]:
    """Train ``opts`` once per block count (default :func:`scaling_counts`), same steps and seed."""
    if opts.blocks is not None:
        raise ConfigError("a scaling series chooses the block counts itself; drop --blocks")
    counts = list(counts) if counts is not None else scaling_counts(len(available_blocks(opts)))
    results = [train(replace(opts, blocks=k, out=run_dir(opts.out, k)), on_progress=on_progress)
               for k in counts]
    _write_summary(opts, [{"blocks": k, "out": str(r.out), "final_loss": r.final_loss, "wall_s": r.wall_s}
                          for k, r in zip(counts, results, strict=True)])
    return results


@dataclass(frozen=True)
class FixedSizeRun:
    """One run of a fixed-size series: m tiles from each of the first K blocks, and its arms."""

    blocks: int
    tiles_per_block: int
    arms: tuple[str, ...]  # "diversity" (N fixed, K varies) and/or "size" (K fixed, N varies)

    @property
    def tiles(self) -> int:
        return self.blocks * self.tiles_per_block


def fixed_size_design(n_blocks: int, tiles_per_block: int) -> tuple[FixedSizeRun, ...]:
    """The runs that separate diversity from data size, given ``n_blocks`` train blocks holding at least
    ``tiles_per_block`` tiles each.

    Diversity arm: N = T tiles in total (T = the largest power of 2 ≤ ``tiles_per_block``), spread over
    K = 1, 2, 4, … ≤ min(``n_blocks``, T) blocks (T/K tiles from each). Size arm (control): the largest K
    of the diversity arm, with 1, 2, 4, … ≤ T tiles from each block. The run shared by both arms is
    trained once. E.g. 7 blocks of 4 tiles: (K, N) = (1, 4), (2, 4), (4, 4) and (4, 8), (4, 16).
    """
    if n_blocks < 2 or tiles_per_block < 2:
        raise ConfigError(f"a fixed-size series needs >= 2 train blocks of >= 2 tiles "
                          f"(got {n_blocks} blocks of >= {tiles_per_block} tiles)")
    total = 1 << (int(tiles_per_block).bit_length() - 1)
    ks = [k for k in scaling_counts(min(n_blocks, total)) if total % k == 0]
    k_max = ks[-1]
    arms: dict[tuple[int, int], set[str]] = {}
    for k in ks:
        arms.setdefault((k, total // k), set()).add("diversity")
    m = 1
    while m <= total:
        arms.setdefault((k_max, m), set()).add("size")
        m *= 2
    return tuple(FixedSizeRun(k, m, tuple(sorted(a))) for (k, m), a in sorted(arms.items()))


def block_tiles(rows: pd.DataFrame, seed: int) -> dict[str, list[str]]:
    """block id -> its tile ids in the series order (a permutation seeded by ``seed`` and the block id)."""
    order = {}
    for block, part in rows.groupby(rows["block_id"].astype(str), sort=True):
        tiles = sorted(set(part["tile_id"].astype(str)))
        rng = np.random.default_rng([int(seed), zlib.crc32(block.encode("utf-8"))])
        order[block] = [tiles[i] for i in rng.permutation(len(tiles))]
    return order


def write_subset_manifest(opts: TrainOptions, run: FixedSizeRun, dest: Path) -> Path:
    """A manifest of the train rows of ``run``'s tiles (every domain of each chosen tile), paths rebased
    to ``dest``'s folder."""
    from mindgap_core.data.manifest import read_records, resolve, write_manifest
    from mindgap_core.train.regimes import natural_key

    selection = _selection(opts)
    blocks = sorted(selection.blocks, key=natural_key)[: run.blocks]
    order = block_tiles(selection.rows[selection.rows["block_id"].astype(str).isin(blocks)], opts.seed)
    short = [b for b in blocks if len(order[b]) < run.tiles_per_block]
    if short:
        raise ConfigError(f"blocks {short} hold fewer than {run.tiles_per_block} train tiles")
    chosen = {t for b in blocks for t in order[b][: run.tiles_per_block]}
    source = Path(opts.manifest)
    records = [r for r in read_records(source) if r.split == "train" and r.tile_id in chosen]
    folder = dest.parent
    rebased = [replace(r, lr_path=os.path.relpath(resolve(source, r.lr_path), folder),
                       hr_path=os.path.relpath(resolve(source, r.hr_path), folder)) for r in records]
    return write_manifest(rebased, dest)


def run_fixed_size_series(
    opts: TrainOptions, design: Sequence[FixedSizeRun] | None = None, on_progress: ProgressFn = no_progress,
) -> list[TrainResult]:
    """Train every run of ``design`` (default: :func:`fixed_size_design` of the regime's train blocks)."""
    if opts.blocks is not None:
        raise ConfigError("a scaling series chooses the block counts itself; drop --blocks")
    if design is None:
        selection = _selection(opts)
        per_block = selection.rows.groupby(selection.rows["block_id"].astype(str))["tile_id"].nunique()
        design = fixed_size_design(len(per_block), int(per_block.min()))
    results, runs = [], []
    for run in design:
        folder = run_dir(opts.out, run.blocks, run.tiles)
        manifest = write_subset_manifest(opts, run, Path(opts.out) / "manifests" / f"{folder.name}.parquet")
        result = train(replace(opts, manifest=manifest, blocks=run.blocks, out=folder),
                       on_progress=on_progress)
        results.append(result)
        runs.append({"blocks": run.blocks, "tiles_per_block": run.tiles_per_block, "tiles": run.tiles,
                     "arms": list(run.arms), "out": str(result.out), "final_loss": result.final_loss,
                     "wall_s": result.wall_s})
    _write_summary(opts, runs)
    return results


__all__ = ["SCALING_JSON", "FixedSizeRun", "available_blocks", "block_tiles", "fixed_size_design", "run_dir",
           "run_fixed_size_series", "run_scaling_series", "scaling_counts", "write_subset_manifest"]
