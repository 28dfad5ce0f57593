"""Bring your own model: TorchScript and ONNX exports of the shipped regression model, and an
entry-point model, run everywhere a shipped model does and score like the originals.

TorchScript scores are identical to the original's; ONNX (onnxruntime's CPU kernels) agrees within
``ONNX_TOLERANCE`` per metric (measured: see the report of ``test_exports_score_like_the_original``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
import yaml

from mindgap_core.cli import main
from mindgap_core.errors import ConfigError
from mindgap_core.experiments.runner import run_experiment
from mindgap_core.experiments.spec import load_experiment
from mindgap_core.models import load_model
from mindgap_core.models.export import export_model
from mindgap_core.models.registry import list_models
from mindgap_core.store.results import ResultsStore
from tests.fixtures.experiments import DEMO_MANIFEST, write_experiment

REGRESSION = Path(__file__).resolve().parents[3] / "data" / "demo" / "models" / "regression" / "synthetic"
#: largest |ONNX - original| per metric allowed (PSNR dB, SSIM, SAM degrees); measured values are far smaller
ONNX_TOLERANCE = {"psnr": 1e-4, "ssim": 1e-6, "sam": 1e-4}
ENTRY_CARD = {
    "name": "toy-bicubic", "format": "entry_point", "entry_point": "tests.fixtures.byo_sr.models:bicubic_sr",
    "bands": ["blue", "green", "red", "nir"], "scale": 2,
    "input": {"normalisation": "none", "value_range": [0.0, 1.0]}, "stochastic": False,
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    folders = {}
    for fmt in ("torchscript", "onnx"):
        result = export_model(REGRESSION, fmt, root / fmt)
        assert result.card == root / fmt / "model_card.yaml"
        folders[fmt] = result.folder
    entry = root / "entry"
    entry.mkdir()
    (entry / "model_card.yaml").write_text(yaml.safe_dump(ENTRY_CARD))
    folders["entry_point"] = entry
    return folders


def test_export_writes_a_card_that_describes_the_model(exports: dict[str, Path]) -> None:
    card = yaml.safe_load((exports["onnx"] / "model_card.yaml").read_text())
    assert card["name"] == "regression-synthetic-onnx" and card["file"] == "model.onnx"
    assert (card["scale"], card["stochastic"], card["regime"]) == (2, False, "synthetic")
    listing = list_models(exports["onnx"].parent)
    assert {m.kind for m in listing.models} == {"torchscript", "onnx", "entry_point"}
    assert not listing.problems


def test_export_refuses_stochastic_models_and_used_folders(exports: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sr3 is stochastic"):
        export_model(REGRESSION.parents[1] / "sr3" / "synthetic", "onnx", tmp_path / "sr3")
    assert not (tmp_path / "sr3").exists() and not list(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="exists and is not an empty folder"):
        export_model(REGRESSION, "onnx", exports["onnx"])


def test_the_export_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bicubic = REGRESSION.parents[1] / "bicubic" / "synthetic"
    assert main(["export", "--model", str(bicubic), "--format", "torchscript", "--out", str(tmp_path / "b"),
                 "--name", "my-bicubic"]) == 0
    assert "max |export - original| on the probe tile: 0" in capsys.readouterr().out
    assert load_model(tmp_path / "b").method == "my-bicubic"
    sr3 = REGRESSION.parents[1] / "sr3" / "synthetic"
    assert main(["export", "--model", str(sr3), "--format", "onnx", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sr3 is stochastic" in err and not (tmp_path / "s").exists()


def _scores(results: Path) -> pd.DataFrame:
    keys = ["model", "test_domain", "tile_id", "band", "metric", "aggregate"]
    return ResultsStore(results).rows().set_index(keys)["value"].sort_index()


def test_exports_score_like_the_original(exports: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    path = write_experiment(tmp_path, models=[
        {"name": "bicubic", "method": "bicubic"},
        {"name": "regression/synthetic", "checkpoint": str(REGRESSION)},
        {"name": "torchscript", "checkpoint": str(exports["torchscript"] / "model_card.yaml")},
        {"name": "onnx", "checkpoint": str(exports["onnx"])},
        {"name": "entry", "checkpoint": str(exports["entry_point"])},
    ])
    experiment = load_experiment(path)
    assert [m.method for m in experiment.models[2:]] == [
        "regression-synthetic-torchscript", "regression-synthetic-onnx", "toy-bicubic"]
    assert experiment.models[3].regime == "synthetic" and experiment.models[4].regime == "unknown"
    run_experiment(experiment, tmp_path / "results", device="cpu")
    scores = _scores(tmp_path / "results")
    original = scores.xs("regression/synthetic", level="model")
    assert set(original.index.get_level_values("metric")) == {"psnr", "ssim", "sam"}
    assert len(set(original.index.droplevel([2, 3, 4]))) == 2 * 12  # two test domains, 12 tiles each
    pd.testing.assert_series_equal(scores.xs("torchscript", level="model"), original)  # identical
    onnx = scores.xs("onnx", level="model")
    worst = (onnx - original).abs().groupby(level="metric").max()
    with capsys.disabled():  # shown with `pytest -s`: the measured agreement
        print("\nmax |ONNX - original| per metric:", worst.to_dict())
    for metric, tolerance in ONNX_TOLERANCE.items():
        assert worst[metric] <= tolerance, (metric, worst[metric])
    pd.testing.assert_series_equal(scores.xs("entry", level="model"), scores.xs("bicubic", level="model"))

    capsys.readouterr()
    gap = ["gap", "--results", str(tmp_path / "results"), "--metric", "psnr", "--csv", "--n-boot", "50"]
    assert main(gap) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    beside = {"regression-synthetic-torchscript", "regression-synthetic-onnx", "toy-bicubic", "regression"}
    assert beside <= set(table["method"])


def test_editing_a_card_is_a_new_run(exports: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "ts"
    folder.mkdir()
    for name in ("model.pt", "model_card.yaml"):
        (folder / name).write_bytes((exports["torchscript"] / name).read_bytes())
    path = write_experiment(tmp_path, models=[{"name": "ts", "checkpoint": str(folder / "model_card.yaml")}])
    before = load_experiment(path).run_id
    card = yaml.safe_load((folder / "model_card.yaml").read_text())
    (folder / "model_card.yaml").write_text(yaml.safe_dump({**card, "regime": "synthetix"}))  # same size
    assert load_experiment(path).run_id != before


def test_mindgap_infer_with_an_export_writes_the_originals_pixels(
    exports: dict[str, Path], tmp_path: Path
) -> None:
    lr = DEMO_MANIFEST.parent / "tiles" / "lr_simulated_cross_sensor" / "r1c1.tif"
    outputs = {}
    for name, model in (("original", REGRESSION), ("torchscript", exports["torchscript"])):
        out = tmp_path / f"{name}.tif"
        assert main(["infer", "--model", str(model), "--input", str(lr), "--out", str(out), "--tile", "16",
                     "--overlap", "4", "--device", "cpu"]) == 0
        with rasterio.open(out) as src:
            outputs[name] = src.read()
    assert np.array_equal(outputs["original"], outputs["torchscript"])
    exported = load_model(exports["torchscript"])
    assert exported.sample(torch.zeros(1, 4, 5, 7)).shape == (1, 1, 4, 10, 14)  # any input size
