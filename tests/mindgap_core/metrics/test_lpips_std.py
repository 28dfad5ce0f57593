"""Standard LPIPS: equals the ``lpips`` package called directly; never downloads; clear when absent."""

from __future__ import annotations

import warnings
from pathlib import Path

import lpips
import numpy as np
import pytest
import torch

from mindgap_core.metrics.engine import Evaluator
from mindgap_core.metrics.lpips_sat import LPIPSSat
from mindgap_core.metrics.lpips_std import (
    ALEXNET_FILENAME,
    RANDOM_TRUNK,
    LPIPSUnavailable,
    load_lpips,
    lpips_map,
    lpips_score,
    rgb_view,
)
from mindgap_core.ssl.encoder import EncoderConfig, ResNetEncoder
from tests.fixtures.metric_tiles import BANDS, s2_pairs


def tiny_lpips_sat() -> LPIPSSat:
    torch.manual_seed(0)
    enc = ResNetEncoder(EncoderConfig(stem_width=8, widths=(8, 8, 8, 8)))
    return LPIPSSat(enc, BANDS, (0.1,) * 4, (0.05,) * 4, backbone_id="tiny-random-test")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Any attempt to fetch weights fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


@pytest.fixture(scope="module")
def pairs():
    sr, hr = s2_pairs(n=3, size=64, seed=1)
    return torch.from_numpy(sr).float(), torch.from_numpy(hr).float()


def direct_inputs(x: torch.Tensor) -> torch.Tensor:
    """The RGB view written out independently: bands red, green, blue; [0, 1] -> [-1, 1]."""
    return torch.stack([x[:, 2], x[:, 1], x[:, 0]], dim=1) * 2 - 1


def test_random_trunk_equals_lpips_package_called_directly(pairs):
    sr, hr = pairs
    torch.manual_seed(123)
    ours = load_lpips(RANDOM_TRUNK)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
        ref_map = lpips.LPIPS(net="alex", pnet_rand=True, spatial=True, verbose=False).eval()
    ref.load_state_dict(ours.net.state_dict())
    ref_map.load_state_dict(ours.net.state_dict())
    with torch.no_grad():
        expected = ref(direct_inputs(sr), direct_inputs(hr)).flatten().double()
        expected_map = ref_map(direct_inputs(sr), direct_inputs(hr))[:, 0].double()
    got = lpips_score(ours, sr, hr, BANDS, data_range=1.0)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(lpips_map(ours, sr, hr, BANDS), expected_map, atol=1e-6)
    assert "random" in ours.trunk


def test_imagenet_trunk_is_read_from_torch_home_and_equals_lpips_pretrained(pairs, tmp_path, monkeypatch):
    """A torchvision-format AlexNet file in $TORCH_HOME/hub/checkpoints gives the same LPIPS as the
    lpips package's own pretrained path (which reads torchvision's cache when the file is there)."""
    import torchvision

    sr, hr = pairs
    torch.manual_seed(7)
    fake = torchvision.models.alexnet(weights=None).state_dict()  # stands in for ImageNet weights
    ckpt = tmp_path / "hub" / "checkpoints" / ALEXNET_FILENAME
    ckpt.parent.mkdir(parents=True)
    torch.save(fake, ckpt)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    ours = load_lpips(None)
    assert str(ckpt) in ours.trunk
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lpips.LPIPS(net="alex", verbose=False).eval()  # ImageNet trunk via torchvision's cache
    with torch.no_grad():
        expected = ref(direct_inputs(sr), direct_inputs(hr)).flatten().double()
    assert torch.allclose(lpips_score(ours, sr, hr, BANDS), expected, atol=1e-6)


def test_missing_weights_make_lpips_unavailable_with_one_message(tmp_path, monkeypatch, pairs):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    with pytest.raises(LPIPSUnavailable, match="LPIPS unavailable: ImageNet AlexNet weights not found"):
        load_lpips(None)
    with pytest.raises(LPIPSUnavailable):
        load_lpips(tmp_path / "nowhere.pth")
    # default suite: skipped with one note; explicit request: an error
    sr, hr = pairs
    ev = Evaluator(None, lpips_sat=tiny_lpips_sat())
    assert "lpips" not in ev.metrics
    rows = ev.score_arrays(sr.numpy(), hr.numpy(), band_names=BANDS)
    assert not any(r.metric == "lpips" for r in rows)
    assert sum("LPIPS unavailable" in n for n in ev.notes) == 1
    with pytest.raises(LPIPSUnavailable):
        Evaluator(["lpips"])


def test_no_typed_value_selects_the_random_trunk(tmp_path, monkeypatch):
    """The random trunk is a sentinel object: "random" from a CLI flag or YAML is just a missing file."""
    monkeypatch.chdir(tmp_path)
    for typed in ("random", "RANDOM_TRUNK", Path("random")):
        with pytest.raises(LPIPSUnavailable, match="not found at random|not found at RANDOM_TRUNK"):
            load_lpips(typed)
        with pytest.raises(LPIPSUnavailable):
            Evaluator(["lpips"], lpips_trunk=typed)


def test_rgb_view_band_choice_and_scaling():
    x = torch.tensor([0.1, 0.2, 0.3, 0.4]).view(1, 4, 1, 1).expand(1, 4, 2, 2)
    v = rgb_view(x, BANDS, data_range=0.5)
    assert v[0, :, 0, 0].tolist() == pytest.approx([0.3 / 0.5 * 2 - 1, 0.2 / 0.5 * 2 - 1, 0.1 / 0.5 * 2 - 1])
    with pytest.raises(Exception, match="red, green and blue"):
        rgb_view(x, ("b1", "b2", "b3", "b4"))


def test_lpips_is_zero_for_identical_and_grows_with_noise(pairs):
    _, hr = pairs
    torch.manual_seed(0)
    m = load_lpips(RANDOM_TRUNK)
    rng = np.random.default_rng(0)
    noise = torch.from_numpy(rng.normal(0, 1, hr.shape)).float()
    d = [lpips_score(m, hr + s * noise, hr, BANDS).mean().item() for s in (0.0, 0.01, 0.05)]
    assert d[0] == pytest.approx(0.0, abs=1e-7) and d[0] < d[1] < d[2]
