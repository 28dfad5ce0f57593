"""The 2AFC calibration: its judgement rules, its fit, and the folder it rewrites (tiny backbone)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mindgap_core.cli import main
from mindgap_core.metrics.lpips_sat import load_mindgap_backbone
from mindgap_core.ssl.calibrate import (
    CALIBRATION_LOG_FILE,
    CalibrationConfig,
    JudgedSet,
    agreement,
    calibrate,
    calibrate_folder,
    calibration_images,
    fit_weights,
    judged_pairs,
)
from mindgap_core.ssl.data import split_tiles
from mindgap_core.ssl.encoder import EncoderConfig, ResNetEncoder
from mindgap_core.ssl.pretrain import PretrainConfig, PretrainResult, save_backbone
from tests.fixtures import DEMO_SOURCE_DIR, REPO_ROOT

DEMO = REPO_ROOT / "data" / "demo"
TINY = EncoderConfig(stem_width=8, stem_stride=2, widths=(8, 16, 16, 32))
FAST = CalibrationConfig(s2_crops=4, max_iter=60, ridges=(0.01, 1.0))


def test_judgement_rules():
    cfg = CalibrationConfig()
    fam = ["blur", "blur", "global_offset", "global_offset", "band_mixing", "noise"]
    sev = np.array([1.0, 2.0, 0.01, 0.04, 0.1, 0.02])
    psnr = np.array([34.0, 31.0, 40.0, 27.0, 40.0, 45.0])
    tile = np.zeros(6, dtype=int)
    pairs, rule = judged_pairs(fam, sev, psnr, tile, cfg)
    got = {(int(a), int(b)): int(r) for (a, b), r in zip(pairs, rule, strict=True)}
    # rule 1: within a family the more severe copy is worse
    assert got[(0, 1)] == 1 and got[(2, 3)] == 1
    # rule 2: offset at 40 dB beats blur at 34 and 31 dB; offset at 27 dB (more than 3 dB but less
    # than 13 dB below blur's 31 and 34 dB) is not judged against them; against noise at 45 dB the
    # offset at 40 dB (5 dB below) is not judged, the one at 27 dB (18 dB below) is worse
    assert got[(2, 0)] == 2 and got[(2, 1)] == 2
    assert (3, 0) not in got and (0, 3) not in got and (3, 1) not in got and (1, 3) not in got
    assert (2, 5) not in got and (5, 2) not in got
    assert got[(5, 3)] == 2
    # band mixing is only ever compared within its family; copies of other tiles never
    assert not any(4 in k for k in got)
    split = np.array([0, 0, 1, 1, 0, 1])
    pairs2, _ = judged_pairs(fam, sev, psnr, split, cfg)
    assert len(pairs2) and np.array_equal(split[pairs2[:, 0]], split[pairs2[:, 1]])
    assert {(int(a), int(b)) for a, b in pairs2} == {(0, 1), (2, 3), (5, 3)}


def test_fit_recovers_a_hidden_weighting():
    """Pairs judged by a hidden sparse non-negative weighting of the terms are reproduced."""
    rng = np.random.default_rng(0)
    terms = rng.gamma(1.0, 1.0, (600, 20))
    hidden = np.zeros(20)
    hidden[[2, 7, 11]] = (3.0, 1.0, 0.5)
    d = terms @ hidden
    a, b = rng.integers(0, 600, (2, 3000))
    keep = a != b
    a, b = a[keep], b[keep]
    pairs = np.where((d[a] < d[b])[:, None], np.stack([a, b], 1), np.stack([b, a], 1))
    s = JudgedSet(terms, ("blur",) * 600, np.zeros(600), np.zeros(600), np.zeros(600, int), pairs,
                  np.where(np.arange(len(pairs)) % 2 == 0, 1, 2))
    w, fit = fit_weights(s, CalibrationConfig(), ridge=1e-4)
    assert (w >= 0).all() and fit["loss"] < fit["loss_uniform"]
    assert agreement(np.ones(20), s)["all"] < 0.8
    assert agreement(w, s)["all"] > 0.95


def _tiny_backbone(folder):
    torch.manual_seed(0)
    result = PretrainResult(ResNetEncoder(TINY).eval(), (0.06, 0.07, 0.09, 0.21),
                            (0.02, 0.03, 0.04, 0.05), (), float("nan"), 0.0, ("random init",))
    save_backbone(folder, result, PretrainConfig(encoder=TINY, steps=0))
    return folder


def test_calibration_is_deterministic(tmp_path):
    model = load_mindgap_backbone(_tiny_backbone(tmp_path / "t"))
    train, val, anchor = calibration_images(DEMO, DEMO_SOURCE_DIR, FAST)
    a, b = (calibrate(model, train[:3], val[:2], anchor[:4], FAST) for _ in range(2))
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights, strict=True))
    assert a.log["agreement_val"] == b.log["agreement_val"]


def test_calibrate_folder_scales_and_never_reads_test_tiles(tmp_path, monkeypatch):
    read = []
    import mindgap_core.ssl.calibrate as cal

    real = cal.demo_hr_tiles
    monkeypatch.setattr(cal, "demo_hr_tiles", lambda d, split: read.append(split) or real(d, split))
    a = _tiny_backbone(tmp_path / "a")
    res = calibrate_folder(a, DEMO, DEMO_SOURCE_DIR, FAST)
    assert set(read) == {"train", "val"}
    cfg = json.loads((a / "config.json").read_text())
    weights = cfg["channel_weights"]
    assert [len(w) for w in weights] == list(ResNetEncoder(TINY).tap_channels)
    assert all(v >= 0 for w in weights for v in w) and any(v != 1 for w in weights for v in w)
    log = json.loads((a / CALIBRATION_LOG_FILE).read_text())
    assert log["fit"]["loss"] < log["fit"]["loss_uniform"]
    # the kept ridge is the largest whose val agreement is within the tolerance of the best
    cands = log["ridge_candidates"]
    best = max(c["agreement_val"] for c in cands)
    kept = max(c["ridge"] for c in cands if c["agreement_val"] >= best - FAST.tolerance)
    assert log["fit"]["ridge"] == kept and [c["ridge"] for c in cands] == list(FAST.ridges)
    assert log["agreement_train"]["calibrated"]["all"] > log["agreement_train"]["uniform"]["all"]
    assert res.log["reference_tiles"]["train"] == len(split_tiles(DEMO)["train"]) + FAST.s2_crops
    # the anchor: median distance between two different train tiles is 1 with the saved weights
    model = load_mindgap_backbone(a)
    _, _, anchor = calibration_images(DEMO, DEMO_SOURCE_DIR, FAST)
    i, j = np.triu_indices(len(anchor), k=1)
    with torch.inference_mode():
        d = model(torch.from_numpy(anchor[i]).float(), torch.from_numpy(anchor[j]).float()).numpy()
    assert np.median(d) == pytest.approx(1.0, rel=1e-4)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["lpips-sat-calibrate", "--backbone", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "LPIPS-Sat backbone file missing" in err and "Traceback" not in err
    folder = _tiny_backbone(tmp_path / "t")
    assert main(["lpips-sat-calibrate", "--backbone", str(folder), "--demo-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "manifest" in err and "Traceback" not in err
