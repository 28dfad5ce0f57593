"""ResultsStore: keyed atomic shards, idempotent rewrites, DuckDB views, runs, conditions, maps."""

from __future__ import annotations

import os
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.store import ResultsStore, shard_key, views
from tests.mindgap_core.analysis.synth import result_rows


def without_time(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop(columns=["created_at"])
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_shard_key_is_canonical():
    assert shard_key(run="r1", model="sr3/mixed", tiles=3) == shard_key(tiles=3, model="sr3/mixed", run="r1")
    assert shard_key(run="r1", tiles=3) != shard_key(run="r1", tiles=4)
    with pytest.raises(ConfigError):
        shard_key()


def test_opening_creates_nothing_and_a_file_is_refused(tmp_path):
    ResultsStore(tmp_path / "RESULTS")
    assert not (tmp_path / "RESULTS").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="must be a folder"):
        ResultsStore(tmp_path / "file")


def test_write_then_has_and_completed_keys(tmp_path):
    store = ResultsStore(tmp_path)
    keys = [shard_key(run="r1", tiles=i) for i in range(3)]
    assert store.completed_keys() == set()
    for i, key in enumerate(keys):
        assert not store.has_shard(key)
        assert store.write_shard(key, result_rows(tiles=[f"t{i}{j}" for j in range(4)], seed=i)) is True
        assert store.has_shard(key)
    assert store.completed_keys() == set(keys)
    names = sorted(p.name for p in store.shards_dir.iterdir())
    assert names == sorted(store.shard_path(k).name for k in keys)
    assert store.shard_path(keys[0]).stat().st_mode & 0o777 == 0o644  # readable by a dashboard user
    meta = pq.read_schema(store.shard_path(keys[0])).metadata
    assert meta[b"mindgap.shard_key"] == keys[0].encode()


def test_same_key_same_rows_is_a_no_op_and_different_rows_are_refused(tmp_path):
    store = ResultsStore(tmp_path)
    key = shard_key(run="r1", tiles=0)
    rows = result_rows(tiles=5)
    assert store.write_shard(key, rows)
    stat = store.shard_path(key).stat()
    time.sleep(0.01)
    assert store.write_shard(key, rows.sample(frac=1.0, random_state=1)) is False  # order does not matter
    assert store.shard_path(key).stat().st_mtime_ns == stat.st_mtime_ns
    changed = rows.assign(value=rows["value"] + 1e-9)
    with pytest.raises(InputError, match="already holds different rows") as info:
        store.write_shard(key, changed)
    assert str(store.shard_path(key)) in str(info.value)
    with pytest.raises(InputError, match="already holds different rows"):
        store.write_shard(key, rows.iloc[:-1])


def test_invalid_rows_name_the_shard_key_and_write_nothing(tmp_path):
    store = ResultsStore(tmp_path)
    key = shard_key(run="r1", tiles=0)
    with pytest.raises(InputError, match=r"results shard 'run=r1/tiles=0': missing required column"):
        store.write_shard(key, result_rows(tiles=2).drop(columns=["higher_better"]))
    assert not store.has_shard(key)


def test_empty_shard_marks_work_done(tmp_path):
    store = ResultsStore(tmp_path)
    key = shard_key(run="r1", tiles=9)
    assert store.write_shard(key, result_rows(tiles=2).iloc[:0])
    assert store.has_shard(key)
    con = store.connect()
    assert con.execute("SELECT count(*) FROM results").fetchone() == (0,)


