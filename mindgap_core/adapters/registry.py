"""Adapter kinds by name (a plain dict)."""

from __future__ import annotations

from mindgap_core.adapters.base import LRAdapter
from mindgap_core.adapters.harmoniser import Harmoniser
from mindgap_core.adapters.learned import LearnedAdapter

ADAPTERS: dict[str, type[LRAdapter]] = {"harmoniser": Harmoniser, "learned": LearnedAdapter}
