"""Adapter kinds by name (a plain dict, the allow-list), and loading an adapter folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mindgap_core.adapters.base import ADAPTER_INDEX, LRAdapter
from mindgap_core.adapters.harmoniser import Harmoniser
from mindgap_core.adapters.learned import LearnedAdapter
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.models.checkpoint import read_json_object

ADAPTERS: dict[str, type[LRAdapter]] = {"harmoniser": Harmoniser, "learned": LearnedAdapter}


def read_adapter_index(folder: str | Path) -> dict[str, Any]:
    """The adapter's index; one clear error when the folder is not an adapter."""
    folder = Path(folder)
    path = folder / ADAPTER_INDEX
    if not path.is_file():
        raise InputError(
            folder, f"not an adapter folder (no {ADAPTER_INDEX}); fit one with `mindgap adapter`"
        )
    index = read_json_object(path)
    missing = [k for k in ("kind", "bands", "options") if k not in index]
    if missing:
        raise InputError(path, f"not an adapter index: missing keys {missing}")
    return index


def load_adapter(folder: str | Path, device: str = "cpu") -> LRAdapter:
    """Load an adapter folder written by :meth:`LRAdapter.save`: the kind must be in :data:`ADAPTERS`
    before anything else is read."""
    folder = Path(folder)
    index = read_adapter_index(folder)
    cls = ADAPTERS.get(index["kind"]) if isinstance(index["kind"], str) else None
    if cls is None:
        raise InputError(
            folder / ADAPTER_INDEX, f"unknown adapter kind {index['kind']!r}; known: {list(ADAPTERS)}"
        )
    try:
        adapter = cls.from_index(folder, index)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise InputError(folder / ADAPTER_INDEX, f"inconsistent adapter settings ({exc})") from None
    return adapter.to(device)
