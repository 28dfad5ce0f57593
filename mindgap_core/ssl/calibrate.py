"""Calibrated per-channel weights for LPIPS-Sat (LPIPS's "lin" stage) from a generated 2AFC set.

No human judgements of satellite image quality exist here, so the two-alternative forced-choice
(2AFC) judgements are generated from real imagery by two stated rules (families and kinds in
:mod:`mindgap_core.ssl.distortions`):

1. **Within a family** the more severe copy of a tile is the worse one.
2. **Radiometric vs structural** (global gain, global offset, per-band offset vs blur, bicubic
   resampling, noise, shift, texture) on the same tile: a radiometric error counts between 1/20
   and 1/2 as much as a structural error of equal MSE. So the radiometric copy is the better one
   when its PSNR is at least the structural copy's minus ``better_margin_db`` (3 dB: up to twice
   the MSE), the worse one when its PSNR is below the structural copy's minus ``worse_margin_db``
   (13 dB: 20 times the MSE), and pairs in between are not judged. Why: a gain/offset is undone
   exactly by a two-number-per-band radiometric correction (what histogram matching does before
   opensr-test scores), leaves every edge and texture intact, and is scored separately by MindGap's
   reflectance, SAM and PSNR; a blur, resampling loss, noise, shift or invented texture is not
   invertible and is what a perceptual metric is for. A large radiometric error must still count.

No other pair is judged: structural families among themselves, and spectral band mixing against
anything but itself, are left to the features.

Fit: non-negative weights ``w`` (one per channel of every tap) minimise the mean logistic loss
``softplus(-τ · (log d_worse - log d_better))`` (Bradley-Terry on log distances; each rule's pairs
weigh half) plus ``ridge · mean((w - 1)^2)`` (towards LPIPS-Sat's uniform weights), by L-BFGS-B
with bounds ``w >= 0``. The ridge is chosen on the held-out val tiles: among ``ridges``, the largest
(weights closest to uniform, most channels kept) whose val agreement is within ``tolerance`` of the
best one. The loss is scale-free, so the scale is then fixed by an anchor: the median distance
between two *different* train HR tiles becomes 1 ("as different as two unrelated places of the
scene"), which puts distortions in roughly [0, 1].

Images: the demo's HR tiles of the **train** split and seeded crops of the real Sentinel-2 patch
for the fit; the **val** split's HR tiles choose the ridge; the **test** split is never read (the
metric card, ``benchmarks/lpips_sat_card.py``, reports the agreement there).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from mindgap_core.errors import ConfigError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.metrics.lpips_sat import LPIPSSat, load_mindgap_backbone
from mindgap_core.ssl.data import S2_FILE, demo_hr_tiles, load_sentinel2_patch
from mindgap_core.ssl.distortions import FAMILIES, distort, psnr_db
from mindgap_core.ssl.pretrain import CONFIG_FILE
from mindgap_core.types import CANONICAL_BANDS, ProgressFn, no_progress

CALIBRATION_LOG_FILE = "calibration_log.json"


@dataclass(frozen=True)
class CalibrationConfig:
    """Everything that determines the calibrated weights."""

    seed: int = 0
    crop: int = 64
    s2_crops: int = 24
    better_margin_db: float = 3.0
    worse_margin_db: float = 13.0
    temperature: float = 8.0
    ridges: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    tolerance: float = 0.01
    max_iter: int = 400
    batch: int = 64


@dataclass(frozen=True)
class JudgedSet:
    """Reference tiles, their distorted copies and the 2AFC pairs over the copies.

    ``terms`` (copies, channels) are the unweighted LPIPS-Sat channel terms of each copy against its
    reference; ``pairs`` (P, 2) holds (better, worse) copy indices, ``rule`` (P,) 1 or 2.
    """

    terms: np.ndarray
    family: tuple[str, ...]
    severity: np.ndarray
    psnr: np.ndarray
    tile: np.ndarray
    pairs: np.ndarray
    rule: np.ndarray


def s2_crops(source_dir: str | Path, n: int, size: int, seed: int) -> np.ndarray:
    """``n`` seeded (4, size, size) crops of the real S2 patch, float64 reflectance."""
    im = load_sentinel2_patch(Path(source_dir) / S2_FILE)
    rng = np.random.default_rng(seed)
    rows, cols = im.valid.shape
    out = []
    while len(out) < n:
        r, c = int(rng.integers(0, rows - size + 1)), int(rng.integers(0, cols - size + 1))
        if im.valid[r:r + size, c:c + size].all():
            out.append(im.array[:, r:r + size, c:c + size].astype(np.float64))
    return np.stack(out)


def distorted_copies(refs: np.ndarray, seed: int) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Every family at every grid severity of every reference: (copies, family, severity, tile)."""
    copies, fams, sevs, tiles = [], [], [], []
    for fi, (name, fam) in enumerate(FAMILIES.items()):
        for si, s in enumerate(fam.severities):
            copies.append(distort(name, refs, s, seed=seed * 1000 + fi * 10 + si))
            fams += [name] * len(refs)
            sevs.append(np.full(len(refs), s))
            tiles.append(np.arange(len(refs)))
    return np.concatenate(copies), fams, np.concatenate(sevs), np.concatenate(tiles)


