"""LPIPS-Sat: the LPIPS formula on a 4-band encoder; SSL4EO-S12 checkpoints load with the band map."""

from __future__ import annotations

import lpips
import pytest
import torch
import torchvision

from mindgap_core.errors import InputError
from mindgap_core.metrics.lpips_sat import (
    SSL4EO_S2_BANDS,
    LPIPSSat,
    load_backbone,
    load_mindgap_backbone,
    load_ssl4eo_backbone,
    lpips_sat_score,
)
from mindgap_core.ssl.encoder import EncoderConfig, ResNetEncoder
from tests.fixtures.metric_tiles import BANDS, s2_pairs

SMALL = EncoderConfig(stem_width=8, stem_stride=2, widths=(8, 16, 16, 32))


@pytest.fixture(scope="module")
def pairs():
    sr, hr = s2_pairs(n=3, size=64, seed=2)
    return torch.from_numpy(sr).float(), torch.from_numpy(hr).float()


def small_model(weights=None) -> LPIPSSat:
    torch.manual_seed(0)
    return LPIPSSat(ResNetEncoder(SMALL), BANDS, (0.06, 0.07, 0.09, 0.21), (0.02, 0.03, 0.04, 0.05),
                    weights, backbone_id="small-test")


def reference_lpips_sat(model: LPIPSSat, x, y, weights=None, spatial=False):
    """The LPIPS formula written with the lpips package's own helpers."""
    mean = torch.tensor((0.06, 0.07, 0.09, 0.21)).view(1, -1, 1, 1)
    std = torch.tensor((0.02, 0.03, 0.04, 0.05)).view(1, -1, 1, 1)
    with torch.no_grad():
        fx = model.encoder.features((x - mean) / std)
        fy = model.encoder.features((y - mean) / std)
    total = 0
    for i, (a, b) in enumerate(zip(fx, fy, strict=True)):
        d = (lpips.normalize_tensor(a) - lpips.normalize_tensor(b)) ** 2
        w = torch.ones(d.shape[1]) if weights is None else weights[i]
        layer = (d * w.view(1, -1, 1, 1)).sum(dim=1, keepdim=True)
        total = total + (lpips.upsample(layer, out_HW=x.shape[2:]) if spatial
                         else lpips.spatial_average(layer))
    return total[:, 0] if spatial else total.flatten()


def test_formula_matches_lpips_helpers_uniform_and_weighted(pairs):
    sr, hr = pairs
    m = small_model()
    assert torch.allclose(lpips_sat_score(m, sr, hr, BANDS), reference_lpips_sat(m, sr, hr).double(),
                          atol=1e-6)
    assert torch.allclose(lpips_sat_score(m, sr, hr, BANDS, spatial=True),
                          reference_lpips_sat(m, sr, hr, spatial=True).double(), atol=1e-6)
    torch.manual_seed(1)
    w = [torch.rand(c) for c in m.encoder.tap_channels]
    mw = small_model(w)
    assert torch.allclose(lpips_sat_score(mw, sr, hr, BANDS), reference_lpips_sat(mw, sr, hr, w).double(),
                          atol=1e-6)


def test_identical_images_score_zero_and_band_order_is_by_name(pairs):
    sr, hr = pairs
    m = small_model()
    assert lpips_sat_score(m, hr, hr, BANDS).abs().max().item() < 1e-6
    perm = [3, 1, 0, 2]
    names = tuple(BANDS[i] for i in perm)
    assert torch.allclose(lpips_sat_score(m, sr[:, perm], hr[:, perm], names),
                          lpips_sat_score(m, sr, hr, BANDS))
    with pytest.raises(Exception, match="needs bands"):
        lpips_sat_score(m, sr[:, :3], hr[:, :3], BANDS[:3])


def test_metric_never_trains(pairs):
    m = small_model()
    m.train()
    assert not m.encoder.training
    before = {k: v.clone() for k, v in m.state_dict().items()}
    lpips_sat_score(m, *pairs, BANDS)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


@pytest.mark.parametrize("arch,builder", [("resnet18", torchvision.models.resnet18),
                                          ("resnet50", torchvision.models.resnet50)])
def test_ssl4eo_checkpoint_loads_with_explicit_band_map(tmp_path, pairs, arch, builder):
    """A small checkpoint in SSL4EO-S12 format: a timm/torchvision-style ResNet state dict over the
    13 Sentinel-2 bands (B01..B12 incl. B8A), classifier included, as torchgeo ships them."""
    torch.manual_seed(3)
    net = builder(weights=None)
    net.conv1 = torch.nn.Conv2d(13, 64, 7, 2, 3, bias=False)
    state = net.state_dict()
    path = tmp_path / f"{arch}_sentinel2_all_moco.pth"
    torch.save(state, path)
    model = load_ssl4eo_backbone(path, arch)
    got = model.encoder.state_dict()
    idx = [SSL4EO_S2_BANDS.index(b) for b in ("B02", "B03", "B04", "B08")]
    assert idx == [1, 2, 3, 7]
    assert torch.equal(got["conv1.weight"], state["conv1.weight"][:, idx])
    for k, v in got.items():
        if k != "conv1.weight":
            assert torch.equal(v, state[k]), k
    assert not any(k.startswith("fc.") for k in got)
    assert model.band_names == BANDS and model.backbone_id.startswith(f"ssl4eo-s12-{arch}@")
    # SSL4EO models take reflectance (torchgeo divides DN by 10000): no further standardisation
    assert torch.equal(model.mean, torch.zeros_like(model.mean))
    assert torch.equal(model.std, torch.ones_like(model.std))
    sr, hr = pairs
    assert lpips_sat_score(model, sr, hr, BANDS).shape == (3,)
    # wrapped variants (Lightning/DataParallel style) load the same
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "wrapped.pth")
    wrapped = load_backbone(tmp_path / "wrapped.pth", ssl4eo_arch=arch)
    assert torch.equal(wrapped.encoder.state_dict()["conv1.weight"], got["conv1.weight"])


def test_ssl4eo_rejects_wrong_checkpoints(tmp_path):
    net = torchvision.models.resnet18(weights=None)  # 3-band ImageNet layout
    torch.save(net.state_dict(), tmp_path / "rgb.pth")
    with pytest.raises(InputError, match="not a 13-band SSL4EO-S12"):
        load_ssl4eo_backbone(tmp_path / "rgb.pth")
    net.conv1 = torch.nn.Conv2d(13, 64, 7, 2, 3, bias=False)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    with pytest.raises(InputError, match="not a timm-style resnet50"):
        load_ssl4eo_backbone(tmp_path / "r18.pth", "resnet50")
    with pytest.raises(InputError, match="not found"):
        load_ssl4eo_backbone(tmp_path / "missing.pth")


def test_missing_backbone_folder_is_a_clear_input_error(tmp_path):
    with pytest.raises(InputError, match="LPIPS-Sat backbone file missing"):
        load_mindgap_backbone(tmp_path)


def test_channel_terms_dotted_with_the_weights_give_the_distance(pairs):
    """The calibration fits weights on ``channel_terms``: they must be exactly what forward() weighs."""
    sr, hr = pairs
    torch.manual_seed(2)
    m = small_model()
    w = [torch.rand(c) for c in m.encoder.tap_channels]
    mw = small_model(w)
    terms = m.channel_terms(sr, hr)
    assert terms.shape == (3, sum(m.encoder.tap_channels))
    assert torch.allclose(terms @ torch.cat(w), mw(sr, hr), rtol=1e-5, atol=1e-7)
    assert torch.allclose(terms.sum(dim=1), m(sr, hr), rtol=1e-5, atol=1e-7)
