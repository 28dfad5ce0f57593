"""Acceptance of the shipped LPIPS-Sat on held-out real tiles: the demo's test-split HR tiles.

Neither the backbone's pre-training (train-split tiles of the HR image, the S2 patch, Landsat-8) nor
its calibration (train-split HR tiles, S2 crops; val for the held-out check) ever read these tiles.
The families and severities are the metric card's (``benchmarks/lpips_sat_card.py``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mindgap_core.metrics.lpips_sat import DEFAULT_BACKBONE_DIR, load_backbone, lpips_sat_score
from mindgap_core.ssl.card import MATCHED_PSNR_DB, matched_rows, severity_rows
from mindgap_core.ssl.data import demo_hr_tiles
from mindgap_core.ssl.distortions import FAMILIES
from tests.fixtures import REPO_ROOT
from tests.fixtures.metric_tiles import BANDS

DEMO = REPO_ROOT / "data" / "demo"


@pytest.fixture(scope="module")
def shipped():
    return load_backbone(None)


@pytest.fixture(scope="module")
def tiles() -> np.ndarray:
    ids, arr = demo_hr_tiles(DEMO, "test")
    assert len(ids) == 12
    return arr


@pytest.fixture(scope="module")
def rows(shipped, tiles):
    return severity_rows(shipped, tiles)


def test_shipped_backbone_never_saw_the_test_tiles_and_is_calibrated():
    cfg = json.loads((DEFAULT_BACKBONE_DIR / "config.json").read_text())
    sources = cfg["training_sources"]
    assert any(s.startswith("sentinel2:") for s in sources)
    assert any(s.startswith("landsat8:") for s in sources)
    assert any(s.startswith("hr5m:") and s.endswith("without test+val tiles") for s in sources)
    assert "blur" not in json.dumps(cfg["pretrain"]["augment"])  # no blur/noise augmentation keys
    assert "noise" not in json.dumps(cfg["pretrain"]["augment"])
    weights = cfg["channel_weights"]
    assert isinstance(weights, list) and all(v >= 0 for w in weights for v in w)
    assert sum(v > 0 for w in weights for v in w) >= 8
    assert (DEFAULT_BACKBONE_DIR / "model.safetensors").stat().st_size <= 5_000_000


@pytest.mark.parametrize("family", list(FAMILIES))
def test_monotone_in_severity_within_every_family(rows, family):
    scores = np.stack([r.scores for r in rows if r.family == family])  # (severities, tiles)
    means = scores.mean(axis=1)
    assert np.all(np.diff(means) > 0), f"{family}: mean LPIPS-Sat by severity {means}"
    rising = (np.diff(scores, axis=0) > 0).all(axis=0).mean()
    assert rising >= 0.9, f"{family}: only {rising:.0%} of tiles rank every severity in order"


def test_at_matched_psnr_radiometric_errors_score_below_blur_and_texture(shipped, tiles):
    got = {r.family: r for r in matched_rows(shipped, tiles, MATCHED_PSNR_DB,
                                             families=("blur", "texture", "global_gain", "global_offset"))}
    for r in got.values():
        assert np.all(np.abs(r.psnr - MATCHED_PSNR_DB) <= 0.5)
    for radiometric in ("global_gain", "global_offset"):
        for structural in ("blur", "texture"):
            a, b = got[radiometric].scores, got[structural].scores
            assert a.mean() < b.mean(), f"{radiometric} {a.mean():.3f} !< {structural} {b.mean():.3f}"
            assert (a < b).mean() >= 0.75, f"{radiometric} < {structural} on {(a < b).mean():.0%} of tiles"


def test_scale_is_roughly_zero_to_one(shipped, tiles, rows):
    t = torch.from_numpy(tiles).float()
    assert lpips_sat_score(shipped, t, t, BANDS).abs().max().item() < 1e-6
    # faint distortions (PSNR >= 45 dB) score near 0; the card's strongest stay near or below 1
    faint = [r for r in rows if r.psnr.mean() >= 45.0]
    assert len({r.family for r in faint}) >= 6
    assert max(r.scores.mean() for r in faint) < 0.1
    assert max(r.scores.mean() for r in rows) < 2.0
    # two different test tiles: about 1 by construction of the scale (fixed on train tiles)
    d = lpips_sat_score(shipped, t, torch.roll(t, 1, dims=0), BANDS).numpy()
    assert 0.5 < np.median(d) < 2.0
