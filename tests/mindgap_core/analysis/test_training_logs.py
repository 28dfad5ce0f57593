"""Finding the loss logs of a run's models without importing torch."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from mindgap_core.analysis import training_logs as tl
from mindgap_core.errors import InputError


def _model(folder, regime, losses=None, blocks=None):
    folder.mkdir(parents=True)
    (folder / "training.json").write_text(json.dumps({"method": "sr3", "regime": regime, "blocks": blocks,
                                                      "train_domains": ["synthetic"]}))
    if losses is not None:
        lines = ["step,loss,lr,wall_s"] + [f"{i + 1},{v},0.0001,{i * 0.5}" for i, v in enumerate(losses)]
        (folder / "loss.csv").write_text("\n".join(lines) + "\n")
    return folder


def _store(tmp_path, spec_path):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    (runs / "r1.json").write_text(json.dumps({"run_id": "r1", "extra": {"spec": str(spec_path)}}))
    return tmp_path / "results"


def test_run_record_to_loss_logs(tmp_path) -> None:
    _model(tmp_path / "models" / "a", "synthetic", [1.0, 0.5, 0.25])
    _model(tmp_path / "models" / "b", "real", None)
    spec = tmp_path / "experiment.yaml"
    spec.write_text(yaml.safe_dump({"models": [{"name": "bicubic", "method": "bicubic"},
                                               {"name": "sr3/syn", "checkpoint": "models/a"},
                                               {"name": "sr3/real", "checkpoint": "models/b"},
                                               {"name": "gone", "checkpoint": "models/missing"}]}))
    store = _store(tmp_path, spec)
    folders = tl.run_model_folders(store, "r1")
    assert folders == {"sr3/syn": tmp_path / "models" / "a", "sr3/real": tmp_path / "models" / "b"}
    logs = tl.loss_logs(folders)
    assert logs["model"].unique().tolist() == ["sr3/syn"]
    assert logs["loss"].tolist() == [1.0, 0.5, 0.25] and logs["regime"].iloc[0] == "synthetic"
    assert logs["train_domain"].iloc[0] == "synthetic"
    assert tl.models_without_logs(folders) == ["sr3/real"]
    assert tl.run_model_folders(store, "unknown") == {}


def test_moved_spec_is_found_next_to_the_store(tmp_path) -> None:
    _model(tmp_path / "models" / "a", "synthetic", [1.0])
    spec = {"models": [{"name": "x", "checkpoint": "models/a"}]}
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(spec))
    store = _store(tmp_path, "/elsewhere/on/another/machine/experiment.yaml")
    assert tl.spec_path(store, "r1") == tmp_path / "experiment.yaml"
    assert list(tl.run_model_folders(store, "r1")) == ["x"]


def test_scan_and_bad_logs(tmp_path) -> None:
    _model(tmp_path / "sr3" / "synthetic", "synthetic", [2.0, 1.0], blocks=None)
    _model(tmp_path / "sr3" / "real", "real", [3.0], blocks=4)
    found = tl.scan_model_folders(tmp_path)
    assert sorted(found) == ["sr3/real", "sr3/synthetic"]
    assert tl.loss_logs(found).query("model == 'sr3/real'")["blocks"].tolist() == [4]
    assert tl.scan_model_folders(tmp_path / "nowhere") == {}
    assert tl.loss_logs({}).columns.tolist() == list(tl.LOG_COLUMNS)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a MindGap loss log"):
        tl.read_loss_csv(tmp_path / "bad.csv")
    assert isinstance(tl.read_loss_csv(tmp_path / "absent.csv"), pd.DataFrame)


def test_file_names_match_the_trainer() -> None:
    from mindgap_core.train import trainer

    assert (tl.TRAINING_JSON, tl.LOSS_CSV) == (trainer.TRAINING_JSON, trainer.LOSS_CSV)
