"""DuckDB views over a results store, and the queries the dashboard and the analysis call.

``create_views`` defines ``results``, ``conditions`` and ``runs``; :func:`connect` opens a connection
with them. The query functions take a connection holding those views (from :func:`connect`,
:meth:`ResultsStore.connect <mindgap_core.store.results.ResultsStore.connect>` or :func:`connect_to`)
and return pandas DataFrames or plain lists: every SQL the dashboard runs is here. :func:`gap_overview`
is the dashboard's overview query (benchmarked in ``benchmarks/store.py``); :func:`paired_tiles` feeds
the bootstrap of :mod:`mindgap_core.analysis.gap`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import duckdb
import pandas as pd
import pyarrow as pa

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.store import schema as sch

#: columns always added to the pairing key of a gap: one gap per band, sample aggregate and
#: (for the diversity-scaling series) number of training blocks
PAIR_KEYS = ("band", "aggregate", "train_blocks")
#: columns that cannot be grouping keys of a gap (they are what is paired or measured)
_NOT_KEYS = {"test_domain", "tile_id", "value", "higher_better", "created_at"}
_RESULT_NAMES = tuple(c.name for c in sch.RESULT_COLUMNS)
_RUN_COLUMNS = {
    "run_id": "VARCHAR", "experiment": "VARCHAR", "spec_hash": "VARCHAR", "code_version": "VARCHAR",
    "started_at": "VARCHAR", "finished_at": "VARCHAR", "extra": "JSON",
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _empty_select(columns: Iterable[sch.Column]) -> str:
    cols = ", ".join(f"CAST(NULL AS {sch.duckdb_type(c.type)}) AS {_quote(c.name)}" for c in columns)
    return f"SELECT {cols} WHERE false"


def _has_files(folder: Path, pattern: str) -> bool:
    return folder.is_dir() and any(not p.name.startswith(".") for p in folder.glob(pattern))


def create_views(con: duckdb.DuckDBPyConnection, root: str | Path, *, materialize: bool = False) -> None:
    """Define ``results``, ``conditions`` and ``runs`` over the store at ``root`` on ``con``.

    Only visible ``*.parquet`` / ``*.json`` files are globbed, never the hidden ``.*`` temporary files
    of a writer.
    ``materialize=True`` creates in-memory tables instead of views.
    """
    root = Path(root).absolute()
    kind = "TABLE" if materialize else "VIEW"
    for name, folder, columns in (
        ("results", root / "shards", sch.RESULT_COLUMNS),
        ("conditions", root / "conditions", sch.CONDITION_COLUMNS),
    ):
        if _has_files(folder, "*.parquet"):
            glob = _literal(str(folder / "[!.]*.parquet"))  # DuckDB's * also matches hidden files
            body = f"SELECT * FROM read_parquet({glob}, union_by_name = true)"
        else:
            body = _empty_select(columns)
        con.execute(f"CREATE OR REPLACE {kind} {name} AS {body}")
    runs = root / "runs"
    if _has_files(runs, "*.json"):
        cols = "{" + ", ".join(f"{k}: {_literal(v)}" for k, v in _RUN_COLUMNS.items()) + "}"
        body = f"SELECT * FROM read_json({_literal(str(runs / '[!.]*.json'))}, columns = {cols})"
    else:
        nulls = ", ".join(f"CAST(NULL AS {v}) AS {k}" for k, v in _RUN_COLUMNS.items())
        body = f"SELECT {nulls} WHERE false"
    con.execute(f"CREATE OR REPLACE {kind} runs AS {body}")


def connect(root: str | Path, *, materialize: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views of :func:`create_views` over the store at ``root``."""
    con = duckdb.connect()
    create_views(con, root, materialize=materialize)
    return con


@runtime_checkable
class Connectable(Protocol):
    """Anything that opens a connection holding the views (a :class:`~mindgap_core.store.results.
    ResultsStore`)."""

    def connect(self) -> duckdb.DuckDBPyConnection: ...


def connect_to(data: Any) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """A connection with the ``results`` and ``conditions`` views for ``data``, and whether the caller
    must close it.

    ``data``: a DuckDB connection that already has the views, a ``ResultsStore`` (any
    :class:`Connectable`), a store folder, or result rows (DataFrame / Arrow table, validated and
    completed with schema defaults; its ``conditions`` view is then empty).
    """
    if isinstance(data, duckdb.DuckDBPyConnection):
        con, owned = data, False
    elif isinstance(data, Connectable):
        con, owned = data.connect(), True
    elif isinstance(data, str | Path):
        if not Path(data).is_dir():
            raise InputError(data, "results store folder not found")
        con, owned = connect(data), True
    elif isinstance(data, pd.DataFrame | pa.Table):
        con, owned = duckdb.connect(), True
        con.register("_results_rows", sch.validate_results(data, source="results rows"))
        con.execute("CREATE VIEW results AS SELECT * FROM _results_rows")
        con.execute(f"CREATE VIEW conditions AS {_empty_select(sch.CONDITION_COLUMNS)}")
    else:
        raise ConfigError(f"cannot read results from a {type(data).__name__}")
    return con, owned


