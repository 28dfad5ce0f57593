"""`mindgap ssl-pretrain` is reproducible, never shows the encoder the errors LPIPS-Sat must see, never
trains on held-out tiles, and writes a loadable backbone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mindgap_core.cli import main
from mindgap_core.metrics.lpips_sat import load_mindgap_backbone, lpips_sat_score
from mindgap_core.ssl.augment import AugmentConfig, RegionSampler, make_views, sample_batch
from mindgap_core.ssl.data import band_statistics, load_sources, split_tiles
from mindgap_core.ssl.encoder import EncoderConfig, ResNetEncoder
from mindgap_core.ssl.pretrain import DEFAULT_ENCODER
from tests.fixtures import DEMO_SOURCE_DIR, REPO_ROOT
from tests.fixtures.metric_tiles import BANDS, landsat_dir, s2_pairs

DEMO = REPO_ROOT / "data" / "demo"


@pytest.fixture(scope="module")
def images():
    return load_sources(DEMO_SOURCE_DIR, landsat_dir(), DEMO)


def _train(out, seed=0) -> int:
    return main(["ssl-pretrain", "--out", str(out), "--source-dir", str(DEMO_SOURCE_DIR),
                 "--landsat-dir", str(landsat_dir()), "--demo-dir", str(DEMO), "--steps", "2",
                 "--batch-size", "4", "--seed", str(seed), "--no-calibrate"])


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
    assert cfg["channel_weights"] == "uniform"  # --no-calibrate
    assert any("without test+val tiles" in s for s in cfg["training_sources"])
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
    s2, landsat, hr = images
    assert s2.present == (True, True, True, True) and landsat.present == (True, True, True, False)
    assert hr.present == (True,) * 4 and hr.name.startswith("hr5m:")
    for im in images:
        vals = im.array[:3][:, im.valid]
        assert 0.0 < vals.mean() < 0.3  # reflectance, not DN
    assert np.all(landsat.array[3] == 0)
    mean, std = band_statistics(images)
    nir = [float(im.array[3][im.valid].mean()) for im in (s2, hr)]
    assert mean[3] == pytest.approx(np.mean(nir), rel=1e-5)  # NIR from S2 and HR only
    assert all(s > 0 for s in std)


def test_hr_image_loses_exactly_its_test_and_val_tiles(images):
    hr = images[2]
    splits = split_tiles(DEMO)
    size = 64
    assert hr.valid.shape == (6 * size, 8 * size)
    for split, ids in splits.items():
        for t in ids:
            r, c = (int(v) for v in t[1:].split("c"))
            block = hr.valid[r * size:(r + 1) * size, c * size:(c + 1) * size]
            assert block.all() if split == "train" else not block.any(), (split, t)
            if split != "train":
                assert not hr.array[:, r * size:(r + 1) * size, c * size:(c + 1) * size].any()
    assert hr.valid.mean() == pytest.approx(len(splits["train"]) / 48)
    # every region the sampler draws from the HR image lies in train tiles (held-out pixels are 0)
    sampler = RegionSampler(images, AugmentConfig().region)
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert np.all(np.any(sampler.draw(2, rng) != 0, axis=0))


def _is_window(view: np.ndarray, region: np.ndarray) -> bool:
    """Whether ``view`` is a window of ``region`` under one of the 8 flips/rotations."""
    size, k = view.shape[-1], region.shape[-1]
    for flip in (False, True):
        for rot in range(4):
            w = np.rot90(view[:, :, ::-1] if flip else view, -rot, axes=(1, 2))
            for dr in range(k - size + 1):
                for dc in range(k - size + 1):
                    if np.array_equal(w, region[:, dr:dr + size, dc:dc + size]):
                        return True
    return False


def test_views_are_exact_source_pixels_without_blur_noise_or_resampling(images):
    """With the radiometric jitter off, every view is a window of its region, pixel for pixel: no
    blur, noise or interpolation. With it on (same seed, same windows), each band of a view is an
    exact affine map of those pixels: a gain and an offset, nothing else."""
    mean, _ = band_statistics(images)
    sampler = RegionSampler(images, 96)
    rng = np.random.default_rng(3)
    regions = np.stack([sampler.draw(i % 3, rng) for i in range(6)])
    present = np.ones(6, dtype=bool)
    still = AugmentConfig(brightness=(1.0, 1.0), global_offset=0.0, band_gain_sigma=0.0,
                          band_offset_sigma=0.0, nir_dropout=0.0)
    views = make_views(regions, present, mean, np.random.default_rng(4), still).numpy()
    assert all(_is_window(v, r) for v, r in zip(views, regions, strict=True))
    jittered = make_views(regions, present, mean, np.random.default_rng(4),
                          AugmentConfig(nir_dropout=0.0)).numpy()
    assert not np.array_equal(jittered, views)
    for v, j in zip(views, jittered, strict=True):
        for b in range(4):
            x, y = v[b].ravel().astype(np.float64), j[b].ravel().astype(np.float64)
            if x.std() == 0:  # Landsat-8 has no NIR (zeros)
                continue
            design = np.stack([x, np.ones_like(x)], axis=1)
            coef, *_ = np.linalg.lstsq(design, y, rcond=None)
            assert np.abs(design @ coef - y).max() < 1e-6
            assert 0.75 < coef[0] < 1.35 and abs(coef[1]) < 0.04


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
    landsat_only = AugmentConfig(source_weights=(0.0, 1.0, 0.0))
    l1, _ = sample_batch(sampler, 8, mean, np.random.default_rng(1), landsat_only)
    assert torch.all(l1[:, 3] == torch.tensor(mean[3], dtype=l1.dtype))
    # S2/HR only, no dropout: NIR is real data
    with_nir = AugmentConfig(source_weights=(1.0, 0.0, 1.0), nir_dropout=0.0)
    s1, _ = sample_batch(sampler, 8, mean, np.random.default_rng(1), with_nir)
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
