"""Manifest schema, round trip, deterministic bytes and validation."""

from __future__ import annotations

import dataclasses
import json
import math

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mindgap_core.data.manifest import (
    MANIFEST_SCHEMA,
    PairRecord,
    params_to_json,
    read_manifest,
    read_records,
    resolve,
    write_manifest,
)
from mindgap_core.errors import InputError


def record(tile="r0c0", **changes) -> PairRecord:
    base = dict(
        pair_id=f"real_cross_sensor/{tile}", tile_id=tile, domain="real_cross_sensor", split="train",
        block_id="b0_0", row=0, col=0, lr_path=f"lr/{tile}.tif", hr_path=f"hr/{tile}.tif", scale=2,
        tile_size_hr=64, crs="EPSG:32618", hr_left=0.0, hr_bottom=0.0, hr_right=320.0, hr_top=320.0,
        dt_days=float("nan"), shift_x_lr=0.31, shift_y_lr=-0.18, shift_corrected=False,
        valid_fraction=0.97, source_lr="s2.tif", source_hr="ps.tif", degradation="",
        params_json=params_to_json({"a": 1, "nan": float("nan")}), seed=0,
    )
    base.update(changes)
    return PairRecord(**base)


def test_schema_matches_record_fields():
    assert tuple(MANIFEST_SCHEMA.names) == tuple(f.name for f in dataclasses.fields(PairRecord))
    assert MANIFEST_SCHEMA.field("shift_corrected").type == pa.bool_()
    assert MANIFEST_SCHEMA.field("row").type == pa.int64()


def test_round_trip_and_sorted(tmp_path):
    recs = [record("r1c0", row=1, split="test"), record("r0c1", col=1, dt_days=2.5), record("r0c0")]
    path = write_manifest(recs, tmp_path / "manifest.parquet")
    frame = read_manifest(path)
    assert list(frame.columns) == MANIFEST_SCHEMA.names
    assert frame["pair_id"].tolist() == sorted(r.pair_id for r in recs)
    back = read_records(path)
    expected = sorted(recs, key=lambda r: r.pair_id)
    for got, want in zip(back, expected, strict=True):  # equal field by field (NaN == NaN here)
        for name in MANIFEST_SCHEMA.names:
            a, b = getattr(got, name), getattr(want, name)
            assert (a == b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), name
    by_id = {r.pair_id: r for r in back}
    assert by_id["real_cross_sensor/r0c1"].dt_days == 2.5
    assert math.isnan(by_id["real_cross_sensor/r0c0"].dt_days)
    assert by_id["real_cross_sensor/r1c0"].split == "test"
    assert isinstance(by_id["real_cross_sensor/r0c0"].shift_corrected, bool)
    assert json.loads(by_id["real_cross_sensor/r0c0"].params_json) == {"a": 1, "nan": None}
    assert read_manifest(tmp_path).shape == (3, len(MANIFEST_SCHEMA))  # folder accepted too


def test_deterministic_bytes(tmp_path):
    recs = [record("r0c0"), record("r0c1", col=1), record("r2c3", row=2, col=3)]
    a = write_manifest(recs, tmp_path / "a.parquet").read_bytes()
    b = write_manifest(list(reversed(recs)), tmp_path / "b.parquet").read_bytes()
    assert a == b
    assert write_manifest(recs[:2], tmp_path / "c.parquet").read_bytes() != a


def test_atomic_no_partial_file_on_invalid_records(tmp_path):
    dest = tmp_path / "manifest.parquet"
    with pytest.raises(ValueError, match="duplicate pair_id"):
        write_manifest([record(), record()], dest)
    with pytest.raises(ValueError, match="domain"):
        write_manifest([record(domain="fake")], dest)
    with pytest.raises(ValueError, match="relative"):
        write_manifest([record(lr_path="/abs/lr.tif")], dest)
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_read_rejects_non_manifests(tmp_path):
    with pytest.raises(InputError, match="no such manifest"):
        read_manifest(tmp_path / "missing.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(InputError, match="junk.parquet: not a MindGap manifest"):
        read_manifest(junk)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), other)
    with pytest.raises(InputError, match="missing columns"):
        read_manifest(other)
    frame = read_manifest(write_manifest([record()], tmp_path / "m.parquet"))
    frame["row"] = frame["row"].astype(str)
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pandas(frame), bad)
    with pytest.raises(InputError, match="row is"):
        read_manifest(bad)


def test_resolve(tmp_path):
    assert resolve(tmp_path, "lr/r0c0.tif") == tmp_path / "lr" / "r0c0.tif"
    assert resolve(tmp_path / "manifest.parquet", "hr/r0c0.tif") == tmp_path / "hr" / "r0c0.tif"


def test_frame_is_pandas(tmp_path):
    assert isinstance(read_manifest(write_manifest([record()], tmp_path / "m.parquet")), pd.DataFrame)