def test_a_failing_write_leaves_neither_shard_nor_temp_file(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    key = shard_key(run="r1", tiles=0)

    def half_write(table, where, **kwargs):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        store.write_shard(key, result_rows(tiles=2))
    assert not store.has_shard(key)
    assert list(store.shards_dir.iterdir()) == []


def test_views_see_every_shard_and_ignore_temp_files(tmp_path):
    store = ResultsStore(tmp_path)
    frames = [result_rows(tiles=[f"b{i}t{j}" for j in range(3)], seed=i) for i in range(4)]
    for i, frame in enumerate(frames):
        store.write_shard(shard_key(run="r1", batch=i), frame)
    # leftovers of killed writers (atomic_path names: ".<dest name>.<random>.tmp")
    (store.shards_dir / ".abc.parquet.x1y2z3.tmp").write_bytes(b"PAR1 truncated")
    pq.write_table(pq.read_table(store.shard_path(shard_key(run="r1", batch=0))),
                   store.shards_dir / ".def.parquet.q9.tmp")  # a complete but unrenamed one
    (store.shards_dir / ".ghi.q8.parquet").write_bytes(b"PAR1")  # hidden, even with a .parquet suffix
    store.start_run("r1", experiment="test", spec_hash="h")
    (store.runs_dir / ".r1.json.k.tmp").write_text("{")
    con = store.connect()
    got = con.execute("SELECT * FROM results").df()
    assert len(got) == sum(len(f) for f in frames)
    expected = pd.concat(frames, ignore_index=True)
    assert sorted(got["tile_id"]) == sorted(expected["tile_id"])
    assert views.duplicate_rows(con).empty
    assert con.execute("SELECT run_id FROM runs").fetchall() == [("r1",)]
    # a shard added after connect is seen by the next query
    store.write_shard(shard_key(run="r1", batch=99), result_rows(tiles=["late"]))
    assert con.execute("SELECT count(*) FROM results WHERE tile_id = 'late'").fetchone()[0] > 0


def test_stale_temp_files_are_cleaned_on_open_fresh_ones_kept(tmp_path):
    store = ResultsStore(tmp_path)
    store.write_shard(shard_key(run="r1"), result_rows(tiles=2))
    stale = store.shards_dir / ".aaa.parquet.old.tmp"
    fresh = store.shards_dir / ".bbb.parquet.new.tmp"
    map_tmp = store.maps_dir / "r1" / "sr3" / ".t000.tif.zz.tmp"
    map_tmp.parent.mkdir(parents=True)
    for path in (stale, fresh, map_tmp):
        path.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(map_tmp, (old, old))
    ResultsStore(tmp_path)  # default grace: another writer may still own the fresh file
    assert not stale.exists() and not map_tmp.exists() and fresh.exists()
    assert ResultsStore(tmp_path).clean_temp(older_than_s=0) == 1
    assert not fresh.exists()
    assert store.has_shard(shard_key(run="r1"))


def test_empty_store_has_typed_empty_views(tmp_path):
    con = ResultsStore(tmp_path / "none").connect()
    for name in ("results", "conditions", "runs"):
        assert con.execute(f"SELECT count(*) FROM {name}").fetchone() == (0,)
    cols = [r[0] for r in con.execute("DESCRIBE results").fetchall()]
    assert cols[:3] == ["run_id", "experiment", "model"] and "created_at" in cols


def test_rows_filters_and_materialized_connection(tmp_path):
    store = ResultsStore(tmp_path)
    store.write_shard("a", result_rows(tiles=4, methods=("sr3", "sinsr")))
    got = store.rows({"method": "sinsr", "metric": ["psnr", "sam"]}, columns=["method", "metric", "value"])
    assert list(got.columns) == ["method", "metric", "value"]
    assert set(got["method"]) == {"sinsr"} and set(got["metric"]) == {"psnr", "sam"}
    assert len(got) == 4 * 2 * 2
    assert store.rows({"train_blocks": None}).shape[0] == len(result_rows(tiles=4, methods=("sr3", "sinsr")))
    with pytest.raises(ConfigError, match="not a results column"):
        store.rows({"psnr": 1})
    mcon = store.connect(materialize=True)
    assert mcon.execute("SELECT count(*) FROM results").fetchone()[0] == 4 * 2 * 2 * 3


def test_distinct_and_catalog_values_on_a_connection(tmp_path):
    store = ResultsStore(tmp_path)
    assert views.catalog_values(views.connect(tmp_path), ["model"]) is None  # no row yet
    store.write_shard("a", result_rows(tiles=3, methods=("sr3", "sinsr")))
    store.write_shard("b", result_rows(tiles=2, methods=("bicubic",), regime="none", run_id="r2"))
    with views.connected(tmp_path) as con:
        models = ["bicubic/none", "sinsr/synthetic-only", "sr3/synthetic-only"]
        assert views.distinct_values(con, "model") == models
        assert views.distinct_values(con, "tile_id", {"run_id": "r2"}) == ["t000", "t001"]
        assert views.domains_present(con, {"metric": "psnr"}) == ["simulated_cross_sensor", "synthetic"]
        found = views.catalog_values(con, ["run_id", "method", "metric"])
        with pytest.raises(ConfigError, match="not a results column"):
            views.distinct_values(con, "value; DROP TABLE results")
        with pytest.raises(ConfigError, match="unknown results column"):
            views.catalog_values(con, ["nope"])
    assert found == {"run_id": ["r1", "r2"], "method": ["bicubic", "sinsr", "sr3"],
                     "metric": ["lpips", "psnr", "sam"]}


def test_runs_start_resume_conflict_finish_and_view(tmp_path):
    store = ResultsStore(tmp_path)
    first = store.start_run("demo-1", experiment="demo", spec_hash="h1", extra={"device": "cpu"})
    again = store.start_run("demo-1", experiment="demo", spec_hash="h1")
    assert again == first  # resuming keeps the original start time
    with pytest.raises(ConfigError, match="already exists .* for spec h1"):
        store.start_run("demo-1", experiment="demo", spec_hash="h2")
    with pytest.raises(ConfigError, match="may only use"):
        store.start_run("../x", experiment="demo", spec_hash="h1")
    done = store.finish_run("demo-1")
    assert done.finished_at is not None and done.started_at == first.started_at
    assert store.runs() == [done]
    runs = store.connect().execute("SELECT run_id, spec_hash, finished_at FROM runs").df()
    expected = [{"run_id": "demo-1", "spec_hash": "h1", "finished_at": done.finished_at}]
    assert runs.to_dict("records") == expected
    with pytest.raises(ConfigError, match="never started"):
        store.finish_run("other")


def test_conditions_are_keyed_and_viewed(tmp_path):
    store = ResultsStore(tmp_path)
    cond = pd.DataFrame({"tile_id": ["t000", "t001"], "test_domain": "simulated_cross_sensor",
                         "dt_days": [2.0, 9.0], "shift_px": [0.1, 0.6]})
    assert store.write_conditions("sim", cond)
    assert store.write_conditions("sim", cond) is False
    assert store.has_conditions("sim") and store.completed_condition_keys() == {"sim"}
    got = views.conditions(store.connect())
    assert got.sort_values("tile_id")["dt_days"].tolist() == [2.0, 9.0]
    store.write_conditions("sim-again", cond.assign(dt_days=[2.0, 10.0]))
    with pytest.raises(InputError, match="conflicting condition records"):
        views.conditions(store.connect())


def test_map_paths_are_relative_and_stay_inside(tmp_path):
    store = ResultsStore(tmp_path)
    rel = store.map_relpath(run_id="r1", model="sr3/synthetic-only", test_domain="synthetic", tile_id="t 07",
                            kind="uncertainty")
    assert rel == "maps/r1/sr3__synthetic-only/synthetic/uncertainty/t_07.tif"
    assert store.resolve(rel) == (tmp_path / rel).resolve()
    assert store.map_path(run_id="r1", model="sr3/synthetic-only", test_domain="synthetic", tile_id="t 07",
                          kind="uncertainty") == store.resolve(rel)
    with pytest.raises(InputError, match="leaves the results store"):
        store.resolve("../outside.tif")
    with pytest.raises(InputError, match="references no file"):
        store.resolve("")
    rows = result_rows(tiles=1).assign(sr_path=rel)
    store.write_shard("with-map", rows)
    assert set(store.rows()["sr_path"]) == {rel}


def test_fingerprint_changes_with_new_shards(tmp_path):
    store = ResultsStore(tmp_path)
    empty = store.fingerprint()
    store.write_shard("a", result_rows(tiles=1))
    one = store.fingerprint()
    (store.shards_dir / ".tmpfile.tmp").write_bytes(b"x")
    assert store.fingerprint() == one != empty
    store.write_shard("b", result_rows(tiles=["x"]))
    assert store.fingerprint() != one


def test_views_union_shards_missing_a_newer_column(tmp_path):
    store = ResultsStore(tmp_path)
    store.write_shard("new", result_rows(tiles=2))
    old = pq.read_table(store.shard_path("new")).drop(["aggregate"])  # as written by an older schema
    old = old.replace_schema_metadata({b"mindgap.shard_key": b"old"})
    pq.write_table(old, store.shards_dir / "old.parquet")
    query = "SELECT aggregate, count(*) FROM results GROUP BY ALL ORDER BY ALL"
    got = store.connect().execute(query).fetchall()
    assert got == [("mean", len(old)), (None, len(old))]
    assert store.completed_keys() == {"new", "old"}