def judged_pairs(family: list[str] | tuple[str, ...], severity: np.ndarray, psnr: np.ndarray,
                 tile: np.ndarray, cfg: CalibrationConfig) -> tuple[np.ndarray, np.ndarray]:
    """(better, worse) index pairs and their rule (1 within family, 2 radiometric vs structural)."""
    kind = np.array([FAMILIES[f].kind for f in family])
    fam = np.asarray(family)
    pairs, rule = [], []
    for t in np.unique(tile):
        idx = np.flatnonzero(tile == t)
        for a in idx:
            for b in idx:
                if fam[a] == fam[b] and severity[a] < severity[b]:
                    pairs.append((a, b))
                    rule.append(1)
                elif kind[a] == "radiometric" and kind[b] == "structural":
                    if psnr[a] >= psnr[b] - cfg.better_margin_db:
                        pairs.append((a, b))
                        rule.append(2)
                    elif psnr[a] <= psnr[b] - cfg.worse_margin_db:
                        pairs.append((b, a))
                        rule.append(2)
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2), np.asarray(rule, dtype=np.int64)


def channel_terms(model: LPIPSSat, refs: np.ndarray, others: np.ndarray, batch: int,
                  on_progress: ProgressFn = no_progress) -> np.ndarray:
    """(N, channels) LPIPS-Sat channel terms of ``others[i]`` against ``refs[i]`` (float64)."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(refs), batch):
            x = torch.from_numpy(others[i:i + batch]).float()
            y = torch.from_numpy(refs[i:i + batch]).float()
            out.append(model.channel_terms(x, y).double().numpy())
            on_progress(min(i + batch, len(refs)), len(refs))
    return np.concatenate(out)


def judged_set(model: LPIPSSat, refs: np.ndarray, cfg: CalibrationConfig,
               on_progress: ProgressFn = no_progress) -> JudgedSet:
    """Distort ``refs``, judge the pairs by the two rules and compute every copy's channel terms."""
    copies, fams, sev, tile = distorted_copies(refs, cfg.seed)
    p = psnr_db(copies, refs[tile])
    pairs, rule = judged_pairs(fams, sev, p, tile, cfg)
    terms = channel_terms(model, refs[tile], copies, cfg.batch, on_progress)
    return JudgedSet(terms, tuple(fams), sev, p, tile, pairs, rule)


def agreement(w: np.ndarray, s: JudgedSet) -> dict[str, float]:
    """Fraction of judged pairs the weights order as judged (ties count half), per rule and all."""
    d = s.terms @ w
    ok = np.where(d[s.pairs[:, 1]] > d[s.pairs[:, 0]], 1.0,
                  np.where(d[s.pairs[:, 1]] == d[s.pairs[:, 0]], 0.5, 0.0))
    out = {"all": float(ok.mean()), "pairs": int(len(ok))}
    for r in (1, 2):
        out[f"rule{r}"] = float(ok[s.rule == r].mean()) if np.any(s.rule == r) else float("nan")
    return out


def fit_weights(s: JudgedSet, cfg: CalibrationConfig, ridge: float) -> tuple[np.ndarray, dict]:
    """Non-negative channel weights by L-BFGS-B on the 2AFC loss with ``ridge`` (module docstring)."""
    from scipy.optimize import minimize

    phi = torch.from_numpy(s.terms)
    better, worse = torch.from_numpy(s.pairs[:, 0]), torch.from_numpy(s.pairs[:, 1])
    group = [torch.from_numpy(s.rule == r) for r in (1, 2)]
    group = [g for g in group if bool(g.any())]

    def loss_grad(w_np: np.ndarray) -> tuple[float, np.ndarray]:
        w = torch.from_numpy(w_np).requires_grad_(True)
        d = (phi @ w).clamp_min(1e-12).log()
        z = torch.nn.functional.softplus(-cfg.temperature * (d[worse] - d[better]))
        loss = sum(z[g].mean() for g in group) / len(group) + ridge * ((w - 1.0) ** 2).mean()
        loss.backward()
        return float(loss.detach()), w.grad.numpy().copy()

    w0 = np.ones(s.terms.shape[1])
    res = minimize(loss_grad, w0, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * len(w0),
                   options={"maxiter": cfg.max_iter})
    return np.asarray(res.x, dtype=np.float64), {
        "ridge": ridge, "loss_uniform": round(loss_grad(w0)[0], 6), "loss": round(float(res.fun), 6),
        "iterations": int(res.nit), "converged": bool(res.success), "message": str(res.message),
    }


def select_weights(train: JudgedSet, val: JudgedSet,
                   cfg: CalibrationConfig) -> tuple[np.ndarray, dict, list[dict]]:
    """Fit every ridge of ``cfg.ridges``; keep the largest within ``cfg.tolerance`` of the best val
    agreement. Returns (weights, its fit record, one record per candidate)."""
    fits = []
    for ridge in cfg.ridges:
        w, fit = fit_weights(train, cfg, ridge)
        fit["agreement_val"] = round(agreement(w, val)["all"], 6)
        fit["nonzero_weights"] = int((w > 0).sum())
        fits.append((w, fit))
    best = max(f["agreement_val"] for _, f in fits)
    w, fit = max((wf for wf in fits if wf[1]["agreement_val"] >= best - cfg.tolerance),
                 key=lambda wf: wf[1]["ridge"])
    return w, fit, [f for _, f in fits]


