"""The post-hoc spread factor (the calibration gap's remedy): fitted on validation tiles by
``mindgap spread-scale``, it brings their coverage toward nominal; an experiment entry with
``spread_scale`` stores the recalibrated calibration rows beside the model's own, which stay unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mindgap_core.cli import main
from mindgap_core.errors import InputError
from mindgap_core.experiments.runner import run_experiment
from mindgap_core.experiments.spec import load_experiment, recalibrated_name
from mindgap_core.store.results import ResultsStore
from tests.fixtures.experiments import write_experiment

METRICS = ["psnr", "coverage_50", "coverage_90", "calibration_error", "spread"]


@pytest.fixture(scope="module")
def noisy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random SR3: its samples are stochastic and far from calibrated."""
    from mindgap_core.models.presets import resolve_config
    from mindgap_core.models.registry import build_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sr3") / "sr3_random"
    return build_model("sr3", resolve_config("sr3", "tiny"), scale=2).save_pretrained(folder)


def _experiment(folder: Path, model: Path, **entry) -> Path:
    return write_experiment(folder, models=[{"name": "sr3/random", "checkpoint": str(model), **entry}],
                            metrics=METRICS, samples=3, steps=2, batch_size=12)


def _error(coverage: dict[str, float]) -> float:
    return float(np.mean([abs(c - float(level)) for level, c in coverage.items()]))


def test_fit_on_val_then_recalibrated_rows(noisy_model: Path, tmp_path: Path, capsys) -> None:
    plain = _experiment(tmp_path / "plain", noisy_model)
    out = tmp_path / "calibration" / "sr3.json"
    code = main(["spread-scale", "--experiment", str(plain), "--model", "sr3/random", "--domain",
                 "simulated_cross_sensor", "--out", str(out)])
    assert code == 0
    record = json.loads(out.read_text())
    assert record["split"] == "val" and record["tiles"] == 8 and record["scale"] > 0
    assert _error(record["coverage_after"]) < _error(record["coverage_before"])  # the fit helps where fitted

    scaled = _experiment(tmp_path / "scaled", noisy_model, spread_scale=str(out))
    experiment = load_experiment(scaled)
    assert experiment.models[0].spread_scale == pytest.approx(record["scale"])
    assert experiment.run_id != load_experiment(plain).run_id
    run_experiment(experiment, tmp_path / "results", device="cpu")
    run_experiment(load_experiment(plain), tmp_path / "plain_results", device="cpu")
    rows = ResultsStore(tmp_path / "results").rows({})
    own = rows[rows["model"] == "sr3/random"].drop(columns=["run_id"]).reset_index(drop=True)
    before = ResultsStore(tmp_path / "plain_results").rows({}).drop(columns=["run_id"]).reset_index(drop=True)
    cols = ["tile_id", "test_domain", "band", "metric", "value"]
    key = ["tile_id", "test_domain", "band", "metric"]
    np.testing.assert_array_equal(own[cols].sort_values(key)["value"], before[cols].sort_values(key)["value"])
    recal = rows[rows["model"] == recalibrated_name("sr3/random")]
    assert set(recal["metric"]) == {"coverage_50", "coverage_90", "calibration_error", "spread"}
    assert set(recal["regime"]) == {own["regime"].iloc[0] + "_recalibrated"}
    merged = recal.merge(own, on=key, suffixes=("_recal", ""))
    spread = merged[merged["metric"] == "spread"]
    np.testing.assert_allclose(spread["value_recal"], record["scale"] * spread["value"], rtol=1e-5)


def test_fitting_on_the_scored_split_or_a_deterministic_model_is_refused(noisy_model: Path, tmp_path: Path,
                                                                          capsys) -> None:
    path = _experiment(tmp_path, noisy_model)
    out = tmp_path / "x.json"
    assert main(["spread-scale", "--experiment", str(path), "--model", "sr3/random", "--domain", "synthetic",
                 "--split", "test", "--out", str(out)]) == 2
    assert "grade itself" in capsys.readouterr().err and not out.exists()
    assert main(["spread-scale", "--experiment", str(path), "--model", "nope", "--domain", "synthetic",
                 "--out", str(out)]) == 2
    assert "'nope' is not a model" in capsys.readouterr().err
    det = write_experiment(tmp_path / "det", samples=2, batch_size=12)
    assert main(["spread-scale", "--experiment", str(det), "--model", "regression/random", "--domain",
                 "synthetic", "--out", str(out)]) == 2
    assert "deterministic" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("value", ["missing.json", -1.0, "0", True])
def test_bad_spread_scale_entries_name_the_model(noisy_model: Path, tmp_path: Path, value) -> None:
    path = _experiment(tmp_path, noisy_model, spread_scale=value)
    with pytest.raises(InputError, match="sr3/random.*spread_scale"):
        load_experiment(path)