@contextlib.contextmanager
def connected(data: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """:func:`connect_to` as a context manager: the connection is closed on exit when it was opened
    here (a connection passed in stays open)."""
    con, owned = connect_to(data)
    try:
        yield con
    finally:
        if owned:
            con.close()


def where_clause(filters: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """``WHERE`` text and parameters for ``{column: value | [values] | None}`` on result columns."""
    parts, params = [], []
    for name, value in (filters or {}).items():
        if name not in _RESULT_NAMES:
            raise ConfigError(f"cannot filter on {name!r}: not a results column ({', '.join(_RESULT_NAMES)})")
        if value is None:
            parts.append(f"{_quote(name)} IS NULL")
        elif isinstance(value, str) or not isinstance(value, Iterable):
            parts.append(f"{_quote(name)} = ?")
            params.append(value)
        else:
            values = list(value)
            if not values:
                parts.append("false")
                continue
            parts.append(f"{_quote(name)} IN ({', '.join('?' * len(values))})")
            params.extend(values)
    return ("WHERE " + " AND ".join(parts)) if parts else "", params


def merge_filters(filters: Mapping[str, Any] | None, **fixed: Any) -> dict[str, Any]:
    """``filters`` plus the named ones whose value is not None."""
    merged = dict(filters or {})
    merged.update({k: v for k, v in fixed.items() if v is not None})
    return merged


def select_rows(
    con: duckdb.DuckDBPyConnection,
    *,
    filters: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows of ``results`` matching ``filters`` (all columns unless ``columns``)."""
    names = list(columns) if columns else list(_RESULT_NAMES)
    unknown = [c for c in names if c not in _RESULT_NAMES]
    if unknown:
        raise ConfigError(f"unknown results column(s) {unknown}")
    where, params = where_clause(filters)
    return con.execute(f"SELECT {', '.join(map(_quote, names))} FROM results {where}", params).df()


def distinct_values(
    con: duckdb.DuckDBPyConnection, column: str, filters: Mapping[str, Any] | None = None
) -> list[Any]:
    """The distinct values of a ``results`` column among the rows matching ``filters``, sorted."""
    if column not in _RESULT_NAMES:
        raise ConfigError(f"not a results column: {column!r}")
    where, params = where_clause(filters)
    sql = f"SELECT DISTINCT {_quote(column)} FROM results {where} ORDER BY 1"
    return [r[0] for r in con.execute(sql, params).fetchall()]


def catalog_values(con: duckdb.DuckDBPyConnection, columns: Sequence[str]) -> dict[str, list[Any]] | None:
    """Sorted distinct non-null values of each of ``columns`` in one scan of ``results``; None when the
    store has no row."""
    unknown = [c for c in columns if c not in _RESULT_NAMES]
    if unknown:
        raise ConfigError(f"unknown results column(s) {unknown}")
    lists = ", ".join(f"list_sort(list(DISTINCT {_quote(c)}))" for c in columns)
    row = con.execute(f"SELECT count(*), {lists} FROM results").fetchone()
    if not row[0]:
        return None
    return {c: [v for v in values if v is not None] for c, values in zip(columns, row[1:], strict=True)}


def domains_present(con: duckdb.DuckDBPyConnection, filters: Mapping[str, Any] | None = None) -> list[str]:
    """The test domains present in ``results`` (sorted)."""
    return distinct_values(con, "test_domain", filters)


def gap_keys(group: Sequence[str]) -> list[str]:
    """The grouping columns of a gap: ``group`` plus :data:`PAIR_KEYS` (validated, order kept)."""
    keys = list(dict.fromkeys([*group, *PAIR_KEYS]))
    bad = [k for k in keys if k not in _RESULT_NAMES or k in _NOT_KEYS]
    if bad:
        allowed = [c for c in _RESULT_NAMES if c not in _NOT_KEYS]
        raise ConfigError(f"cannot group a gap by {bad}; choose from {allowed}")
    return keys


def _paired_sql(
    keys: Sequence[str], filters: Mapping[str, Any] | None, source: str, target: str
) -> tuple[str, list]:
    where, params = where_clause(merge_filters(filters, test_domain=[source, target]))
    cols = ", ".join(map(_quote, keys))
    sql = f"""
        SELECT {cols}, tile_id,
               avg(value) FILTER (WHERE test_domain = ?) AS source,
               avg(value) FILTER (WHERE test_domain = ?) AS target,
               bool_and(higher_better) AS hb_all, bool_or(higher_better) AS hb_any
        FROM results {where}
        GROUP BY {cols}, tile_id
    """
    return sql, [source, target, *params]


def _check_direction(frame: pd.DataFrame) -> pd.DataFrame:
    conflict = frame["hb_all"] != frame["hb_any"]
    if conflict.any():
        metrics = sorted(set(frame.loc[conflict, "metric"])) if "metric" in frame else "?"
        raise InputError("results", f"metric(s) {metrics} have rows with both higher_better values")
    return frame.drop(columns=["hb_any"]).rename(columns={"hb_all": "higher_better"})


def paired_tiles(
    con: duckdb.DuckDBPyConnection,
    *,
    source_domain: str,
    target_domain: str,
    group: Sequence[str] = ("method", "regime", "metric"),
    filters: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per gap key × tile present in both domains (in no particular order): keys, tile_id,
    source, target, higher_better.

    Several rows for the same key, tile and domain (repeated runs, seeds, or keys left out of
    ``group``) are averaged first.
    """
    keys = gap_keys(group)
    inner, params = _paired_sql(keys, filters, source_domain, target_domain)
    sql = f"SELECT * FROM ({inner}) WHERE source IS NOT NULL AND target IS NOT NULL"  # any order
    return _check_direction(con.execute(sql, params).df())


def gap_overview(
    con: duckdb.DuckDBPyConnection,
    *,
    source_domain: str,
    target_domain: str,
    group: Sequence[str] = ("method", "regime", "metric"),
    filters: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The dashboard's overview: per gap key, mean on each domain over paired tiles and the paired gap.

    ``gap`` = target − source for higher-better metrics and source − target otherwise (negative =
    worse on the target domain); ``rel_gap_pct`` = gap / |mean_source| × 100. No confidence
    intervals (see :func:`mindgap_core.analysis.gap.gap_table`); one SQL query over raw rows.
    """
    keys = gap_keys(group)
    inner, params = _paired_sql(keys, filters, source_domain, target_domain)
    cols = ", ".join(map(_quote, keys))
    sql = f"""
        WITH tiles AS ({inner}),
        agg AS (
            SELECT {cols}, count(*) AS n_tiles, avg(source) AS mean_source, avg(target) AS mean_target,
                   bool_and(hb_all) AS hb_all, bool_or(hb_any) AS hb_any
            FROM tiles WHERE source IS NOT NULL AND target IS NOT NULL
            GROUP BY {cols}
        )
        SELECT {cols}, ? AS source_domain, ? AS target_domain, n_tiles, mean_source, mean_target,
               CASE WHEN hb_all THEN mean_target - mean_source ELSE mean_source - mean_target END AS gap,
               100.0 * (CASE WHEN hb_all THEN mean_target - mean_source ELSE mean_source - mean_target END)
                     / nullif(abs(mean_source), 0) AS rel_gap_pct,
               hb_all, hb_any
        FROM agg ORDER BY ALL
    """
    return _check_direction(con.execute(sql, [*params, source_domain, target_domain]).df())


def tile_means(
    con: duckdb.DuckDBPyConnection,
    *,
    keys: Sequence[str],
    filters: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per ``keys`` × tile (in no particular order): the tile's mean value, ``higher_better``."""
    bad = [k for k in keys if k not in _RESULT_NAMES or k in {"tile_id", "value"}]
    if bad:
        raise ConfigError(f"cannot group by {bad}")
    where, params = where_clause(filters)
    cols = ", ".join(map(_quote, keys))
    sql = f"""
        SELECT {cols}, tile_id, avg(value) AS value,
               bool_and(higher_better) AS hb_all, bool_or(higher_better) AS hb_any
        FROM results {where} GROUP BY {cols}, tile_id
    """
    return _check_direction(con.execute(sql, params).df())


def conditions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The ``conditions`` table; raises when a (tile_id, test_domain) has two different records."""
    return unique_conditions(con.execute("SELECT * EXCLUDE (created_at) FROM conditions").df())


def unique_conditions(frame: pd.DataFrame) -> pd.DataFrame:
    """Condition records with identical repeats dropped; raises on conflicting ones."""
    frame = frame.drop(columns=["created_at"], errors="ignore").drop_duplicates()
    dup = frame.duplicated(["tile_id", "test_domain"], keep=False)
    if dup.any():
        first = frame.loc[dup].iloc[0]
        raise InputError(
            "conditions",
            f"tile {first['tile_id']!r} in {first['test_domain']!r} has conflicting condition records",
        )
    return frame.reset_index(drop=True)


def duplicate_rows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Result rows whose row key (see the schema) occurs in more than one shard row; empty if none."""
    cols = ", ".join(map(_quote, sch.RESULT_KEY))
    return con.execute(
        f"SELECT {cols}, count(*) AS n FROM results GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL"
    ).df()
