"""The results-store schema: one tidy row per tile × band × metric × sample-aggregate.

A results store is a folder ``RESULTS/``::

    RESULTS/
      shards/<sha256(key)[:32]>.parquet      result rows, one file per unit of work (see ``results``)
      conditions/<sha256(key)[:32]>.parquet  per-tile acquisition/simulation conditions
      maps/<run_id>/<model>/<test_domain>/<kind>/<tile_id>.tif
                                             COGs (SR mean, uncertainty, metric maps) referenced from rows
      runs/<run_id>.json                     run metadata (experiment, spec hash, code version, times)

Every file is written through :func:`mindgap_core.io.atomic.atomic_path`, so it exists whole or not at
all. Files whose name starts with ``.`` are temporary leftovers of a killed writer: never read.

Table ``results`` (view over ``shards/*.parquet``)
---------------------------------------------------
=================  ==================  ========  ==========================================================
column             type                required  meaning
=================  ==================  ========  ==========================================================
run_id             string              yes       evaluation run (``runs/<run_id>.json``); ``[A-Za-z0-9._-]``
experiment         string              no ("")   experiment spec name
model              string              yes       display name of the trained model, ``"<method>/<regime>"``
                                                 e.g. ``"sr3/synthetic"``, ``"sr3/synthetic/recalibrated"``
method             string              yes       ``sr3`` ``srdiff`` ``ldm_sr`` ``resshift`` ``sinsr``
                                                 ``bicubic`` ``regression`` …
regime             string              yes       ``synthetic`` ``cross_sensor`` ``mixed`` ``finetune``,
                                                 ``<regime>+<adapter>``, ``<regime>_recalibrated``;
                                                 ``none`` for untrained baselines (bicubic)
train_domain       string              yes       domain of the training pairs (``synthetic``,
                                                 ``real_cross_sensor``, ``simulated_cross_sensor``,
                                                 ``mixed``, ``none``)
train_blocks       int64               no (null) diversity-scaling series: number of distinct training
                                                 blocks/regions the model saw; null outside the series
test_domain        string              yes       ``synthetic`` | ``simulated_cross_sensor`` |
                                                 ``real_cross_sensor`` | …
tile_id            string              yes       HR tile id; the same id in two test domains is the same
                                                 HR tile (paired design). Unique within a store.
split              string              yes       ``train`` | ``val`` | ``test``
band               string              yes       band name (``blue`` ``green`` ``red`` ``nir``) or ``all``
metric             string              yes       metric name (``psnr`` ``ssim`` ``sam`` ``ergas``
                                                 ``cpsnr`` ``lpips`` ``lpips_sat`` …)
aggregate          string              no        how the N diffusion samples were combined before
                                       ("mean")  scoring: ``mean`` (metric of the per-pixel mean),
                                                 ``sample`` (one sample), ``mean_of_scores``, ``std``…
value              float64             yes       the score; must be finite (cap PSNR of identical images)
higher_better      bool                yes       metric direction (PSNR true; LPIPS/SAM/ERGAS false)
options            string (JSON obj)   no ("{}") evaluation options: histogram matching, samples, steps,
                                                 seed …; a dict is serialised with sorted keys
sr_path            string              no ("")   SR mean COG, relative to the store root
uncertainty_path   string              no ("")   per-pixel std COG, relative to the store root
map_path           string              no ("")   metric map COG, relative to the store root
code_version       string              no        ``mindgap_core.__version__`` unless given
created_at         timestamp[us, UTC]  no (now)  when the row was written. NB: DuckDB's ``fetchall()`` on
                                                 a TIMESTAMPTZ needs pytz; use ``.df()`` / Arrow instead
=================  ==================  ========  ==========================================================

Within a shard the row key ``(run_id, model, train_blocks, test_domain, tile_id, split, band, metric,
aggregate, options)`` is unique and each metric has one ``higher_better``.

Table ``conditions`` (view over ``conditions/*.parquet``): one row per (tile_id, test_domain)
---------------------------------------------------------------------------------------------
=================  ==================  ========  ==========================================================
tile_id            string              yes       as in ``results``
test_domain        string              yes       as in ``results``
dt_days            float64             no        |acquisition time difference| LR vs HR, days (0 synthetic)
brightness         float64             no        mean HR reflectance of the tile (all bands)
ndvi_mean          float64             no        mean NDVI of the HR tile
veg_fraction       float64             no        fraction of HR pixels with NDVI > 0.3
shift_px           float64             no        misregistration magnitude, LR pixels (0 synthetic)
simulator_params   string (JSON obj)   no ("{}") simulated cross-sensor parameters of this tile
created_at         timestamp[us, UTC]  no (now)  when the row was written
=================  ==================  ========  ==========================================================
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mindgap_core.errors import InputError

SCHEMA_VERSION = "1"
TIMESTAMP = pa.timestamp("us", tz="UTC")
KNOWN_TEST_DOMAINS = ("synthetic", "simulated_cross_sensor", "real_cross_sensor")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class Column:
    """One column of a store table: name, Arrow type, and the default when the writer omits it."""

    name: str
    type: pa.DataType
    required: bool
    default: Any = None  # a value, or a callable of no argument; None = null


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _code_version() -> str:
    from mindgap_core import __version__

    return __version__


RESULT_COLUMNS: tuple[Column, ...] = (
    Column("run_id", pa.string(), True),
    Column("experiment", pa.string(), False, ""),
    Column("model", pa.string(), True),
    Column("method", pa.string(), True),
    Column("regime", pa.string(), True),
    Column("train_domain", pa.string(), True),
    Column("train_blocks", pa.int64(), False, None),
    Column("test_domain", pa.string(), True),
    Column("tile_id", pa.string(), True),
    Column("split", pa.string(), True),
    Column("band", pa.string(), True),
    Column("metric", pa.string(), True),
    Column("aggregate", pa.string(), False, "mean"),
    Column("value", pa.float64(), True),
    Column("higher_better", pa.bool_(), True),
    Column("options", pa.string(), False, "{}"),
    Column("sr_path", pa.string(), False, ""),
    Column("uncertainty_path", pa.string(), False, ""),
    Column("map_path", pa.string(), False, ""),
    Column("code_version", pa.string(), False, _code_version),
    Column("created_at", TIMESTAMP, False, _now),
)

CONDITION_COLUMNS: tuple[Column, ...] = (
    Column("tile_id", pa.string(), True),
    Column("test_domain", pa.string(), True),
    Column("dt_days", pa.float64(), False, None),
    Column("brightness", pa.float64(), False, None),
    Column("ndvi_mean", pa.float64(), False, None),
    Column("veg_fraction", pa.float64(), False, None),
    Column("shift_px", pa.float64(), False, None),
    Column("simulator_params", pa.string(), False, "{}"),
    Column("created_at", TIMESTAMP, False, _now),
)

#: the row key that must be unique within a results shard
RESULT_KEY = (
    "run_id", "model", "train_blocks", "test_domain", "tile_id", "split", "band", "metric", "aggregate",
    "options",
)
CONDITION_KEY = ("tile_id", "test_domain")
PATH_COLUMNS = ("sr_path", "uncertainty_path", "map_path")
JSON_COLUMNS = ("options", "simulator_params")


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema of a table definition (column order as documented)."""
    return pa.schema([pa.field(c.name, c.type, nullable=not c.required) for c in columns])


