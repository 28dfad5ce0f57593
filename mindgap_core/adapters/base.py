"""LR -> LR domain adapters: map cross-sensor LR toward the synthetic-LR domain before SR.

The paper behind MindGap recommends decoupling super-resolution from domain adaptation: a model
trained on synthetic pairs, preceded by a stage that makes real LR look like synthetic LR. An adapter
takes LR reflectance ``(N, C, h, w)`` and returns the same shape. On disk an adapter is a folder::

    <folder>/adapter_index.json   kind, bands, options (written last: no index = not an adapter)
    <folder>/...                  the kind's own files (JSON statistics, or a diffusers-style network)
    <folder>/training.json        how it was fitted: data, steps, wall time, device

Settings go through diffusers' ``ConfigMixin`` as for SR models (:mod:`mindgap_core.models.base`):
the keywords of a kind's ``@register_to_config`` ``__init__`` are its config, written to
``adapter_index.json`` (bands at the top level, the rest under ``options``) and read back into
``__init__``; the keywords named in :attr:`LRAdapter.file_parts` are stored in the kind's own
files instead. Loading (kind allow-list first) is :func:`mindgap_core.adapters.registry.load_adapter`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import torch
from diffusers.configuration_utils import ConfigMixin

from mindgap_core.data.manifest import read_manifest
from mindgap_core.errors import InputError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.types import CANONICAL_BANDS

ADAPTER_INDEX = "adapter_index.json"


class LRAdapter(ConfigMixin, ABC):
    """Maps LR reflectance of one domain toward another, at LR size (module docstring)."""

    config_name = ADAPTER_INDEX
    kind: ClassVar[str]
    #: ``__init__`` keywords stored in the kind's own files (:meth:`_save_files`, :meth:`_load_files`)
    file_parts: ClassVar[tuple[str, ...]] = ()
    #: whether :meth:`adapt` uses a co-registration reference (the HR tile: oracle geometry)
    uses_reference: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.ignore_for_config = list(cls.file_parts)

    def __init__(self, *, band_names: Sequence[str] = CANONICAL_BANDS) -> None:
        self.band_names = tuple(band_names)
        self.register_to_config(band_names=list(self.band_names))

    @abstractmethod
    def adapt(self, lr: torch.Tensor, reference_hr: torch.Tensor | None = None) -> torch.Tensor:
        """Adapted LR reflectance, same shape and device as ``lr``."""

    @abstractmethod
    def _save_files(self, folder: Path) -> None:
        """Write the kind's own files (the :attr:`file_parts`) into ``folder``."""

    @classmethod
    @abstractmethod
    def _load_files(cls, folder: Path) -> dict[str, Any]:
        """The :attr:`file_parts` read back from ``folder`` (InputError naming a bad file)."""

    def options(self) -> dict[str, Any]:
        """This kind's own settings: the config without the bands (``options`` on disk)."""
        return {k: v for k, v in self.config.items() if not k.startswith("_") and k != "band_names"}

    def to_json_string(self) -> str:
        """``adapter_index.json``: kind, bands and options (overrides ``ConfigMixin.to_json_string``,
        whose flat layout would change the shipped adapters' index)."""
        index = {"kind": self.kind, "bands": self.config["band_names"], "options": self.options()}
        return json.dumps(index, indent=1, sort_keys=True)

    @classmethod
    def from_index(cls, folder: Path, index: Mapping[str, Any]) -> LRAdapter:
        """The adapter an ``adapter_index.json`` describes, with its files read from ``folder``."""
        return cls(**cls._load_files(folder), band_names=index["bands"], **index["options"])

    def to(self, device: str | torch.device) -> LRAdapter:
        """Move to ``device`` (no-op for adapters without tensors)."""
        return self

    def save(self, folder: str | Path) -> Path:
        """Write the adapter into ``folder`` (the index last, atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._save_files(folder)
        with atomic_path(folder / ADAPTER_INDEX) as tmp:
            tmp.write_text(self.to_json_string())
        return folder

    def check_bands(self, lr: torch.Tensor, source: str | Path = "input") -> None:
        if lr.ndim != 4 or lr.shape[1] != len(self.band_names):
            raise InputError(source, f"LR has shape {tuple(lr.shape)}; this {self.kind} adapter takes "
                                     f"(N, {len(self.band_names)}, h, w) ({', '.join(self.band_names)})")


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
        domains = sorted(set(table["domain"]))
        raise InputError(manifest, f"no {split!r} rows of domain {domain!r} (domains: {domains})")
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
