"""Model cards: an entry-point model from a test package loads and runs; every card that contradicts
its model (or is malformed) is refused with one message naming the card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import yaml

from mindgap_core.cli import main
from mindgap_core.errors import InputError
from mindgap_core.models import load_model
from mindgap_core.models.external import ExternalModel, probe_tile
from mindgap_core.models.registry import describe_model, list_models

ENTRY = "tests.fixtures.byo_sr.models:bicubic_sr"
CARD = {
    "name": "toy-bicubic", "format": "entry_point", "entry_point": ENTRY,
    "bands": ["red", "green", "blue", "nir"], "scale": 2,
    "input": {"normalisation": "none", "value_range": [0.0, 1.0]}, "stochastic": False,
}


def _card(folder: Path, **changes: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model_card.yaml"
    path.write_text(yaml.safe_dump({**CARD, **changes}))
    return path


def test_an_entry_point_model_runs_in_the_canonical_band_order(tmp_path: Path) -> None:
    model = load_model(_card(tmp_path / "m"))  # the folder's card
    assert isinstance(model, ExternalModel) and model.method == "toy-bicubic" and not model.stochastic
    assert model.band_names == ("blue", "green", "red", "nir") and model.scale == 2
    lr = probe_tile(model.band_names)
    expected = F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.equal(model.sample(lr)[:, 0], expected)
    # the model gets its bands in the card's order: its first band (red) is the one it scales
    red_first = load_model(_card(tmp_path / "g", kwargs={"gain": [1.25, 1.0, 1.0, 1.0]}))
    gains = torch.tensor([1.0, 1.0, 1.25, 1.0]).view(1, 4, 1, 1)  # canonical order: blue, green, red, nir
    assert torch.equal(red_first.sample(lr)[:, 0], expected * gains)


def test_a_stochastic_entry_point_is_seeded_by_mindgaps_generator(tmp_path: Path) -> None:
    card = _card(tmp_path / "s", stochastic=True, samples=3, kwargs={"noise": 0.01})
    model = load_model(card)
    assert model.stochastic and model.default_samples == 3
    lr = probe_tile(model.band_names)
    a = model.sample(lr, num_samples=2, generator=torch.Generator().manual_seed(5))
    b = model.sample(lr, num_samples=2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a[:, 0], a[:, 1])


# card change -> the one message it gets (after "<card>: ")
MISMATCHES: list[tuple[dict[str, Any], str]] = [
    ({"scale": 3}, "card says scale 3 but the model turns 32x32 into 64x64 (scale 2)"),
    ({"kwargs": {"out_bands": 3}}, "card lists 4 bands (red, green, blue, nir) but the model returns 3"),
    ({"kwargs": {"gain": 10000}},
     "output on the probe tile spans [217.2, 3655], outside input.value_range [0, 1]"),
    ({"input": {"normalisation": "scale", "factor": 10000, "value_range": [0, 1]}},
     "the probe tile in the card's input units spans [229.7, 3622], outside input.value_range [0, 1]"),
    ({"input": {"normalisation": "scale", "factor": 10000, "value_range": [0, 10000]},
      "kwargs": {"clip": 1.0}},
     "differs from the probe tile by 100% (limit 50%): not a super-resolution of its input"),
    ({"kwargs": {"noise": 0.01}}, "card says deterministic but two runs on the probe tile differ"),
    ({"stochastic": True}, "card says stochastic but draws with two different seeds are identical"),
    ({"stochastic": True, "entry_point": "tests.fixtures.byo_sr.models:unseeded_noise_sr"},
     "two draws with the same seed differ"),
    ({"entry_point": "tests.fixtures.byo_sr.models:broken_factory"},
     "failed: FileNotFoundError: weights.pt not found"),
    ({"entry_point": "tests.fixtures.byo_sr.nowhere:f"}, "cannot import 'tests.fixtures.byo_sr.nowhere'"),
    ({"name": "regression"}, "name 'regression' is a MindGap method"),
    ({"scale": 0}, "scale must be a positive integer, got 0"),
    ({"bands": ["red", "swir16"]}, "unknown bands ['swir16']"),
    ({"stochastic": False, "samples": 4}, "samples is 4 but the model is deterministic"),
    ({"format": "onnx"}, "format 'onnx' takes a 'file', not 'entry_point'/'kwargs'"),
    ({"input": {"normalisation": "standardise", "mean": [0.1], "std": [1, 1, 1, 1]}},
     "input.mean needs one number per band (4)"),
    ({"colour": "blue"}, "unknown keys ['colour']"),
]


@pytest.mark.parametrize(("change", "message"), MISMATCHES)
def test_a_card_that_contradicts_its_model_is_refused(tmp_path: Path, change: dict, message: str) -> None:
    card = _card(tmp_path / "bad", **change)
    with pytest.raises(InputError) as info:
        load_model(card)
    assert str(info.value).startswith(f"{card}: ") and message in str(info.value)


def test_a_bad_card_is_one_line_from_mindgap_infer(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    card = _card(tmp_path / "bad", scale=4)
    code = main(["infer", "--model", str(card), "--input", str(tmp_path / "in.tif"),
                 "--out", str(tmp_path / "o.tif")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert str(card) in err and "card says scale 4 but the model turns 32x32 into 64x64" in err


def test_malformed_cards_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(InputError, match=f"{bad}: not valid YAML"):
        load_model(bad)
    missing = _card(tmp_path / "nofile", format="torchscript", file="model.pt", entry_point=None)
    text = yaml.safe_load(missing.read_text())
    del text["entry_point"]
    missing.write_text(yaml.safe_dump(text))
    with pytest.raises(InputError, match="file 'model.pt' does not exist"):
        load_model(missing)
    with pytest.raises(InputError, match="no such model folder"):
        load_model(tmp_path / "nothing-here")


def test_cards_are_described_and_listed_without_running_them(tmp_path: Path) -> None:
    _card(tmp_path / "zoo" / "a")
    _card(tmp_path / "zoo" / "b", name="regression")  # refused: listed as a problem
    (tmp_path / "zoo" / "c").mkdir()
    _card(tmp_path / "zoo" / "d", name="slow-one", kwargs={"gain": 10000})  # not probed by listing
    listing = list_models(tmp_path / "zoo")
    assert [m.label for m in listing.models] == ["toy-bicubic", "slow-one"]
    assert len(listing.problems) == 1 and "name 'regression' is a MindGap method" in listing.problems[0]
    info = describe_model(tmp_path / "zoo" / "a")
    assert (info.kind, info.method, info.scale, info.band_names) == (
        "entry_point", "toy-bicubic", 2, ("blue", "green", "red", "nir"))
    demo_models = Path(__file__).resolve().parents[3] / "data" / "demo" / "models"
    shipped = list_models(demo_models)
    assert len(shipped.models) == len(list(demo_models.rglob("model_index.json"))) > 20
    assert not shipped.problems
    assert {m.kind for m in shipped.models} == {"mindgap"}
