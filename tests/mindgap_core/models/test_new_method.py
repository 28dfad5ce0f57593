"""A new SR method is one module (an SRModel subclass) plus one registry entry.

The toy method below is everything a new method writes: its class variables, a ``@register_to_config``
``__init__`` (its settings become ``model_index.json`` options with no further code), ``fresh_parts``,
``_sample`` and ``training_loss``. Registering it makes ``build_model``, ``resolve_config``, saving
and ``load_model`` (allow-list and safetensors checks included; experiments and ``mindgap infer``
load through it) work for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.models import MODEL_REGISTRY, build_model, load_model
from mindgap_core.models.base import MODEL_INDEX_NAME, PRESET_NAMES, SRModel, StepFn
from mindgap_core.models.presets import resolve_config

STATS = {"band_mean": [0.05, 0.08, 0.07, 0.25], "band_std": [0.03, 0.03, 0.04, 0.08]}


class ToyNet(ModelMixin, ConfigMixin):
    """One 3x3 convolution (a component: saved as config.json + safetensors)."""

    @register_to_config
    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ToyModel(SRModel):
    """n(up(LR)) + gain * ToyNet(n(up(LR))): the smallest learnt method."""

    method: ClassVar[str] = "toy"
    stochastic: ClassVar[bool] = False
    component_classes: ClassVar[dict[str, type]] = {"net": ToyNet}
    presets: ClassVar[dict[str, dict[str, Any]]] = {name: {"gain": 0.5} for name in PRESET_NAMES}

    @register_to_config
    def __init__(self, *, net: ToyNet, gain: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.net = net
        self.gain = gain

    @classmethod
    def fresh_parts(
        cls, config: Mapping[str, Any], channels: int, stats: Mapping[str, Sequence[float]]
    ) -> dict[str, Any]:
        return {"net": ToyNet(channels=channels), "gain": config["gain"]}

    def _predict(self, lr: torch.Tensor) -> torch.Tensor:
        up = self.upsample_normalized(lr)
        return up + self.gain * self.call(self.net, up)

    def _sample(
        self, lr: torch.Tensor, steps: int, generator: torch.Generator | None, on_step: StepFn
    ) -> torch.Tensor:
        on_step(1, 1)
        return self.denormalize(self._predict(lr))

    def training_loss(
        self, stage: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        return F.l1_loss(self._predict(lr), self.normalize(hr))


@pytest.fixture()
def toy_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODEL_REGISTRY, "toy", ToyModel)  # the one registry entry


def test_a_registered_method_builds_saves_and_loads(toy_registered: None, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("toy", {**resolve_config("toy", "tiny"), "gain": 0.25}, scale=2, stats=STATS)
    assert model.config["gain"] == 0.25 and model.band_mean == tuple(STATS["band_mean"])
    folder = model.save_pretrained(tmp_path / "toy")
    index = json.loads((folder / MODEL_INDEX_NAME).read_text())
    assert index["method"] == "toy" and index["options"] == {"gain": 0.25}
    assert index["components"] == {"net": [__name__, "ToyNet"]}
    lr = 0.05 + 0.2 * torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    loaded = load_model(folder)
    assert type(loaded) is ToyModel and loaded.gain == 0.25
    assert torch.equal(loaded.sample(lr), model.sample(lr))
    loss = loaded.training_loss("main", lr, F.interpolate(lr, scale_factor=2), torch.Generator())
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_a_registered_method_rejects_unknown_settings(toy_registered: None, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="toy: unknown option 'sharpen'"):
        build_model("toy", {"sharpen": 1.0}, scale=2)
    folder = build_model("toy", None, scale=2).save_pretrained(tmp_path / "toy")
    index = json.loads((folder / MODEL_INDEX_NAME).read_text())
    (folder / MODEL_INDEX_NAME).write_text(json.dumps({**index, "options": {"sharpen": 1.0}}))
    with pytest.raises(InputError, match="inconsistent model settings .*sharpen"):
        load_model(folder)


def test_an_unregistered_method_is_refused(tmp_path: Path) -> None:
    model = ToyModel(net=ToyNet(), scale=2)
    folder = model.save_pretrained(tmp_path / "toy")
    with pytest.raises(InputError, match="unknown method 'toy'"):
        load_model(folder)


def test_every_method_has_every_preset() -> None:
    for method, cls in MODEL_REGISTRY.items():
        assert set(cls.presets) == set(PRESET_NAMES), method
        build_model(method, resolve_config(method, "tiny"), scale=2)  # every preset key is known
