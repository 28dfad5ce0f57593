"""Every method: tiny random model, one training step, a 2-step sample, save/load round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mindgap_core.errors import InputError
from mindgap_core.models import MODEL_REGISTRY, build_model, load_model
from mindgap_core.models.base import MODEL_INDEX_NAME
from mindgap_core.models.checkpoint import WEIGHTS_NAME
from mindgap_core.models.presets import resolve_config

METHODS = sorted(MODEL_REGISTRY)
STATS = {"band_mean": [0.05, 0.08, 0.07, 0.25], "band_std": [0.03, 0.03, 0.04, 0.08],
         "residual_std": [0.3, 0.3, 0.3, 0.3]}


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr = 0.05 + 0.2 * torch.rand(2, 4, 16, 16, generator=g)
    return F.avg_pool2d(hr, 2), hr


def _tiny(method: str):
    torch.manual_seed(0)
    return build_model(method, resolve_config(method, "tiny"), scale=2, stats=STATS)


@pytest.mark.parametrize("method", METHODS)
def test_train_step_sample_and_round_trip(method: str, tmp_path: Path) -> None:
    model = _tiny(method)
    lr, hr = _batch()
    assert model.num_parameters() < 30_000  # tiny: a few thousand parameters per network
    stages = model.plan_stages(4, pretrained=False)
    assert sum(n for _, n in stages) == (0 if method == "bicubic" else 4)
    modules = model.training_modules()
    for stage, _ in stages:  # one optimiser step per stage changes the trained weights
        names = model.trainable(stage)
        params = [p for n in names for p in modules[n].parameters()]
        before = [p.detach().clone() for p in params]
        opt = torch.optim.AdamW(params, lr=1e-3)
        loss = model.training_loss(stage, lr, hr, torch.Generator().manual_seed(1))
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
        opt.step()
        assert any(not torch.equal(b, p) for b, p in zip(before, params, strict=True))
        model.end_stage(stage, hr, lr)
    model.eval()

    out = model.sample(lr, num_samples=2, steps=2, generator=torch.Generator().manual_seed(7))
    assert out.shape == (2, 2, 4, 32 // 2, 32 // 2) and out.dtype == torch.float32 and out.device == lr.device
    assert torch.isfinite(out).all()
    if model.stochastic:
        assert not torch.equal(out[:, 0], out[:, 1])  # two samples differ
    else:
        assert torch.equal(out[:, 0], out[:, 1])

    folder = model.save_pretrained(tmp_path / method)
    index = json.loads((folder / MODEL_INDEX_NAME).read_text())
    assert index["method"] == method and index["scale"] == 2
    assert index["band_names"] == ["blue", "green", "red", "nir"]
    for name in model.networks():
        assert (folder / name / WEIGHTS_NAME).is_file() and (folder / name / "config.json").is_file()
    loaded = load_model(folder)
    assert type(loaded) is type(model) and loaded.band_mean == model.band_mean
    again = loaded.sample(lr, num_samples=2, steps=2, generator=torch.Generator().manual_seed(7))
    assert torch.equal(out, again)


def test_bicubic_is_torch_bicubic_and_regression_is_deterministic() -> None:
    lr, _ = _batch()
    bic = _tiny("bicubic")
    expected = F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.allclose(bic.sample(lr)[:, 0], expected)
    reg = _tiny("regression")
    a = reg.sample(lr, generator=torch.Generator().manual_seed(1))
    b = reg.sample(lr, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


@pytest.mark.parametrize("method", ["sr3", "ldm_sr"])
def test_any_input_size_is_padded_and_cropped(method: str) -> None:
    model = _tiny(method).eval()
    lr = 0.1 + 0.05 * torch.rand(1, 4, 5, 7)
    out = model.sample(lr, steps=1, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 1, 4, 10, 14)


def test_diffusion_samples_reproducible_with_generator() -> None:
    model = _tiny("resshift").eval()
    lr, _ = _batch()
    a = model.sample(lr, steps=3, generator=torch.Generator().manual_seed(3))
    b = model.sample(lr, steps=3, generator=torch.Generator().manual_seed(3))
    c = model.sample(lr, steps=3, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    calls = []
    model.sample(lr, steps=3, on_step=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_ldm_latent_scaling_after_autoencoder_stage() -> None:
    model = _tiny("ldm_sr")
    lr, hr = _batch()
    model.end_stage("autoencoder", hr, lr)
    z = model.encode(hr)
    assert float(z.detach().std()) == pytest.approx(1.0, rel=1e-3)
    assert model.plan_stages(10, pretrained=True) == [("diffusion", 10)]
    assert [s for s, _ in model.plan_stages(10, pretrained=False)] == ["autoencoder", "diffusion"]


@pytest.mark.parametrize("method", ["srdiff", "ldm_sr", "sinsr"])
def test_load_in_bfloat16_still_returns_float32(method: str, tmp_path: Path) -> None:
    folder = _tiny(method).save_pretrained(tmp_path / method)
    model = load_model(folder, device="cpu", dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    lr, _ = _batch()
    out = model.sample(lr, steps=2, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_wrong_band_count_is_an_input_error() -> None:
    model = _tiny("sr3")
    with pytest.raises(InputError, match="3 bands but this sr3 model takes 4"):
        model.sample(torch.rand(1, 3, 8, 8))
    with pytest.raises(InputError, match="expected a"):
        model.sample(torch.rand(3, 8, 8))


@pytest.fixture()
def saved_sr3(tmp_path: Path) -> Path:
    return _tiny("sr3").save_pretrained(tmp_path / "sr3")


def test_load_missing_folder_and_index(tmp_path: Path, saved_sr3: Path) -> None:
    with pytest.raises(InputError, match="no such model folder"):
        load_model(tmp_path / "nowhere")
    (saved_sr3 / MODEL_INDEX_NAME).unlink()
    with pytest.raises(InputError, match="missing checkpoint file model_index.json"):
        load_model(saved_sr3)


def test_load_missing_weights(saved_sr3: Path) -> None:
    (saved_sr3 / "unet" / WEIGHTS_NAME).unlink()
    with pytest.raises(InputError, match=f"unet: missing checkpoint file {WEIGHTS_NAME}"):
        load_model(saved_sr3)


def test_load_refuses_pickle_weights(saved_sr3: Path) -> None:
    weights = saved_sr3 / "unet" / WEIGHTS_NAME
    torch.save({"w": torch.zeros(1)}, saved_sr3 / "unet" / "diffusion_pytorch_model.bin")
    weights.unlink()
    with pytest.raises(InputError, match=r"non-safetensors weights \(diffusion_pytorch_model.bin\)"):
        load_model(saved_sr3)


def test_load_unknown_method_and_wrong_components(saved_sr3: Path) -> None:
    index_path = saved_sr3 / MODEL_INDEX_NAME
    index = json.loads(index_path.read_text())
    index_path.write_text(json.dumps({**index, "method": "esrgan"}))
    with pytest.raises(InputError, match="unknown method 'esrgan'"):
        load_model(saved_sr3)
    index_path.write_text(json.dumps({**index, "components": {"unet": index["components"]["unet"]}}))
    with pytest.raises(InputError, match="has components"):
        load_model(saved_sr3)
    index_path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_model(saved_sr3)


def test_load_corrupt_weights(saved_sr3: Path) -> None:
    (saved_sr3 / "unet" / WEIGHTS_NAME).write_bytes(b"\x00" * 20)
    with pytest.raises(InputError, match="cannot load UNet2DModel"):
        load_model(saved_sr3)


def test_save_over_an_existing_model_replaces_it(tmp_path: Path) -> None:
    first = _tiny("regression").save_pretrained(tmp_path / "m")
    torch.manual_seed(5)
    other = build_model("regression", resolve_config("regression", "tiny"), scale=2, stats=STATS)
    other.save_pretrained(first)
    lr, _ = _batch()
    assert torch.equal(load_model(first).sample(lr), other.sample(lr))
    assert not [p for p in first.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    shutil.rmtree(first)
