"""Cached loaders over a results store (DuckDB queries and statistics in the core, cached here).

Every query function takes the store ``fingerprint`` so its cache follows new shards, and filters as a
hashable tuple of ``(column, value)`` pairs (see :func:`filter_key`).
"""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mindgap_core.analysis import training_logs
from mindgap_core.analysis.blocks import BlockMap, store_blocks
from mindgap_core.analysis.gap import gap_table, mean_table, train_test_matrix
from mindgap_core.analysis.scaling import scaling_curve, scaling_design, scaling_trend
from mindgap_core.errors import MindGapError
from mindgap_core.paths import DEMO_RESULTS, DEMO_ROOT, confine, data_roots
from mindgap_core.store import views
from mindgap_core.store.results import ResultsStore
from mindgap_core.viz import mosaic as mosaic_mod
from mindgap_ui import choices as choices_mod

#: grouping of the overview's gap table (the train domain labels the findings)
GAP_GROUP = ("method", "regime", "train_domain", "metric")
N_BOOT = 2000
SEED = 0
FINGERPRINT_TTL_S = 5
Filters = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class StoreCatalog:
    """What a results store holds (choices for the sidebar)."""

    runs: list[str]
    metrics: list[str]
    methods: list[str]
    regimes: list[str]
    domains: list[str]
    fingerprint: str
    bands: list[str] = field(default_factory=list)
    aggregates: list[str] = field(default_factory=list)
    train_domains: list[str] = field(default_factory=list)

    @property
    def simulated(self) -> bool:
        """Whether any test or train domain of the store is simulated (the banner must show)."""
        return any("simulated" in d for d in [*self.domains, *self.train_domains])


#: the catalog's columns, in StoreCatalog order (fingerprint aside)
_CATALOG_COLUMNS = ("run_id", "metric", "method", "regime", "test_domain", "band", "aggregate",
                    "train_domain")


def filter_key(filters: Mapping[str, Any]) -> Filters:
    """A hashable, order-independent form of ``{column: value | [values] | None}``."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in filters.items()))


def _filters(key: Filters) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in key}


@st.cache_data(show_spinner=False, ttl=30)
def catalog(root: str) -> StoreCatalog | None:
    """Runs, metrics, methods, regimes, test domains, bands of the store at ``root`` (None if empty)."""
    if not (Path(root) / "shards").is_dir():
        return None
    store = ResultsStore(root)
    with views.connected(store) as con:
        found = views.catalog_values(con, _CATALOG_COLUMNS)
    if found is None:
        return None
    return StoreCatalog(found["run_id"], found["metric"], found["method"], found["regime"],
                        found["test_domain"],
                        store.fingerprint(), found["band"], found["aggregate"], found["train_domain"])


@st.cache_resource(show_spinner="Loading results…", max_entries=4)
def _snapshot(root: str, fingerprint: str) -> duckdb.DuckDBPyConnection:
    """The store's rows copied once into an in-memory DuckDB database that every session queries
    (through its own cursor): a query then reads memory, not the Parquet shards. A new fingerprint
    makes a new snapshot; the oldest is dropped."""
    return ResultsStore(root).connect(materialize=True)


atexit.register(_snapshot.clear)  # DuckDB objects alive at interpreter exit are reported as leaks


@st.cache_resource(show_spinner=False, max_entries=4)
def blocks(root: str, fingerprint: str) -> BlockMap:
    """The spatial blocks of the store's tiles (from its runs' manifests): every CI and test of the
    dashboard resamples these units, never tiles (a connection alone cannot tell them)."""
    return store_blocks(root)


@st.cache_data(show_spinner=False, max_entries=4)
def training_pairs(root: str, fingerprint: str) -> dict[str, int]:
    """model -> number of training pairs, from the training.json of the store's models: what tells a
    fixed-size diversity series from a confounded one (a connection alone cannot tell)."""
    return scaling_design(root)


@contextlib.contextmanager
def connection(root: str, fingerprint: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on the shared snapshot of the store (one per query: DuckDB cursors are per thread)."""
    cursor = _snapshot(root, fingerprint).cursor()
    try:
        yield cursor
    finally:
        cursor.close()


