"""The residual reading of the UNet output (SR3, ResShift, SinSR): y + s * F, stored and checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mindgap_core.errors import ConfigError
from mindgap_core.models import build_model, load_model
from mindgap_core.models.base import MODEL_INDEX_NAME, upsample
from mindgap_core.models.presets import resolve_config
from mindgap_core.models.resshift import ResShiftModel
from mindgap_core.models.sinsr import SinSRModel

STATS = {"band_mean": [0.05, 0.08, 0.07, 0.25], "band_std": [0.1, 0.1, 0.1, 0.1],  # |n(y)| < clip range
         "residual_std": [0.2, 0.3, 0.4, 0.5]}
METHODS = ("sr3", "resshift", "sinsr")


def _tiny(method: str, **overrides: object):
    torch.manual_seed(0)
    return build_model(method, {**resolve_config(method, "tiny"), **overrides}, scale=2, stats=STATS)


def _lr() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return F.avg_pool2d(0.05 + 0.2 * torch.rand(1, 4, 16, 16, generator=g), 2)


def _zero_output(model) -> None:
    with torch.no_grad():
        model.unet.conv_out.weight.zero_()
        model.unet.conv_out.bias.zero_()


@pytest.mark.parametrize("method", METHODS)
def test_residual_output_starts_from_bicubic(method: str) -> None:
    """With a zero UNet output the residual reading is y itself, so every sample is bicubic."""
    model = _tiny(method).eval()
    assert model.residual_scale == tuple(STATS["residual_std"])
    _zero_output(model)
    lr = _lr()
    out = model.sample(lr, num_samples=2, steps=3, generator=torch.Generator().manual_seed(0))
    expected = upsample(lr, 2)
    for k in range(2):
        torch.testing.assert_close(out[:, k], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_image_output_with_zero_unet_is_not_bicubic(method: str) -> None:
    """The original reading: a zero UNet output is the per-band mean image (model space 0)."""
    model = _tiny(method, residual_output="image").eval()
    assert model.residual_scale is None
    _zero_output(model)
    out = model.sample(_lr(), num_samples=1, steps=3, generator=torch.Generator().manual_seed(0))
    mean = torch.tensor(STATS["band_mean"]).view(1, 4, 1, 1).expand(1, 4, 16, 16)
    torch.testing.assert_close(out[:, 0], mean, atol=1e-5, rtol=0)


def test_unet_state_scales_the_output_per_band() -> None:
    model = _tiny("sr3")
    x = torch.randn(1, 4, 16, 16)
    y = torch.randn(1, 4, 16, 16)
    t = torch.tensor([10])
    raw = model.call(model.unet, torch.cat([x, y], dim=1), t)
    scale = torch.tensor(STATS["residual_std"]).view(1, 4, 1, 1)
    torch.testing.assert_close(model.unet_state(x, y, t), y + raw * scale)


@pytest.mark.parametrize("method", METHODS)
def test_parameterisation_is_saved_and_old_checkpoints_load_as_image(method: str, tmp_path: Path) -> None:
    model = _tiny(method).eval()
    folder = model.save_pretrained(tmp_path / method)
    index = json.loads((folder / MODEL_INDEX_NAME).read_text())
    assert index["options"]["residual_scale"] == STATS["residual_std"]
    assert load_model(folder).residual_scale == tuple(STATS["residual_std"])

    del index["options"]["residual_scale"]  # a checkpoint written before the option existed
    (folder / MODEL_INDEX_NAME).write_text(json.dumps(index))
    assert load_model(folder).residual_scale is None


def test_bad_parameterisation_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="residual_output must be one of"):
        _tiny("sr3", residual_output="skip")
    with pytest.raises(ConfigError, match='needs prediction_type "sample"'):
        _tiny("sr3", scheduler={**resolve_config("sr3", "tiny")["scheduler"], "prediction_type": "epsilon"})
    model = _tiny("sr3")
    with pytest.raises(ConfigError, match="residual_scale needs 4 positive values"):
        type(model)(unet=model.unet, scheduler=model.scheduler, residual_scale=[0.3, 0.3], scale=2)


def test_sinsr_student_inherits_and_checks_the_teachers_parameterisation() -> None:
    teacher = _tiny("resshift")
    assert isinstance(teacher, ResShiftModel)
    student = SinSRModel.from_teacher(teacher, resolve_config("sinsr", "tiny"))
    assert student.residual_scale == teacher.residual_scale
    image_teacher = _tiny("resshift", residual_output="image")
    with pytest.raises(ConfigError, match="output parameterisations"):
        student.attach_teacher(image_teacher)
