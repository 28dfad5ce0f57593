"""Schema validation: defaults, casts, and clear errors naming the shard."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mindgap_core.errors import InputError
from mindgap_core.store import schema as sch
from tests.mindgap_core.analysis.synth import result_rows

SOURCE = "results shard 'run=r1/tiles=0'"


def rows(n_tiles: int = 3) -> pd.DataFrame:
    return result_rows(tiles=n_tiles).drop(columns=["experiment", "train_blocks", "options"])


def test_defaults_are_filled_and_types_canonical():
    table = sch.validate_results(rows(), SOURCE)
    assert table.schema.equals(sch.RESULTS_SCHEMA)
    frame = table.to_pandas()
    assert set(frame["aggregate"]) == {"mean"}
    assert set(frame["options"]) == {"{}"}
    assert set(frame["sr_path"]) == {""}
    assert frame["train_blocks"].isna().all()
    assert set(frame["code_version"]) == {__import__("mindgap_core").__version__}
    created = table.column("created_at")
    assert created.type == pa.timestamp("us", tz="UTC")
    age = dt.datetime.now(dt.UTC) - created[0].as_py()
    assert dt.timedelta(0) <= age < dt.timedelta(minutes=1)


def test_dict_options_become_sorted_json_and_naive_times_are_utc():
    frame = rows(1).assign(options=[{"steps": 20, "hist_match": True}] * 3 * 2,
                           created_at=pd.Timestamp("2024-05-01 12:00:00"))
    table = sch.validate_results(frame, SOURCE)
    assert table.column("options")[0].as_py() == '{"hist_match": true, "steps": 20}'
    assert table.column("created_at")[0].as_py() == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def test_integer_values_are_cast_to_float64():
    table = sch.validate_results(rows(1).assign(value=7), SOURCE)
    assert table.column("value").type == pa.float64()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["metric"]), r"missing required column\(s\) \['metric'\]"),
        (lambda f: f.assign(psnr_db=1.0), r"unknown column\(s\) \['psnr_db'\]"),
        (
            lambda f: f.assign(value=np.where(np.arange(len(f)) == 2, np.nan, f["value"])),
            r"'value' has missing \(null/NaN\) values in rows 2",
        ),
        (lambda f: f.assign(value=np.inf), "finite"),
        (lambda f: f.assign(value="high"), "'value' must be numeric"),
        (
            lambda f: f.assign(tile_id=[None] + list(f["tile_id"][1:])),
            r"'tile_id' has missing \(null/NaN\) values in rows 0",
        ),
        (lambda f: f.assign(method=""), "'method' has empty text"),
        (lambda f: f.assign(options="samples=4"), "'options' must hold a JSON object"),
        (lambda f: f.assign(options="[1, 2]"), "'options' must hold a JSON object"),
        (lambda f: f.assign(sr_path="/abs/sr.tif"), "relative to the store root"),
        (lambda f: f.assign(map_path="maps/../../x.tif"), "relative to the store root"),
        (lambda f: f.assign(run_id="run 1/x"), "run_id 'run 1/x' may only use"),
        (lambda f: f.assign(higher_better=np.arange(len(f)) % 2 == 0), r"both higher_better values"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "duplicate rows for the key"),
    ],
)
def test_invalid_rows_raise_input_error_naming_the_shard(change, message):
    with pytest.raises(InputError, match=message) as info:
        sch.validate_results(change(rows()), SOURCE)
    assert str(info.value).startswith(SOURCE + ": ")


def test_rows_differing_only_in_options_are_not_duplicates():
    base = rows(1)
    frame = pd.concat([
        base.assign(options='{"hist_match": true}'), base.assign(options='{"hist_match": false}')
    ])
    assert sch.validate_results(frame, SOURCE).num_rows == 2 * len(base)


def test_not_a_table_is_refused():
    with pytest.raises(InputError, match="DataFrame or a pyarrow Table"):
        sch.validate_results([1, 2, 3], SOURCE)  # type: ignore[arg-type]


def test_conditions_validate_and_reject_bad_simulator_params():
    good = pd.DataFrame({
        "tile_id": ["t0", "t1"], "test_domain": "simulated_cross_sensor", "dt_days": [3, 5.5],
        "simulator_params": ['{"psf_sigma": 1.2}', "{}"],
    })
    table = sch.validate_conditions(good, "conditions x")
    assert table.schema.equals(sch.CONDITIONS_SCHEMA)
    assert table.column("dt_days").to_pylist() == [3.0, 5.5]
    assert table.column("ndvi_mean").null_count == 2
    with pytest.raises(InputError, match="'simulator_params' must hold a JSON object"):
        sch.validate_conditions(good.assign(simulator_params="psf"), "conditions x")
    with pytest.raises(InputError, match="duplicate rows for the key"):
        sch.validate_conditions(good.assign(tile_id="t0"), "conditions x")


def test_schema_is_documented_in_the_module_docstring():
    for column in (*sch.RESULT_COLUMNS, *sch.CONDITION_COLUMNS):
        assert f"\n{column.name} " in sch.__doc__, column.name