@st.cache_resource(show_spinner=False, max_entries=16)
def choices(root: str, fingerprint: str, source: str) -> choices_mod.Combinations:
    """The combinations the sidebar offers (:func:`mindgap_ui.choices.offered`; immutable, so one shared
    object serves every session)."""
    with connection(root, fingerprint) as con:
        keys = views.select_rows(con, columns=list(choices_mod.KEY_COLUMNS))
    return choices_mod.offered(keys, source)


@st.cache_data(show_spinner=False, ttl=FINGERPRINT_TTL_S)
def fingerprint(root: str) -> str:
    """The store's fingerprint, read at most once per :data:`FINGERPRINT_TTL_S` seconds for all
    sessions (a directory listing, and opening the store cleans its temporary files): new shards show
    within that delay."""
    return ResultsStore(root).fingerprint()


@st.cache_data(show_spinner="Querying results…")
def rows(root: str, fingerprint: str, filters: Filters) -> pd.DataFrame:
    """Result rows matching ``filters`` (``fingerprint`` makes the cache follow new shards)."""
    with connection(root, fingerprint) as con:
        return views.select_rows(con, filters=_filters(filters))


@st.cache_data(show_spinner=False)
def overview(root: str, fingerprint: str, filters: Filters, source: str, target: str) -> pd.DataFrame:
    """Gap per method × regime × train domain × metric without CIs (one DuckDB query, all metrics)."""
    with connection(root, fingerprint) as con:
        return views.gap_overview(con, source_domain=source, target_domain=target, group=GAP_GROUP,
                                  filters=_filters(filters))


@st.cache_data(show_spinner="Bootstrapping confidence intervals…")
def gaps(root: str, fingerprint: str, metric: str, filters: Filters, source: str, target: str,
         group: tuple[str, ...] = GAP_GROUP) -> pd.DataFrame:
    """:func:`~mindgap_core.analysis.gap.gap_table` of one metric (cluster-robust CIs over spatial
    blocks, Holm-adjusted p)."""
    with connection(root, fingerprint) as con:
        return gap_table(con, metric=metric, group=group, source_domain=source, target_domain=target,
                         filters=_filters(filters), blocks=blocks(root, fingerprint), n_boot=N_BOOT,
                         seed=SEED)


@dataclass(frozen=True)
class GapView:
    """The overview's gap table of one metric, its method × regime figure and its findings."""

    table: pd.DataFrame
    figure: go.Figure
    findings: tuple[str, ...]


@st.cache_resource(show_spinner="Bootstrapping confidence intervals…", max_entries=256)
def gap_view(root: str, fingerprint: str, metric: str, filters: Filters, source: str, target: str,
             select: Filters = (), label: str | None = None) -> GapView:
    """:func:`gaps` of ``metric`` under ``filters``, narrowed to ``select`` (e.g. the sidebar's method and
    regime) afterwards, with its figure (titled with ``label``, default: the metric's name) and findings:
    one shared object for every session (pages must not modify it). Narrowing after the bootstrap gives
    the same rows as a table computed for the selection alone: each group's resamples depend on its own
    tiles only (:func:`mindgap_core.analysis.bootstrap.tile_set_rng`); tests/app/test_overview_page.py
    checks it."""
    from mindgap_core.analysis.headlines import headline_findings
    from mindgap_core.viz.figures import gap_matrix_figure
    from mindgap_ui.widgets import metric_label, metric_unit

    table = gaps(root, fingerprint, metric, filters, source, target)
    for column, value in select:
        table = table[table[column] == value]
    table = table.reset_index(drop=True)
    unit = metric_unit(metric)
    return GapView(table, gap_matrix_figure(table, metric_label=label or metric_label(metric), unit=unit),
                   tuple(headline_findings(table, metric_label=metric_label(metric), unit=unit)))


