"""Cached loaders over a results store (DuckDB queries in the core, cached here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from mindgap_core.store.results import ResultsStore


@dataclass(frozen=True)
class StoreCatalog:
    """What a results store holds (choices for the sidebar)."""

    runs: list[str]
    metrics: list[str]
    methods: list[str]
    regimes: list[str]
    domains: list[str]
    fingerprint: str


def _distinct(con, column: str) -> list[str]:
    return [r[0] for r in con.execute(f'SELECT DISTINCT "{column}" FROM results ORDER BY 1').fetchall()]


@st.cache_data(show_spinner=False, ttl=30)
def catalog(root: str) -> StoreCatalog | None:
    """Runs, metrics, methods, regimes and test domains of the store at ``root`` (None if empty)."""
    if not (Path(root) / "shards").is_dir():
        return None
    store = ResultsStore(root)
    con = store.connect()
    try:
        if con.execute("SELECT count(*) FROM results").fetchone()[0] == 0:
            return None
        return StoreCatalog(_distinct(con, "run_id"), _distinct(con, "metric"), _distinct(con, "method"),
                            _distinct(con, "regime"), _distinct(con, "test_domain"), store.fingerprint())
    finally:
        con.close()


@st.cache_data(show_spinner="Querying results…")
def rows(root: str, fingerprint: str, filters: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    """Result rows matching ``filters`` (``fingerprint`` makes the cache follow new shards)."""
    return ResultsStore(root).rows(dict(filters))