def anchor_distances(model: LPIPSSat, refs: np.ndarray, batch: int,
                     on_progress: ProgressFn = no_progress) -> np.ndarray:
    """(pairs, channels) channel terms between every two different ``refs`` (i < j)."""
    i, j = np.triu_indices(len(refs), k=1)
    return channel_terms(model, refs[i], refs[j], batch, on_progress)


@dataclass(frozen=True)
class CalibrationResult:
    """Weights per tap and what the calibration measured."""

    weights: tuple[np.ndarray, ...]
    log: dict


def calibrate(model: LPIPSSat, train_refs: np.ndarray, val_refs: np.ndarray, anchor_refs: np.ndarray,
              cfg: CalibrationConfig | None = None,
              on_progress: ProgressFn = no_progress) -> CalibrationResult:
    """Fit the weights on ``train_refs``, choose the ridge on ``val_refs``, scale on ``anchor_refs``."""
    cfg = cfg or CalibrationConfig()
    t0 = time.perf_counter()
    grid = sum(len(f.severities) for f in FAMILIES.values())
    sizes_done = np.cumsum([0, len(train_refs) * grid, len(val_refs) * grid,
                            len(anchor_refs) * (len(anchor_refs) - 1) // 2])
    total = int(sizes_done[-1])

    def stage(k: int) -> ProgressFn:
        return lambda done, _n: on_progress(int(sizes_done[k]) + done, total)

    train = judged_set(model, train_refs, cfg, stage(0))
    val = judged_set(model, val_refs, cfg, stage(1))
    w, fit, candidates = select_weights(train, val, cfg)
    anchor = np.median(anchor_distances(model, anchor_refs, cfg.batch, stage(2)) @ w)
    w = w / anchor
    uniform = np.ones_like(w)
    sizes = list(model.encoder.tap_channels)
    per_tap = np.split(w, np.cumsum(sizes)[:-1])
    log = {
        "config": asdict(cfg),
        "fit": fit,
        "ridge_candidates": candidates,
        "anchor_median_distance_before_scaling": round(float(anchor), 6),
        "reference_tiles": {"train": int(len(train_refs)), "val": int(len(val_refs)),
                            "anchor": int(len(anchor_refs))},
        "agreement_train": {"uniform": agreement(uniform, train), "calibrated": agreement(w, train)},
        "agreement_val": {"uniform": agreement(uniform, val), "calibrated": agreement(w, val)},
        "zero_weights": int((w == 0).sum()),
        "tap_weight_sums": [round(float(t.sum()), 6) for t in per_tap],
        "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    return CalibrationResult(tuple(per_tap), log)


def calibration_images(demo_dir: str | Path, source_dir: str | Path,
                       cfg: CalibrationConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train refs = HR train tiles + S2 crops, val refs = HR val tiles, anchor refs = HR train)."""
    _, hr_train = demo_hr_tiles(demo_dir, "train")
    _, hr_val = demo_hr_tiles(demo_dir, "val")
    if hr_train.shape[-1] != cfg.crop:
        hr_train = hr_train[..., :cfg.crop, :cfg.crop]
        hr_val = hr_val[..., :cfg.crop, :cfg.crop]
    s2 = s2_crops(source_dir, cfg.s2_crops, cfg.crop, cfg.seed)
    return np.concatenate([hr_train, s2]), hr_val, hr_train


def calibrate_folder(folder: str | Path, demo_dir: str | Path, source_dir: str | Path,
                     cfg: CalibrationConfig | None = None,
                     on_progress: ProgressFn = no_progress) -> CalibrationResult:
    """Calibrate the backbone in ``folder``; rewrite its config.json and write calibration_log.json."""
    cfg = cfg or CalibrationConfig()
    folder = Path(folder)
    model = load_mindgap_backbone(folder)
    if tuple(model.band_names) != CANONICAL_BANDS:
        raise ConfigError(f"calibration needs a {CANONICAL_BANDS} backbone, got {model.band_names}")
    train, val, anchor = calibration_images(demo_dir, source_dir, cfg)
    result = calibrate(model, train, val, anchor, cfg, on_progress)
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["channel_weights"] = [[round(float(v), 7) for v in t] for t in result.weights]
    config["calibration"] = {
        "method": "2AFC fit of non-negative per-channel weights (mindgap_core/ssl/calibrate.py)",
        "config": asdict(cfg),
        "scale": "median LPIPS-Sat between two different HR train tiles = 1",
    }
    with atomic_path(folder / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n")
    with atomic_path(folder / CALIBRATION_LOG_FILE) as tmp:
        tmp.write_text(json.dumps(result.log, indent=1) + "\n")
    for name in (CONFIG_FILE, CALIBRATION_LOG_FILE):
        os.chmod(folder / name, 0o644)
    return result
