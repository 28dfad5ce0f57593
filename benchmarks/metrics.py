"""Benchmark: the batched metric engine vs a naive per-tile loop (skimage + lpips per tile).

Same 256 tiles of 128x128x4 (real Sentinel-2 reflectance crops as HR, a seeded imperfect SR, LR =
HR area-averaged x4), same full suite on both sides: PSNR, SSIM, SAM, ERGAS, cPSNR, LPIPS (AlexNet;
a seeded random trunk stands in when the ImageNet weights are absent — same weights both sides),
LPIPS-Sat (shipped backbone), opensr-test consistency (3), synthesis (1) and correctness (3).

The naive loop is what one writes with the reference libraries: per tile and band skimage
``peak_signal_noise_ratio`` / ``structural_similarity``, numpy SAM/ERGAS/cPSNR, ``lpips.LPIPS`` and
LPIPS-Sat on one tile, and opensr-test's recipe with skimage ``match_histograms`` and
``phase_cross_correlation`` + scipy shift. Prints tiles/s for both and the ratio, and the largest
disagreement between the two on every metric (a speed number is only meaningful if both agree).

    python benchmarks/metrics.py [--tiles 256] [--size 128] [--threads 1] [--device cpu]

``--opensr``: instead, MindGap's batched opensr-test-style scores (the Evaluator with the 7 opensr
metrics, border 16) against ESA opensr-test 1.3.3's own per-tile ``Metrics.compute`` on the same
tiles, in the same run (see :func:`opensr_benchmark`); opensr-test runs in its own venv
(``--opensr-python``, ``$MINDGAP_OPENSR_PYTHON`` or /tmp/opensr-venv/bin/python).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
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
from mindgap_core.metrics.opensr import SCORES as OPENSR_SCORES  # noqa: E402
from mindgap_core.metrics.opensr import OpensrOptions  # noqa: E402
from mindgap_core.types import CANONICAL_BANDS  # noqa: E402

SCALE = 4
RGB = [2, 1, 0]
OPENSR_BORDER = 16  # opensr-test's default border_mask
OPENSR_PYTHON = Path("/tmp/opensr-venv/bin/python")


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
        "consistency_spectral", "consistency_spatial", "synthesis", "improvement", "omission",
        "hallucination")}
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
        # opensr-test synthesis and correctness (spectral + spatial harmonisation on the mean of all
        # bands, nd distance, softmin)
        harm = match_histograms(x, y, channel_axis=0)
        s = phase_cross_correlation(y.mean(0), harm.mean(0), upsample_factor=50, normalization="phase")[0]
        if np.hypot(*s) <= 5:
            harm = np.stack([nd_shift(b, s, order=1, mode="nearest") for b in harm])
        up = F.interpolate(torch.from_numpy(lo)[None], scale_factor=SCALE, mode="bilinear",
                           antialias=True)[0].numpy()
        out["synthesis"].append(np.abs(up - harm).mean())

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


def _run_opensr_test(python: Path, sr, hr, lr, workdir: Path) -> dict:
    """opensr-test's per-tile ``Metrics.compute`` on these tiles, in its own venv: the scores and
    the seconds of its scoring loop alone (interpreter start and imports excluded)."""
    npz, out = workdir / "tiles.npz", workdir / "scores.json"
    np.savez(npz, sr=sr, hr=hr, lr=lr)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run([str(python), str(ROOT / "scripts" / "opensr_reference.py"), "score", str(npz), str(out),
                    "--border", str(OPENSR_BORDER)], check=True, env=env)
    return json.loads(out.read_text())


def opensr_benchmark(args: argparse.Namespace) -> int:
    """MindGap's batched opensr-test-style scores vs opensr-test 1.3.3 per tile, same tiles, same run.

    Ours: the Evaluator with the 7 opensr metrics (border 16, the tiles of :func:`make_tiles`), in this
    process. Theirs: ``scripts/opensr_reference.py score`` in opensr-test's venv, which times its
    ``Metrics.compute`` loop only (import and start-up, ~4 s, are not counted: the ratio favours
    opensr-test). Chunks alternate which side goes first so both see the same background load; both
    run on ``--threads`` torch threads (opensr-test on 1) with single-threaded BLAS.
    """
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    sr, hr, lr = make_tiles(args.tiles, args.size)
    python = Path(args.opensr_python or os.environ.get("MINDGAP_OPENSR_PYTHON") or OPENSR_PYTHON)
    ev = Evaluator(list(OPENSR_SCORES), ScoreOptions(scale=SCALE, opensr=OpensrOptions(border=OPENSR_BORDER)),
                   args.device, batch_size=args.batch_size)
    ev.score_arrays(sr[:4], hr[:4], lr[:4], band_names=CANONICAL_BANDS)  # warm-up
    print(f"opensr-style scores: {args.tiles} tiles of {args.size}x{args.size}x4, scale {SCALE}, border "
          f"{OPENSR_BORDER}, torch threads {args.threads}, device {args.device}, "
          f"engine batch {ev.batch_size}")
    have_ref = python.exists()
    if not have_ref:
        print(f"opensr-test not installed at {python}, comparison skipped (make its venv as "
              "scripts/opensr_reference.py says, or give --opensr-python)")
    wall = {"ours": 0.0, "opensr-test": 0.0}
    cpu = {"ours": 0.0, "opensr-test": 0.0}
    ours: dict[str, np.ndarray] = {m: np.full(args.tiles, np.nan) for m in OPENSR_SCORES}
    theirs: dict[str, np.ndarray] = {m: np.full(args.tiles, np.nan) for m in OPENSR_SCORES}
    chunks = [slice(i, min(i + args.chunk, args.tiles)) for i in range(0, args.tiles, args.chunk)]
    with tempfile.TemporaryDirectory() as tmp:
        for c, sl in enumerate(chunks):
            sides = ("ours", "opensr-test") if c % 2 == 0 else ("opensr-test", "ours")
            for side in sides:
                if side == "ours":
                    t0, c0 = time.perf_counter(), time.process_time()
                    rows = ev.score_arrays(sr[sl], hr[sl], lr[sl], band_names=CANONICAL_BANDS,
                                           tile_ids=[str(i) for i in range(sl.start, sl.stop)])
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    wall[side] += time.perf_counter() - t0
                    cpu[side] += time.process_time() - c0
                    for r in rows:
                        ours[r.metric][int(r.tile_id)] = r.value
                elif have_ref:
                    got = _run_opensr_test(python, sr[sl], hr[sl], lr[sl], Path(tmp))
                    wall[side] += got["wall_s"]
                    cpu[side] += got["cpu_s"]
                    for i, sc in zip(range(sl.start, sl.stop), got["scores"], strict=True):
                        for m, v in sc.items():
                            theirs[m][i] = np.nan if v is None else v
    if have_ref:
        print(f"{'metric':<24} max rel |ours - opensr-test|   tiles > 1e-3   NaN on both sides")
        for m in OPENSR_SCORES:
            a, b = ours[m], theirs[m]
            both = np.isfinite(a) & np.isfinite(b)
            rel = np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-12)
            same_nan = int((np.isnan(a) & np.isnan(b)).sum())
            odd = int((np.isnan(a) != np.isnan(b)).sum())
            print(f"{m:<24} {rel.max() if rel.size else float('nan'):.2e}{'':>19}{int((rel > 1e-3).sum()):>5}"
                  f"{same_nan:>14}{f'  ({odd} NaN on one side only)' if odd else ''}")
        print("(above 1e-3, from opensr-test's float32 arithmetic: its phase correlation on these float32 "
              "tiles can land on the neighbouring 1/50-px peak, and OpenCV warps sr_harm in float32, "
              "which can move one pixel across the hard 75th-percentile correctness mask: ~1/3000 of "
              "the masked pixels. MindGap computes in float64; see tests/mindgap_core/metrics/"
              "test_opensr_parity.py)")
    print(f"ours (batched):        {args.tiles / wall['ours']:8.1f} tiles/s  ({wall['ours']:.1f} s wall, "
          f"{cpu['ours']:.1f} s CPU)")
    if have_ref:
        print(f"opensr-test per tile:  {args.tiles / wall['opensr-test']:8.1f} tiles/s  "
              f"({wall['opensr-test']:.1f} s wall, {cpu['opensr-test']:.1f} s CPU)")
        print(f"speed-up: {wall['opensr-test'] / wall['ours']:.2f}x wall time, "
              f"{cpu['opensr-test'] / cpu['ours']:.2f}x CPU time")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=256)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(),
                    help="torch threads for both sides (default: torch's default on this machine, "
                         f"{torch.get_num_threads()}, as a user runs either; 1 isolates the algorithms)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--chunk", type=int, default=32, help="tiles per timed chunk (sides alternate)")
    ap.add_argument("--batch-size", type=int, default=None, help="engine batch (default: 8 CPU, 64 CUDA)")
    ap.add_argument("--opensr", action="store_true",
                    help="benchmark the opensr-style scores against opensr-test 1.3.3 instead")
    ap.add_argument("--opensr-python", default=None,
                    help="python of opensr-test's venv "
                         "(default $MINDGAP_OPENSR_PYTHON or /tmp/opensr-venv/bin/python)")
    args = ap.parse_args()
    if args.opensr:
        return opensr_benchmark(args)
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
