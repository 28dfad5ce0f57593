"""Which spatial block each test tile belongs to: the independent units of every CI.

Result rows carry ``tile_id`` only; the block of a tile is in the manifest (column ``block_id``, see
:mod:`mindgap_core.data.splits`). For a results store it is found through each run's record
(``runs/<run_id>.json`` → ``extra.spec``, the experiment YAML → its test domains' manifests), the same
route :func:`mindgap_core.analysis.training_logs.spec_path` takes, so stores written before this
module existed stay readable. A manifest (or a ``{tile_id: block_id}`` mapping) can also be given
explicitly. No torch import: dashboard-safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mindgap_core.analysis.inference import Clusters
from mindgap_core.analysis.training_logs import spec_path
from mindgap_core.errors import InputError


@dataclass(frozen=True)
class BlockMap:
    """``tile_id -> block_id`` and where it came from (empty: tiles are their own units)."""

    blocks: Mapping[str, str] = field(default_factory=dict)
    source: str = "none"

    def __bool__(self) -> bool:
        return bool(self.blocks)

    def clusters(self, tile_ids: Sequence[str]) -> Clusters:
        """The units of ``tile_ids``: their blocks, or the tiles themselves when the map is empty.

        Raises :class:`InputError` naming the tiles the (non-empty) map does not know.
        """
        if not self.blocks:
            return Clusters.from_labels(None, len(tile_ids))
        missing = [t for t in tile_ids if t not in self.blocks]
        if missing:
            more = " …" if len(missing) > 5 else ""
            raise InputError(self.source, f"no block for tiles {missing[:5]}{more}")
        return Clusters.from_labels([self.blocks[t] for t in tile_ids], len(tile_ids))

    def unit_ids(self, tile_ids: Sequence[str]) -> list[str]:
        """The distinct unit ids of ``tile_ids`` (block ids, or the tile ids themselves), sorted."""
        return sorted({self.blocks[t] for t in tile_ids} if self.blocks else set(map(str, tile_ids)))


def manifest_blocks(paths: Sequence[str | Path]) -> BlockMap:
    """The block map of one or more manifests; a tile with two different blocks is an error."""
    from mindgap_core.data.manifest import read_manifest

    frames = []
    for path in paths:
        table = read_manifest(path)[["tile_id", "block_id"]]
        frames.append(table[table["block_id"].astype(str) != ""])
    if not frames:
        return BlockMap()
    pairs = pd.concat(frames, ignore_index=True).drop_duplicates()
    conflict = pairs[pairs["tile_id"].duplicated(keep=False)]
    if not conflict.empty:
        tile = conflict["tile_id"].iloc[0]
        found = sorted(conflict.loc[conflict["tile_id"] == tile, "block_id"])
        raise InputError(paths[0], f"tile {tile!r} belongs to blocks {found}")
    return BlockMap(dict(zip(pairs["tile_id"].astype(str), pairs["block_id"].astype(str), strict=True)),
                    " + ".join(str(p) for p in paths))


def run_manifests(store_root: str | Path, run_id: str) -> list[Path]:
    """The manifests of a run's test domains (via its experiment YAML); [] when the YAML is not found."""
    spec = spec_path(store_root, run_id)
    if spec is None:
        return []
    try:
        raw = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise InputError(spec, "not valid YAML") from None
    found = []
    for entry in raw.get("test_domains", []) or []:
        if isinstance(entry, dict) and entry.get("manifest"):
            path = (spec.parent / str(entry["manifest"])).resolve()
            if path.is_dir():
                path = path / "manifest.parquet"
            if path.is_file() and path not in found:
                found.append(path)
    return found


def store_blocks(store_root: str | Path) -> BlockMap:
    """The block map of every run recorded in a results store (empty when no manifest is found)."""
    runs = Path(store_root) / "runs"
    if not runs.is_dir():
        return BlockMap()
    manifests: list[Path] = []
    for record in sorted(runs.glob("[!.]*.json")):
        manifests += [m for m in run_manifests(store_root, record.stem) if m not in manifests]
    return manifest_blocks(manifests)


def block_map(data: Any, blocks: BlockMap | Mapping[str, str] | str | Path | None = None) -> BlockMap:
    """The block map for analysing ``data``.

    ``blocks``: a :class:`BlockMap`, a ``{tile_id: block_id}`` mapping, or a manifest path; None finds it
    from ``data`` when ``data`` is a results store (folder or :class:`ResultsStore`), else no map.
    """
    from mindgap_core.store.results import ResultsStore

    if isinstance(blocks, BlockMap):
        return blocks
    if isinstance(blocks, str | Path):
        return manifest_blocks([blocks])
    if blocks is not None:
        return BlockMap({str(k): str(v) for k, v in dict(blocks).items()}, "given mapping")
    if isinstance(data, ResultsStore):
        return store_blocks(data.root)
    if isinstance(data, str | Path) and Path(data).is_dir():
        return store_blocks(data)
    return BlockMap()

