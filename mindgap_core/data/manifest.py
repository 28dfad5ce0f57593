"""The pair manifest: one Parquet row per LR/HR tile pair. A stable contract read by training,
evaluation and the dashboard.

Layout of a pair folder::

    <dir>/manifest.parquet    written last: its presence means the folder is complete
    <dir>/lr/<tile_id>.tif    LR tile (COG, float32 reflectance), path stored relative to <dir>
    <dir>/hr/<tile_id>.tif    HR tile (COG, float32 reflectance)

Columns (:data:`MANIFEST_SCHEMA`, in this order; all non-null):

==================  =======  ==================================================================
pair_id             string   unique, ``f"{domain}/{tile_id}"`` style; rows are sorted by it
tile_id             string   ``f"r{row}c{col}"`` for tiles cut by :mod:`mindgap_core.data.tiles`
domain              string   ``"synthetic"`` | ``"simulated_cross_sensor"`` | ``"real_cross_sensor"``, or
                             ``"attr-..."``: a simulated attribution variant (:mod:`mindgap_core.attribution`)
split               string   ``"train"`` | ``"val"`` | ``"test"``
block_id            string   spatial block (:mod:`mindgap_core.data.splits`); one split per block
row, col            int64    tile index in the tiling (not pixel offsets)
lr_path, hr_path    string   tile files relative to the manifest's folder (resolve with :func:`resolve`)
scale               int64    HR pixels per LR pixel (per axis)
tile_size_hr        int64    HR tile side in pixels (LR side = tile_size_hr // scale)
crs                 string   ``"EPSG:n"`` when the CRS has an EPSG code, else WKT
hr_left .. hr_top   float64  tile bounds (left, bottom, right, top) in ``crs`` units
dt_days             float64  acquisition time difference ``|t_HR - t_LR|`` in days; NaN = unknown
shift_x_lr          float64  residual displacement of the HR content relative to the LR content,
shift_y_lr          float64  in LR pixels, as stored (after any correction); +x right, +y down
                             (:mod:`mindgap_core.data.coregister`); NaN = not estimated
shift_corrected     bool     True when a shift correction was applied to the HR before tiling
valid_fraction      float64  fraction of HR pixels valid in both rasters (masks, footprint)
source_lr           string   where the LR came from (input path, or a description)
source_hr           string   where the HR came from
degradation         string   name of the synthetic degradation; ``""`` for real pairs
params_json         string   JSON object of everything else needed to reproduce the pair
seed                int64    seed used for the pair's randomness
==================  =======  ==================================================================

The file is written atomically and byte-for-byte deterministic: rows sorted by ``pair_id``, no
timestamps, fixed writer options. The schema metadata key ``mindgap.manifest_version`` is
:data:`MANIFEST_VERSION`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from mindgap_core.attribution.names import VARIANT_DOMAIN_PREFIX
from mindgap_core.errors import InputError
from mindgap_core.io.atomic import atomic_path

if TYPE_CHECKING:
    import pandas as pd

MANIFEST_NAME = "manifest.parquet"
MANIFEST_VERSION = "1"
DOMAINS: tuple[str, ...] = ("synthetic", "simulated_cross_sensor", "real_cross_sensor")


def known_domain(domain: str) -> bool:
    """Whether a manifest may hold rows of ``domain`` (``attr-...``: attribution variants)."""
    return domain in DOMAINS or domain.startswith(VARIANT_DOMAIN_PREFIX)
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")

MANIFEST_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("tile_id", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("block_id", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("col", pa.int64(), nullable=False),
        pa.field("lr_path", pa.string(), nullable=False),
        pa.field("hr_path", pa.string(), nullable=False),
        pa.field("scale", pa.int64(), nullable=False),
        pa.field("tile_size_hr", pa.int64(), nullable=False),
        pa.field("crs", pa.string(), nullable=False),
        pa.field("hr_left", pa.float64(), nullable=False),
        pa.field("hr_bottom", pa.float64(), nullable=False),
        pa.field("hr_right", pa.float64(), nullable=False),
        pa.field("hr_top", pa.float64(), nullable=False),
        pa.field("dt_days", pa.float64(), nullable=False),
        pa.field("shift_x_lr", pa.float64(), nullable=False),
        pa.field("shift_y_lr", pa.float64(), nullable=False),
        pa.field("shift_corrected", pa.bool_(), nullable=False),
        pa.field("valid_fraction", pa.float64(), nullable=False),
        pa.field("source_lr", pa.string(), nullable=False),
        pa.field("source_hr", pa.string(), nullable=False),
        pa.field("degradation", pa.string(), nullable=False),
        pa.field("params_json", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
    ],
    metadata={"mindgap.manifest_version": MANIFEST_VERSION},
)


@dataclass(frozen=True)
class PairRecord:
    """One manifest row (field meanings in the module docstring)."""

    pair_id: str
    tile_id: str
    domain: str
    split: str
    block_id: str
    row: int
    col: int
    lr_path: str
    hr_path: str
    scale: int
    tile_size_hr: int
    crs: str
    hr_left: float
    hr_bottom: float
    hr_right: float
    hr_top: float
    dt_days: float
    shift_x_lr: float
    shift_y_lr: float
    shift_corrected: bool
    valid_fraction: float
    source_lr: str
    source_hr: str
    degradation: str
    params_json: str
    seed: int


_COLUMNS = tuple(f.name for f in fields(PairRecord))
assert _COLUMNS == tuple(MANIFEST_SCHEMA.names), "PairRecord and MANIFEST_SCHEMA must list the same columns"


def params_to_json(params: Mapping[str, object]) -> str:
    """Canonical JSON for ``params_json``: sorted keys, compact, NaN/inf written as null."""

    def clean(value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if hasattr(value, "item") and callable(value.item):  # numpy scalars
            return clean(value.item())
        return value

    return json.dumps(clean(params), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _validate(records: Sequence[PairRecord], dest: Path) -> None:
    seen: set[str] = set()
    for rec in records:
        if rec.pair_id in seen:
            raise ValueError(f"{dest}: duplicate pair_id {rec.pair_id!r}")
        seen.add(rec.pair_id)
        if not known_domain(rec.domain):
            raise ValueError(f"{dest}: pair {rec.pair_id!r} has unknown domain {rec.domain!r}; use {DOMAINS}")
        if rec.split not in SPLIT_NAMES:
            raise ValueError(
                f"{dest}: pair {rec.pair_id!r} has unknown split {rec.split!r}; use {SPLIT_NAMES}"
            )
        for name in ("lr_path", "hr_path"):
            if Path(getattr(rec, name)).is_absolute():
                raise ValueError(
                    f"{dest}: pair {rec.pair_id!r} {name} must be relative, got {getattr(rec, name)!r}"
                )
        json.loads(rec.params_json)  # must be valid JSON


def write_manifest(records: Sequence[PairRecord], path: str | Path) -> Path:
    """Write ``records`` as a Parquet manifest at ``path`` (atomic, deterministic bytes)."""
    import pyarrow.parquet as pq

    dest = Path(path)
    _validate(records, dest)
    rows = sorted(records, key=lambda r: r.pair_id)
    columns = {name: [getattr(r, name) for r in rows] for name in _COLUMNS}
    table = pa.Table.from_pydict(columns, schema=MANIFEST_SCHEMA)
    with atomic_path(dest) as tmp:
        pq.write_table(
            table, tmp, compression="zstd", compression_level=3, use_dictionary=True,
            write_statistics=True, row_group_size=max(1, len(rows)),
        )
    return dest


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest into a DataFrame with the columns of :data:`MANIFEST_SCHEMA`, in order.

    Paths are left relative (see :func:`resolve`). Raises :class:`InputError` when the file is
    missing, not Parquet, or lacks manifest columns / has wrong column types.
    """
    import pyarrow.parquet as pq

    src = Path(path)
    if src.is_dir():
        src = src / MANIFEST_NAME
    if not src.is_file():
        raise InputError(src, "no such manifest file")
    try:
        table = pq.read_table(src)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(src, f"not a MindGap manifest (cannot read as Parquet: {exc})") from None
    missing = [n for n in _COLUMNS if n not in table.column_names]
    if missing:
        raise InputError(src, f"not a MindGap manifest: missing columns {missing}")
    table = table.select(list(_COLUMNS))
    wrong = [
        f"{f.name} is {table.schema.field(f.name).type}, expected {f.type}"
        for f in MANIFEST_SCHEMA
        if not table.schema.field(f.name).type.equals(f.type)
    ]
    if wrong:
        raise InputError(src, "not a MindGap manifest: " + "; ".join(wrong))
    return table.to_pandas()


def read_records(path: str | Path) -> list[PairRecord]:
    """The manifest's rows as :class:`PairRecord` objects, in file order."""
    frame = read_manifest(path)
    return [
        PairRecord(**{name: _py(row[name]) for name in _COLUMNS})
        for row in frame.to_dict(orient="records")
    ]


def _py(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def record_to_dict(record: PairRecord) -> dict[str, object]:
    """A plain dict of one record (column name -> value)."""
    return asdict(record)


def resolve(manifest_dir: str | Path, rel_path: str | Path) -> Path:
    """The file a manifest path points at: ``rel_path`` joined to the manifest's folder.

    ``manifest_dir`` may be the folder or the manifest file itself.
    """
    base = Path(manifest_dir)
    if base.suffix == ".parquet" or base.is_file():
        base = base.parent
    return base / rel_path
