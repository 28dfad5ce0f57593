"""Benchmark: the batched metric engine vs a naive per-tile loop (skimage + lpips per tile).

Same 256 tiles of 128x128x4 (real Sentinel-2 reflectance crops as HR, a seeded imperfect SR, LR =
HR area-averaged x4), same full suite on both sides: PSNR, SSIM, SAM, ERGAS, cPSNR, LPIPS (AlexNet;
a seeded random trunk stands in when the ImageNet weights are absent — same weights both sides),
LPIPS-Sat (shipped backbone), opensr-test consistency (3) and correctness (3).

The naive loop is what one writes with the reference libraries: per tile and band skimage
``peak_signal_noise_ratio`` / ``structural_similarity``, numpy SAM/ERGAS/cPSNR, ``lpips.LPIPS`` and
LPIPS-Sat on one tile, and opensr-test's recipe with skimage ``match_histograms`` and
``phase_cross_correlation`` + scipy shift. Prints tiles/s for both and the ratio, and the largest
disagreement between the two on every metric (a speed number is only meaningful if both agree).

    python benchmarks/metrics.py [--tiles 256] [--size 128] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mindgap_core.io import read_raster  # noqa: E402
from mindgap_core.metrics.engine import PSNR_CAP_DB, Evaluator, ScoreOptions  # noqa: E402
from mindgap_core.metrics.lpips_sat import load_backbone, lpips_sat_score  # noqa: E402
from mindgap_core.metrics.lpips_std import RANDOM_TRUNK, LPIPSUnavailable, load_lpips  # noqa: E402
from mindgap_core.types import CANONICAL_BANDS  # noqa: E402

SCALE = 4
RGB = [2, 1, 0]


def make_tiles(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sr, hr, lr) float32 from random crops of the real S2 patch (reflectance)."""
    from scipy.ndimage import gaussian_filter

    s2 = read_raster(ROOT / "data/demo/source/s2_10m_b02_b03_b04_b08_spyndex.tif",
                     band_names=CANONICAL_BANDS, units="DN").array.astype(np.float64) / 1e4
    rng = np.random.default_rng(seed)
    hr, sr = [], []
    for _ in range(n):
        r, c = rng.integers(0, s2.shape[1] - size + 1), rng.integers(0, s2.shape[2] - size + 1)
        t = s2[:, r:r + size, c:c + size]
        if rng.random() < 0.5:
            t = t[:, ::-1]
        blurred = np.stack([gaussian_filter(b, rng.uniform(0.5, 1.5)) for b in t])
        hr.append(t)
        sr.append(blurred * rng.uniform(0.95, 1.05, (4, 1, 1)) + rng.normal(0, 0.004, t.shape))
    hr_a = np.ascontiguousarray(np.stack(hr), dtype=np.float32)
    lr = hr_a.reshape(n, 4, size // SCALE, SCALE, size // SCALE, SCALE).mean(axis=(3, 5))
    return np.stack(sr).astype(np.float32), hr_a, lr.astype(np.float32)


def naive_scores(sr, hr, lr, lpips_model, sat_model) -> dict[str, np.ndarray]:
    """The per-tile reference loop (``lpips_model``: a plain ``lpips.LPIPS``); returns metric ->
    (tiles,) 'all' values."""
    from scipy.ndimage import shift as nd_shift
    from skimage.exposure import match_histograms
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from skimage.registration import phase_cross_correlation

    out: dict[str, list[float]] = {k: [] for k in (
        "psnr", "ssim", "sam", "ergas", "cpsnr", "lpips", "lpips_sat", "consistency_reflectance",
        "consistency_spectral", "consistency_spatial", "improvement", "omission", "hallucination")}
    k = 3
    for i in range(len(sr)):
        x, y, lo = sr[i].astype(np.float64), hr[i].astype(np.float64), lr[i].astype(np.float64)
        out["psnr"].append(min(peak_signal_noise_ratio(y, x, data_range=1.0), PSNR_CAP_DB))
        out["ssim"].append(np.mean([structural_similarity(y[b], x[b], gaussian_weights=True, sigma=1.5,
                                                          use_sample_covariance=False, data_range=1)
                                    for b in range(4)]))
        cos = np.clip((x * y).sum(0) / (np.linalg.norm(x, axis=0) * np.linalg.norm(y, axis=0)), -1, 1)
        out["sam"].append(np.degrees(np.arccos(cos)).mean())
        rmse = np.sqrt(((x - y) ** 2).mean(axis=(1, 2)))
        out["ergas"].append(100 / SCALE * np.sqrt(np.mean((rmse / y.mean(axis=(1, 2))) ** 2)))
        h, w = x.shape[1:]
        cps = []
        for b in range(4):
            xc = x[b, k:h - k, k:w - k]
            best = -np.inf
            for u in range(2 * k + 1):
                for v in range(2 * k + 1):
                    yc = y[b, u:u + h - 2 * k, v:v + w - 2 * k]
                    cm = ((yc - xc - (yc - xc).mean()) ** 2).mean()
                    best = max(best, -10 * np.log10(cm))
            cps.append(min(best, PSNR_CAP_DB))
        out["cpsnr"].append(np.mean(cps))
        with torch.no_grad():
            xt, yt = torch.from_numpy(sr[i:i + 1]), torch.from_numpy(hr[i:i + 1])
            out["lpips"].append(lpips_model(xt[:, RGB] * 2 - 1, yt[:, RGB] * 2 - 1).item())
            out["lpips_sat"].append(lpips_sat_score(sat_model, xt, yt, CANONICAL_BANDS).item())
        # opensr-test consistency
        down = F.interpolate(torch.from_numpy(x)[None], scale_factor=1 / SCALE, mode="bilinear",
                             antialias=True)[0].numpy()
        out["consistency_reflectance"].append(np.abs(lo - down).mean(axis=0).mean())
        cos = np.clip((lo * down).sum(0) / (np.linalg.norm(lo, axis=0) * np.linalg.norm(down, axis=0)), -1, 1)
        out["consistency_spectral"].append(np.degrees(np.arccos(cos)).mean())
        s = phase_cross_correlation(down[RGB].mean(0), lo[RGB].mean(0), upsample_factor=50,
                                    normalization="phase")[0]
        d = float(np.hypot(*s))
        out["consistency_spatial"].append(d if d <= 5 else np.nan)
        # opensr-test correctness (spectral + spatial harmonisation, nd distance, softmin)
        harm = match_histograms(x, y, channel_axis=0)
        s = phase_cross_correlation(y[RGB].mean(0), harm[RGB].mean(0), upsample_factor=50,
                                    normalization="phase")[0]
        if np.hypot(*s) <= 5:
            harm = np.stack([nd_shift(b, s, order=1, mode="nearest") for b in harm])
        up = F.interpolate(torch.from_numpy(lo)[None], scale_factor=SCALE, mode="bilinear",
                           antialias=True)[0].numpy()

        def nd(a, b):
            return (np.abs(a - b) / np.abs(a + b + 1e-8)).mean(axis=0)

        d_ref, d_im, d_om = nd(up, y), nd(harm, y), nd(harm, up)
        thr = np.sort(d_ref.ravel())[int(0.75 * d_ref.size) - 1]
        m = (d_ref > thr) | (d_im > thr) | (d_om > thr)
        a, bb = d_im[m] / d_ref[m], d_om[m] / d_ref[m]
        hh = a + bb - 1
        st = np.stack([a + bb * (1 - np.exp(-0.05 * hh)), bb + a * (1 - np.exp(-0.05 * hh)),
                       np.exp(-0.05 * a * bb)])
        p = np.exp(-st / 0.25)
        p /= p.sum(axis=0)
        for j, name in enumerate(("improvement", "omission", "hallucination")):
            out[name].append(p[j].mean())
    return {key: np.asarray(v, dtype=np.float64) for key, v in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=256)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both sides (default 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--chunk", type=int, default=32, help="tiles per timed chunk (sides alternate)")
    ap.add_argument("--batch-size", type=int, default=None, help="engine batch (default: 8 CPU, 64 CUDA)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    sr, hr, lr = make_tiles(args.tiles, args.size)
    torch.manual_seed(0)
    try:
        lp = load_lpips(None)
    except LPIPSUnavailable:  # ImageNet weights absent offline: the same random trunk on both sides
        lp = load_lpips(RANDOM_TRUNK)
    import lpips

    naive_lpips = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()  # plain package use
    naive_lpips.load_state_dict(lp.net.state_dict())
    sat = load_backbone(None)
    print(f"{args.tiles} tiles of {args.size}x{args.size}x4, scale {SCALE}, torch threads {args.threads}, "
          f"LPIPS trunk: {lp.trunk}, LPIPS-Sat: {sat.backbone_id}")

    lp_dev, sat_dev = lp, sat
    if args.device != "cpu":  # the naive loop stays on the CPU; the engine gets device copies
        lp_dev = load_lpips(RANDOM_TRUNK, args.device)
        lp_dev.net.load_state_dict(lp.net.state_dict())
        sat_dev = copy.deepcopy(sat)
    ev = Evaluator(None, ScoreOptions(scale=SCALE), args.device, lpips_trunk=lp_dev, lpips_sat=sat_dev,
                   batch_size=args.batch_size)
    ev.score_arrays(sr[:4], hr[:4], lr[:4], band_names=CANONICAL_BANDS)  # warm-up
    naive_scores(sr[:2], hr[:2], lr[:2], naive_lpips, sat)  # warm-up

    # The CPU is shared: time both sides chunk by chunk, alternating which goes first, so that both
    # see the same background load; report wall time and this process's CPU time.
    rows, parts = [], []
    wall = {"engine": 0.0, "naive": 0.0}
    cpu = {"engine": 0.0, "naive": 0.0}
    chunks = [slice(i, min(i + args.chunk, args.tiles)) for i in range(0, args.tiles, args.chunk)]
    for c, sl in enumerate(chunks):
        order = ("engine", "naive") if c % 2 == 0 else ("naive", "engine")
        for side in order:
            t0, c0 = time.perf_counter(), time.process_time()
            if side == "engine":
                got = ev.score_arrays(sr[sl], hr[sl], lr[sl], band_names=CANONICAL_BANDS,
                                      tile_ids=[str(i) for i in range(sl.start, sl.stop)])
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                rows.extend(got)
            else:
                parts.append(naive_scores(sr[sl], hr[sl], lr[sl], naive_lpips, sat))
            wall[side] += time.perf_counter() - t0
            cpu[side] += time.process_time() - c0
    ref = {m: np.concatenate([p[m] for p in parts]) for m in parts[0]}
    t_engine, t_naive = wall["engine"], wall["naive"]

    eng = {m: np.full(args.tiles, np.nan) for m in ref}
    for r in rows:
        if r.band == "all":
            eng[r.metric][int(r.tile_id)] = r.value
    print(f"{'metric':<24} max |engine - naive|")
    for m in ref:
        diff = np.nanmax(np.abs(eng[m] - ref[m])) if np.isfinite(ref[m]).any() else float("nan")
        print(f"{m:<24} {diff:.2e}")
    print(f"engine (batched): {args.tiles / t_engine:8.1f} tiles/s  ({t_engine:.1f} s)")
    print(f"naive per tile:   {args.tiles / t_naive:8.1f} tiles/s  ({t_naive:.1f} s)")
    print(f"speed-up: {t_naive / t_engine:.2f}x wall time, {cpu['naive'] / cpu['engine']:.2f}x CPU time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