RESULTS_SCHEMA = arrow_schema(RESULT_COLUMNS)
CONDITIONS_SCHEMA = arrow_schema(CONDITION_COLUMNS)

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
    TIMESTAMP: "TIMESTAMPTZ",
}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type name of a schema column type."""
    return _DUCKDB_TYPES[arrow_type]


def _to_table(rows: pd.DataFrame | pa.Table | Mapping[str, Any], source: str) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pd.DataFrame):
        frame = rows.reset_index(drop=True)
        for name in JSON_COLUMNS:  # dict-valued options -> canonical JSON text before Arrow sees them
            if name in frame.columns and frame[name].map(lambda v: isinstance(v, Mapping)).any():
                frame = frame.assign(**{name: frame[name].map(_json_text)})
        try:
            return pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InputError(source, f"rows cannot be converted to a table ({exc})") from None
    if isinstance(rows, Mapping):
        return _to_table(pd.DataFrame(dict(rows)), source)
    raise InputError(source, f"rows must be a pandas DataFrame or a pyarrow Table, not {type(rows).__name__}")


def _json_text(value: Any) -> Any:
    return json.dumps(dict(value), sort_keys=True, default=str) if isinstance(value, Mapping) else value


def _cast_column(table: pa.Table, column: Column, source: str) -> pa.Array:
    array = table.column(column.name)
    if column.type == TIMESTAMP and pa.types.is_timestamp(array.type) and array.type.tz is None:
        array = pc.assume_timezone(array.cast(pa.timestamp("us")), "UTC")  # naive = UTC
    if column.type == pa.string() and pa.types.is_dictionary(array.type):
        array = array.cast(pa.string())
    if column.type == pa.float64() and not (
        pa.types.is_floating(array.type) or pa.types.is_integer(array.type) or pa.types.is_null(array.type)
    ):
        raise InputError(source, f"column {column.name!r} must be numeric, got {array.type}")
    if column.type == pa.string() and not (
        pa.types.is_string(array.type) or pa.types.is_large_string(array.type) or pa.types.is_null(array.type)
    ):
        raise InputError(source, f"column {column.name!r} must hold text, got {array.type}")
    try:
        return array.cast(column.type)
    except (pa.ArrowException, ValueError) as exc:
        raise InputError(source, f"column {column.name!r} cannot be read as {column.type} ({exc})") from None


def _default_array(column: Column, n: int) -> pa.Array:
    value = column.default() if callable(column.default) else column.default
    return pa.array([value] * n, type=column.type)


def _first_rows(mask: np.ndarray, limit: int = 5) -> str:
    rows = np.flatnonzero(mask)
    more = f" (+{len(rows) - limit} more)" if len(rows) > limit else ""
    return ", ".join(str(r) for r in rows[:limit]) + more


def conform(
    rows: pd.DataFrame | pa.Table | Mapping[str, Any], columns: tuple[Column, ...], source: str
) -> pa.Table:
    """Validate ``rows`` against a table definition and return them as a canonical Arrow table.

    Missing optional columns get their defaults; types are cast; unknown columns, missing required
    columns, nulls or empty text in required columns, non-JSON options and absolute or escaping paths
    raise :class:`InputError` naming ``source`` (the shard key or file).
    """
    table = _to_table(rows, source)
    names = [c.name for c in columns]
    unknown = sorted(set(table.column_names) - set(names))
    if unknown:
        raise InputError(source, f"unknown column(s) {unknown}; the schema has {names}")
    missing = [c.name for c in columns if c.required and c.name not in table.column_names]
    if missing:
        raise InputError(source, f"missing required column(s) {missing}")
    n = table.num_rows
    arrays = []
    for column in columns:
        if column.name in table.column_names:
            array = _cast_column(table, column, source)
            if array.null_count and column.default is not None and not column.required:
                fill = column.default() if callable(column.default) else column.default
                array = pc.fill_null(array, pa.scalar(fill, type=column.type))
        else:
            array = _default_array(column, n)
        arrays.append(array)
    out = pa.Table.from_arrays(arrays, schema=arrow_schema(columns))
    _check_values(out, columns, source)
    return out


def _check_values(table: pa.Table, columns: tuple[Column, ...], source: str) -> None:
    for column in columns:
        array = table.column(column.name)
        if column.required and array.null_count:
            mask = array.is_null().to_numpy(zero_copy_only=False)
            problem = f"column {column.name!r} has missing (null/NaN) values in rows {_first_rows(mask)}"
            raise InputError(source, problem)
        if column.required and column.type == pa.string():
            mask = pc.equal(pc.utf8_length(array), 0).to_numpy(zero_copy_only=False)
            if mask.any():
                raise InputError(source, f"column {column.name!r} has empty text in rows {_first_rows(mask)}")
    names = table.column_names
    if "value" in names:
        values = table.column("value").to_numpy()
        bad = ~np.isfinite(values)
        if bad.any():
            raise InputError(source, f"column 'value' must be finite; NaN/inf in rows {_first_rows(bad)}")
    if "run_id" in names:
        for run_id in pc.unique(table.column("run_id")).to_pylist():
            if not _SAFE_ID.match(run_id):
                raise InputError(source, f"run_id {run_id!r} may only use letters, digits, '.', '_' and '-'")
    for name in (c for c in JSON_COLUMNS if c in names):
        for text in pc.unique(table.column(name)).to_pylist():
            try:
                parsed = json.loads(text)
            except (TypeError, json.JSONDecodeError):
                parsed = None
            if not isinstance(parsed, dict):
                raise InputError(source, f"column {name!r} must hold a JSON object, got {text!r}")
    for name in (c for c in PATH_COLUMNS if c in names):
        for text in pc.unique(table.column(name)).to_pylist():
            if text and (text.startswith(("/", "\\")) or ".." in text.replace("\\", "/").split("/")
                         or re.match(r"^[A-Za-z]:", text)):
                problem = f"column {name!r} must hold paths relative to the store root, got {text!r}"
                raise InputError(source, problem)
    if "higher_better" in names and "metric" in names and table.num_rows:
        frame = table.select(["metric", "higher_better"]).to_pandas()
        directions = frame.groupby("metric")["higher_better"].nunique()
        conflicting = sorted(directions[directions > 1].index)
        if conflicting:
            raise InputError(source, f"metric(s) {conflicting} have both higher_better values")
    key = RESULT_KEY if columns is RESULT_COLUMNS else CONDITION_KEY
    if table.num_rows and all(k in names for k in key):
        dup = table.select(list(key)).to_pandas().duplicated(keep=False).to_numpy()
        if dup.any():
            raise InputError(source, f"duplicate rows for the key {list(key)}: rows {_first_rows(dup)}")


def validate_results(rows: pd.DataFrame | pa.Table | Mapping[str, Any], source: str) -> pa.Table:
    """Result rows as a canonical Arrow table (see the module docstring); raises :class:`InputError`."""
    return conform(rows, RESULT_COLUMNS, source)


def validate_conditions(rows: pd.DataFrame | pa.Table | Mapping[str, Any], source: str) -> pa.Table:
    """Condition rows as a canonical Arrow table (see the module docstring); raises :class:`InputError`."""
    return conform(rows, CONDITION_COLUMNS, source)


def is_safe_id(text: str) -> bool:
    """Whether ``text`` can be used verbatim in a file name (run ids)."""
    return bool(_SAFE_ID.match(text))
