"""Every shipped demo model and adapter still loads and gives bit-identical outputs on a demo tile.

The references (``shipped_outputs.json``) were recorded with the code before the model and adapter
configs moved onto diffusers' ``ConfigMixin`` (see ``shipped_outputs.py`` for what is computed); the five
fixed-size diversity-series models were added when they were trained.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.mindgap_core.models.shipped_outputs import (
    ADAPTER_DOMAIN,
    MODELS_ROOT,
    REFERENCE_FILE,
    SR_DOMAIN,
    adapter_output,
    demo_tile,
    model_output,
    shipped_folders,
    summary,
)

REFERENCE = json.loads(REFERENCE_FILE.read_text())
MODELS = [p.relative_to(MODELS_ROOT).as_posix() for p in shipped_folders("model_index.json")]
ADAPTERS = [p.relative_to(MODELS_ROOT).as_posix() for p in shipped_folders("adapter_index.json")]


def test_every_shipped_folder_has_a_reference() -> None:
    assert len(MODELS) == 26 and len(ADAPTERS) == 3  # + the 5 fixed-size series models (recorded later)
    assert sorted(REFERENCE) == sorted(MODELS + ADAPTERS)


def _check(name: str, out: torch.Tensor) -> None:
    got, want = summary(out), REFERENCE[name]
    assert got["shape"] == want["shape"]
    corner_diff = np.abs(np.array(got["corner"]) - np.array(want["corner"])).max()
    assert got["sha256"] == want["sha256"], f"{name}: output changed (corner max |diff| {corner_diff:.3g})"


@pytest.fixture(scope="module")
def tiles() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {SR_DOMAIN: demo_tile(SR_DOMAIN), ADAPTER_DOMAIN: demo_tile(ADAPTER_DOMAIN)}


@pytest.mark.parametrize("name", MODELS)
def test_shipped_model_output_is_unchanged(name: str, tiles: dict) -> None:
    out, default_steps = model_output(MODELS_ROOT / name, tiles[SR_DOMAIN][0])
    assert default_steps == REFERENCE[name]["default_steps"]
    _check(name, out)


@pytest.mark.parametrize("name", ADAPTERS)
def test_shipped_adapter_output_is_unchanged(name: str, tiles: dict) -> None:
    lr, hr = tiles[ADAPTER_DOMAIN]
    _check(name, adapter_output(MODELS_ROOT / name, lr, hr))


@pytest.mark.parametrize("name", MODELS)
def test_shipped_model_index_is_rewritten_byte_for_byte(name: str) -> None:
    """The config written back from a loaded model is the shipped ``model_index.json`` (run ids hash it)."""
    from mindgap_core.models import load_model

    folder = MODELS_ROOT / name
    assert load_model(folder).to_json_string() == (folder / "model_index.json").read_text()


@pytest.mark.parametrize("name", ADAPTERS)
def test_shipped_adapter_index_is_rewritten_byte_for_byte(name: str) -> None:
    from mindgap_core.adapters.registry import load_adapter

    folder = MODELS_ROOT / name
    assert load_adapter(folder).to_json_string() == (folder / "adapter_index.json").read_text()
