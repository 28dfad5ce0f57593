"""LR -> LR domain adapters: map cross-sensor LR toward the synthetic-LR domain before SR.

The paper behind MindGap recommends decoupling super-resolution from domain adaptation: a model
trained on synthetic pairs, preceded by a stage that makes real LR look like synthetic LR. An adapter
takes LR reflectance ``(N, C, h, w)`` and returns the same shape. On disk an adapter is a folder::

    <folder>/adapter_index.json   kind, bands, options (written last: no index = not an adapter)
    <folder>/...                  the kind's own files (JSON statistics, or a diffusers-style network)
    <folder>/training.json        how it was fitted: data, steps, wall time, device
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import torch

from mindgap_core.data.manifest import read_manifest
from mindgap_core.errors import InputError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.types import CANONICAL_BANDS

ADAPTER_INDEX = "adapter_index.json"


class LRAdapter(ABC):
    """Maps LR reflectance of one domain toward another, at LR size."""

    kind: ClassVar[str]
    #: whether :meth:`adapt` uses a co-registration reference (the HR tile: oracle geometry)
    uses_reference: bool = False

    def __init__(self, band_names: tuple[str, ...] = CANONICAL_BANDS) -> None:
        self.band_names = tuple(band_names)

    @abstractmethod
    def adapt(self, lr: torch.Tensor, reference_hr: torch.Tensor | None = None) -> torch.Tensor:
        """Adapted LR reflectance, same shape and device as ``lr``."""

    @abstractmethod
    def options(self) -> dict[str, Any]:
        """JSON-safe settings stored in ``adapter_index.json``."""

    @abstractmethod
    def _save_files(self, folder: Path) -> None:
        """Write the kind's own files into ``folder``."""

    @classmethod
    @abstractmethod
    def _load(cls, folder: Path, index: Mapping[str, Any], device: str) -> LRAdapter:
        """Rebuild from ``folder`` and its index."""

    def to(self, device: str | torch.device) -> LRAdapter:
        """Move to ``device`` (no-op for adapters without tensors)."""
        return self

    def save(self, folder: str | Path) -> Path:
        """Write the adapter into ``folder`` (the index last, atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._save_files(folder)
        index = {"kind": self.kind, "bands": list(self.band_names), "options": self.options()}
        with atomic_path(folder / ADAPTER_INDEX) as tmp:
            tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
        return folder

    def check_bands(self, lr: torch.Tensor, source: str | Path = "input") -> None:
        if lr.ndim != 4 or lr.shape[1] != len(self.band_names):
            raise InputError(source, f"LR has shape {tuple(lr.shape)}; this {self.kind} adapter takes "
                                     f"(N, {len(self.band_names)}, h, w) ({', '.join(self.band_names)})")


def read_adapter_index(folder: str | Path) -> dict[str, Any]:
    """The adapter's index; one clear error when the folder is not an adapter."""
    folder = Path(folder)
    path = folder / ADAPTER_INDEX
    if not path.is_file():
        raise InputError(folder, f"not an adapter folder (no {ADAPTER_INDEX}); fit one with `mindgap adapter`")
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc.msg})") from None
    if not isinstance(index, dict) or "kind" not in index:
        raise InputError(path, "has no 'kind'")
    return index


def load_adapter(folder: str | Path, device: str = "cpu") -> LRAdapter:
    """Load an adapter folder written by :meth:`LRAdapter.save`."""
    from mindgap_core.adapters.registry import ADAPTERS

    folder = Path(folder)
    index = read_adapter_index(folder)
    if index["kind"] not in ADAPTERS:
        raise InputError(folder / ADAPTER_INDEX, f"unknown adapter kind {index['kind']!r}; known: {list(ADAPTERS)}")
    return ADAPTERS[index["kind"]]._load(folder, index, device)


@dataclass(frozen=True, eq=False)
class AdapterPairs:
    """Source-domain LR, target-domain LR and HR of the same tiles (N, C, ...), in tile-id order."""

    source: torch.Tensor
    target: torch.Tensor
    hr: torch.Tensor
    tile_ids: tuple[str, ...]
    scale: int


def _domain_rows(table: pd.DataFrame, domain: str, split: str, manifest: Path) -> pd.DataFrame:
    rows = table[(table["domain"] == domain) & (table["split"] == split)].sort_values("tile_id")
    if rows.empty:
        raise InputError(manifest, f"no {split!r} rows of domain {domain!r} (domains: {sorted(set(table['domain']))})")
    return rows


def load_adapter_pairs(manifest: str | Path, source_domain: str, target_domain: str,
                       split: str = "train") -> AdapterPairs:
    """The tiles present in both domains' ``split``: the adapter learns source LR -> target LR."""
    from mindgap_core.train.data import load_pair_tiles

    manifest = Path(manifest)
    table = read_manifest(manifest)
    src_rows = _domain_rows(table, source_domain, split, manifest)
    tgt_rows = _domain_rows(table, target_domain, split, manifest)
    common = sorted(set(src_rows["tile_id"]) & set(tgt_rows["tile_id"]))
    if not common:
        raise InputError(manifest, f"no tile has both a {source_domain!r} and a {target_domain!r} pair")
    src = load_pair_tiles(manifest, src_rows[src_rows["tile_id"].isin(common)])
    tgt = load_pair_tiles(manifest, tgt_rows[tgt_rows["tile_id"].isin(common)])
    if src.lr.shape != tgt.lr.shape:
        raise InputError(manifest, f"{source_domain} LR tiles {tuple(src.lr.shape)} and {target_domain} "
                                   f"LR tiles {tuple(tgt.lr.shape)} differ in shape")
    return AdapterPairs(src.lr.float(), tgt.lr.float(), src.hr.float(), tuple(common), src.scale)
