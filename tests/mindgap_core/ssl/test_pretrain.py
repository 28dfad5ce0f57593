"""`mindgap ssl-pretrain` is reproducible, uses satellite augmentations, and writes a loadable backbone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mindgap_core.cli import main
from mindgap_core.metrics.lpips_sat import load_mindgap_backbone, lpips_sat_score
from mindgap_core.ssl.augment import AugmentConfig, RegionSampler, sample_batch
from mindgap_core.ssl.data import band_statistics, load_sources
from mindgap_core.ssl.encoder import EncoderConfig, ResNetEncoder
from mindgap_core.ssl.pretrain import DEFAULT_ENCODER
from tests.fixtures import DEMO_SOURCE_DIR
from tests.fixtures.metric_tiles import BANDS, landsat_dir, s2_pairs


@pytest.fixture(scope="module")
def images():
    return load_sources(DEMO_SOURCE_DIR, landsat_dir())


def _train(out, seed=0) -> int:
    return main(["ssl-pretrain", "--out", str(out), "--source-dir", str(DEMO_SOURCE_DIR),
                 "--landsat-dir", str(landsat_dir()), "--steps", "2", "--batch-size", "4",
                 "--seed", str(seed)])


def test_tiny_pretraining_twice_gives_identical_weights(tmp_path):
    assert _train(tmp_path / "a") == 0
    assert _train(tmp_path / "b") == 0
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "config.json").read_bytes() == (tmp_path / "b" / "config.json").read_bytes()
    # the weights did move from their initialisation, and another seed gives other weights
    torch.manual_seed(0)
    init = ResNetEncoder(DEFAULT_ENCODER).state_dict()
    assert not torch.equal(init["conv1.weight"], a["conv1.weight"])
    assert _train(tmp_path / "c", seed=1) == 0
    c = load_file(str(tmp_path / "c" / "model.safetensors"))
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])
    # the folder is a working LPIPS-Sat backbone
    model = load_mindgap_backbone(tmp_path / "a")
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["ssl_method"].startswith("SimSiam") and cfg["band_names"] == list(BANDS)
    sr, hr = (torch.from_numpy(x).float() for x in s2_pairs(n=2, size=64))
    d = lpips_sat_score(model, sr, hr, BANDS)
    assert d.shape == (2,) and torch.isfinite(d).all() and (d > 0).all()
    log = json.loads((tmp_path / "a" / "training_log.json").read_text())
    assert len(log["losses"]) == 2 and log["threads"] == 1


def test_bad_options_exit_2_with_one_line(tmp_path, capsys):
    assert main(["ssl-pretrain", "--out", str(tmp_path), "--steps", "0"]) == 2
    err = capsys.readouterr().err
    assert "--steps must be >= 1" in err and "Traceback" not in err
    assert main(["ssl-pretrain", "--out", str(tmp_path), "--landsat-dir", str(tmp_path / "none"),
                 "--steps", "1"]) == 2
    assert "Landsat-8 folder not found" in capsys.readouterr().err


def test_sources_are_real_reflectance_and_landsat_has_no_nir(images):
    s2, landsat = images
    assert s2.present == (True, True, True, True) and landsat.present == (True, True, True, False)
    for im in images:
        vals = im.array[:3][:, im.valid]
        assert 0.0 < vals.mean() < 0.3  # reflectance, not DN
    assert np.all(landsat.array[3] == 0)
    mean, std = band_statistics(images)
    assert mean[3] == pytest.approx(float(s2.array[3].mean()), rel=1e-5)  # NIR from S2 only
    assert all(s > 0 for s in std)


def test_augmentations_are_seeded_and_drop_missing_nir(images):
    mean, _ = band_statistics(images)
    cfg = AugmentConfig()
    sampler = RegionSampler(images, cfg.region)
    a1, a2 = sample_batch(sampler, 16, mean, np.random.default_rng(5), cfg)
    b1, b2 = sample_batch(sampler, 16, mean, np.random.default_rng(5), cfg)
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert a1.shape == (16, 4, cfg.size, cfg.size) and torch.isfinite(a1).all()
    assert not torch.equal(a1, a2)  # two different views
    # Landsat-only batch: NIR is always the NIR mean (0 after standardisation)
    landsat_only = AugmentConfig(s2_probability=0.0)
    l1, _ = sample_batch(sampler, 8, mean, np.random.default_rng(1), landsat_only)
    assert torch.all(l1[:, 3] == torch.tensor(mean[3], dtype=l1.dtype))
    # S2-only, no dropout: NIR is real data
    s2_only = AugmentConfig(s2_probability=1.0, nir_dropout=0.0)
    s1, _ = sample_batch(sampler, 8, mean, np.random.default_rng(1), s2_only)
    assert (s1[:, 3].std(dim=(-2, -1)) > 0).all()


def test_default_encoder_is_small_and_timm_named():
    enc = ResNetEncoder(DEFAULT_ENCODER)
    n = sum(p.numel() for p in enc.parameters())
    assert 0.5e6 <= n <= 2e6
    keys = enc.state_dict().keys()
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight",
            "layer4.0.downsample.0.weight"} <= set(keys)
    feats = enc.features(torch.zeros(1, 4, 64, 64))
    assert [f.shape[1] for f in feats] == list(enc.tap_channels)
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
    assert EncoderConfig.from_dict(DEFAULT_ENCODER.to_dict()) == DEFAULT_ENCODER
