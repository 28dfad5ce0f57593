"""Which sidebar choices have data: the comparable combinations of a results store.

A combination (run, metric, method, regime, compared domain, band, sample aggregate) is offered only
when the store holds rows for it on the source domain AND on the compared domain, so every page's
gap has two sides. The sidebar (``mindgap_ui/state.py``) narrows the choices in that order: each
list holds the values that have data together with the choices made above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from mindgap_core.attribution.names import VARIANT_DOMAIN_PREFIX

#: the sidebar's choices, in the order they narrow each other (``target``: the compared domain)
CHOICE_COLUMNS = ("run_id", "metric", "method", "regime", "target", "band", "aggregate")
#: result columns a combination is read from
KEY_COLUMNS = ("run_id", "metric", "method", "regime", "test_domain", "band", "aggregate")
_PAIR_KEYS = ["run_id", "metric", "method", "regime", "band", "aggregate"]


def comparable(keys: pd.DataFrame, source: str) -> pd.DataFrame:
    """Distinct :data:`CHOICE_COLUMNS` rows of ``keys`` (result rows' :data:`KEY_COLUMNS`) that have
    rows on ``source`` and on ``target`` (another test domain, not an attribution variant: those are
    compared on the attribution page, with their roles). Sorted; empty when nothing compares."""
    distinct = keys[list(KEY_COLUMNS)].drop_duplicates()
    source_keys = distinct.loc[distinct["test_domain"] == source, _PAIR_KEYS]
    others = distinct[(distinct["test_domain"] != source)
                      & ~distinct["test_domain"].astype(str).str.startswith(VARIANT_DOMAIN_PREFIX)]
    pairs = others.merge(source_keys, on=_PAIR_KEYS).rename(columns={"test_domain": "target"})
    return pairs[list(CHOICE_COLUMNS)].sort_values(list(CHOICE_COLUMNS)).reset_index(drop=True)


@dataclass(frozen=True)
class Combinations:
    """The combinations the sidebar offers, as plain tuples in :data:`CHOICE_COLUMNS` order (cheap to
    narrow on every script run of every session)."""

    rows: tuple[tuple[str | None, ...], ...]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Combinations:
        columns = frame[list(CHOICE_COLUMNS)].astype(object).where(frame[list(CHOICE_COLUMNS)].notna(), None)
        return cls(tuple(tuple(row) for row in columns.itertuples(index=False, name=None)))

    def options(self, column: str, chosen: Mapping[str, str | None]) -> list[str]:
        """The values of ``column`` that have data together with ``chosen`` (None = any), sorted."""
        at = CHOICE_COLUMNS.index(column)
        wanted = [(CHOICE_COLUMNS.index(c), v) for c, v in chosen.items() if v is not None]
        found = {row[at] for row in self.rows if all(row[i] == v for i, v in wanted)}
        return sorted(v for v in found if v is not None)


def offered(keys: pd.DataFrame, source: str) -> Combinations:
    """What the sidebar offers: the :func:`comparable` combinations, or, when nothing compares (a store
    without the source domain), every combination of the store with no compared domain (None)."""
    pairs = comparable(keys, source)
    if pairs.empty:
        plain = keys[[c for c in KEY_COLUMNS if c != "test_domain"]].drop_duplicates().assign(target=None)
        pairs = plain[list(CHOICE_COLUMNS)]
    return Combinations.from_frame(pairs)
