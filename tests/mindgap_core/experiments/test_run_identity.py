"""The run id follows what is scored (settings, checkpoint and manifest contents), not where the
checkout lives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import yaml

from mindgap_core.experiments.spec import folder_fingerprint, load_experiment
from mindgap_core.models.registry import build_model
from tests.fixtures.experiments import DEMO_MANIFEST


def _project(folder: Path) -> Path:
    """An experiment folder with its own manifest copy and a checkpoint, referenced relatively."""
    folder.mkdir()
    shutil.copy(DEMO_MANIFEST, folder / "manifest.parquet")
    torch.manual_seed(0)
    model = build_model("regression", {"features": 8, "blocks": 1}, scale=2)
    model.save_pretrained(folder / "models" / "m")
    info = {"finished_at": "t0", "regime": "synthetic"}
    (folder / "models" / "m" / "training.json").write_text(json.dumps(info))
    spec = {
        "name": "ident", "metrics": ["psnr"],
        "test_domains": [{"name": "synthetic", "manifest": "manifest.parquet", "domain": "synthetic"}],
        "models": [{"name": "bicubic", "method": "bicubic"}, {"name": "m", "checkpoint": "models/m"}],
    }
    (folder / "experiment.yaml").write_text(yaml.safe_dump(spec))
    return folder / "experiment.yaml"


def test_moving_the_checkout_keeps_the_run_id(tmp_path: Path) -> None:
    first = load_experiment(_project(tmp_path / "a"))
    shutil.copytree(tmp_path / "a", tmp_path / "elsewhere" / "b")
    moved = load_experiment(tmp_path / "elsewhere" / "b" / "experiment.yaml")
    assert moved.models[1].checkpoint != first.models[1].checkpoint
    assert moved.run_id == first.run_id


def test_retraining_in_place_or_a_new_manifest_is_a_new_run(tmp_path: Path) -> None:
    path = _project(tmp_path / "a")
    before = load_experiment(path).run_id
    training = tmp_path / "a" / "models" / "m" / "training.json"
    fingerprint = folder_fingerprint(training.parent)
    training.write_text(json.dumps({"finished_at": "t1", "regime": "synthetic"}))  # retrained
    assert folder_fingerprint(training.parent) != fingerprint
    retrained = load_experiment(path).run_id
    assert retrained != before

    weights = next((tmp_path / "a" / "models" / "m").rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes() + b"\0")  # other weights (size differs)
    assert load_experiment(path).run_id != retrained

    from mindgap_core.data.manifest import read_records, write_manifest

    manifest = tmp_path / "a" / "manifest.parquet"
    write_manifest(read_records(manifest)[:-1], manifest)  # one pair less
    assert load_experiment(path).run_id not in (before, retrained)


def test_per_model_test_domains_restrict_the_work_and_the_run_id(tmp_path: Path) -> None:
    from mindgap_core.errors import InputError
    from mindgap_core.experiments.runner import plan_units
    from mindgap_core.experiments.spec import ModelEntry

    path = _project(tmp_path / "a")
    spec = yaml.safe_load(path.read_text())
    cross = {"name": "cross", "manifest": "manifest.parquet", "domain": "simulated_cross_sensor"}
    spec["test_domains"].append(cross)
    path.write_text(yaml.safe_dump(spec))
    both = load_experiment(path)
    assert all(m.test_domains is None for m in both.models)
    assert {(u.model.name, u.domain.name) for u in plan_units(both)} == {
        (m, d) for m in ("bicubic", "m") for d in ("synthetic", "cross")}
    spec["models"][1]["test_domains"] = ["cross"]
    path.write_text(yaml.safe_dump(spec))
    one = load_experiment(path)
    assert one.models[1].test_domains == ("cross",) and one.models[1].scores("cross")
    assert not one.models[1].scores("synthetic")
    assert ("m", "synthetic") not in {(u.model.name, u.domain.name) for u in plan_units(one)}
    assert one.run_id != both.run_id
    assert ModelEntry("x", "bicubic", "none", "none", None, None).scores("anything")
    spec["models"][1]["test_domains"] = ["nowhere"]
    path.write_text(yaml.safe_dump(spec))
    try:
        load_experiment(path)
        raise AssertionError("an unknown test domain must be refused")
    except InputError as exc:
        assert "test_domains ['nowhere'] must name test domains" in str(exc)