@st.cache_resource(show_spinner=False, max_entries=256)
def glance(root: str, fingerprint: str, filters: Filters, source: str, target: str, select: Filters = ()
           ) -> pd.DataFrame:
    """Relative gap (%) per model (method / regime) × metric of :func:`overview`, narrowed to ``select``
    (shared, read-only: one row per gap key, so narrowing afterwards equals filtering first)."""
    table = overview(root, fingerprint, filters, source, target)
    for column, value in select:
        table = table[table[column] == value]
    if table.empty:
        return pd.DataFrame()
    table = table.assign(model=table["method"].astype(str) + " / " + table["regime"].astype(str))
    return table.pivot_table(index="model", columns="metric", values="rel_gap_pct", aggfunc="mean").round(2)


@dataclass(frozen=True)
class MatrixView:
    """The mean score per training domain × test domain of one metric, and its figure."""

    table: pd.DataFrame
    figure: go.Figure


@st.cache_resource(show_spinner=False, max_entries=256)
def train_test_view(root: str, fingerprint: str, metric: str, filters: Filters, label: str) -> MatrixView:
    """:func:`train_test` with its figure (titled with ``label``); shared, read-only."""
    from mindgap_core.viz.figures import train_test_figure
    from mindgap_ui.widgets import metric_unit

    table = train_test(root, fingerprint, metric, filters)
    return MatrixView(table, train_test_figure(table, metric_label=label, unit=metric_unit(metric)))


@st.cache_data(show_spinner=False)
def train_test(root: str, fingerprint: str, metric: str, filters: Filters) -> pd.DataFrame:
    """:func:`~mindgap_core.analysis.gap.train_test_matrix` of one metric, models pooled per train domain."""
    with connection(root, fingerprint) as con:
        return train_test_matrix(con, metric=metric, group=("metric",), filters=_filters(filters),
                                 blocks=blocks(root, fingerprint), n_boot=N_BOOT, seed=SEED)


@st.cache_data(show_spinner=False)
def tile_scores(root: str, fingerprint: str, filters: Filters, keys: tuple[str, ...]) -> pd.DataFrame:
    """Per-tile mean score per ``keys`` (repeated seeds/runs averaged), as the gap statistics see them."""
    with connection(root, fingerprint) as con:
        return views.tile_means(con, keys=list(keys), filters=_filters(filters))


@st.cache_data(show_spinner=False)
def paired(root: str, fingerprint: str, filters: Filters, source: str, target: str,
           group: tuple[str, ...] = ("model", "metric")) -> pd.DataFrame:
    """Per-tile scores on both domains (``tile_id``, ``source``, ``target``) of tiles scored in both."""
    with connection(root, fingerprint) as con:
        frame = views.paired_tiles(con, source_domain=source, target_domain=target, group=group,
                                   filters=_filters(filters))
    return frame.sort_values("tile_id").reset_index(drop=True)


@st.cache_data(show_spinner=False)
def domain_means(root: str, fingerprint: str, filters: Filters, keys: tuple[str, ...] = ("test_domain",)
                 ) -> pd.DataFrame:
    """Mean over tiles per ``keys`` with a 95 % CI over spatial blocks (``analysis.gap.mean_table``)."""
    tiles = tile_scores(root, fingerprint, filters, keys)
    return mean_table(tiles, list(keys), blocks=blocks(root, fingerprint), n_boot=N_BOOT, seed=SEED, ci=0.95)


@st.cache_data(show_spinner="Computing scaling curves…")
def scaling(root: str, fingerprint: str, metric: str, filters: Filters) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Diversity-scaling curves and trends (both test domains) of one metric."""
    flt, units, pairs = _filters(filters), blocks(root, fingerprint), training_pairs(root, fingerprint)
    with connection(root, fingerprint) as con:
        curve = scaling_curve(con, metric=metric, filters=flt, blocks=units, design=pairs, n_boot=N_BOOT,
                              seed=SEED)
        trend = scaling_trend(con, metric=metric, filters=flt, blocks=units, design=pairs, n_boot=N_BOOT,
                              seed=SEED)
    return curve, trend


@st.cache_data(show_spinner="Reading map tiles…", max_entries=32)
def mosaic(root: str, tiles: tuple[tuple[str, str], ...], max_side: int = 256) -> mosaic_mod.Mosaic:
    """The map COGs ``((tile_id, store-relative path), ...)`` placed into one array, coarsened for display
    so that no side exceeds ``max_side`` pixels. Paths are confined to the store."""
    store = ResultsStore(root)
    full = mosaic_mod.mosaic_files({tile_id: store.resolve(rel) for tile_id, rel in tiles})
    return mosaic_mod.coarsen(full, mosaic_mod.display_factor(full.array.shape, max_side))


def model_folders(root: str | Path, run_id: str | None) -> tuple[dict[str, Path], str]:
    """The model folders behind ``run_id`` and where they were found (run record, or the demo's models).

    Only folders inside the data roots are read (a run record could name any path).
    """
    folders = training_logs.run_model_folders(root, run_id) if run_id else {}
    origin = "the run's experiment file"
    if not folders and Path(root).resolve() == DEMO_RESULTS.resolve():
        folders, origin = training_logs.scan_model_folders(DEMO_ROOT / "models"), "data/demo/models/"
    roots = data_roots()
    inside = {}
    for name, folder in folders.items():
        try:
            inside[name] = confine(folder, roots)
        except MindGapError:
            continue
    return inside, origin if inside else ""


@st.cache_data(show_spinner=False, ttl=60)
def loss_logs(root: str, run_id: str | None) -> tuple[pd.DataFrame, list[str], str]:
    """(loss logs, models without a loss log, where the folders were found) of the run's models."""
    folders, origin = model_folders(root, run_id)
    return training_logs.loss_logs(folders), training_logs.models_without_logs(folders), origin


@st.cache_resource(show_spinner=False)
def lpips_unavailable_reason() -> str | None:
    """Why standard LPIPS cannot be computed on this server, or None if it can. Says what is missing,
    not where on the server it was looked for (a visitor has no use for the host's home folder)."""
    from mindgap_core.metrics.lpips_std import ALEXNET_FILENAME, default_alexnet_path

    if default_alexnet_path().is_file():
        return None
    return (f"This server has no ImageNet AlexNet weights for standard LPIPS (`{ALEXNET_FILENAME}` in "
            "torch's hub cache; nothing is downloaded): its host can install them, see "
            "`mindgap score --help`.")


@st.cache_data(show_spinner=False)
def _models(root: str, fingerprint: str, filters: Filters) -> pd.DataFrame:
    with connection(root, fingerprint) as con:
        found = views.select_rows(con, filters=_filters(filters), columns=["model", "method", "regime"])
    return found.drop_duplicates().reset_index(drop=True)


@st.cache_resource(show_spinner=False, max_entries=1024)
def models(root: str, fingerprint: str, filters: Filters, select: Filters = ()) -> tuple[str, ...]:
    """The models with rows matching ``filters``, narrowed to ``select`` (method/regime), sorted. A model
    has one method and regime, so its rows can then be read with ``filters`` + model alone (one cache
    entry per model, whatever the selection it was picked from)."""
    table = _models(root, fingerprint, filters)
    for column, value in select:
        table = table[table[column] == value]
    return tuple(sorted(table["model"].unique()))


@st.cache_data(show_spinner=False)
def distinct(root: str, fingerprint: str, column: str, filters: Filters) -> list[str]:
    """The distinct values of a results column among the rows matching ``filters``, sorted."""
    with connection(root, fingerprint) as con:
        return views.distinct_values(con, column, _filters(filters))
