"""Inference benchmark: seconds per tile of every registered method, and peak memory of tiled inference.

Run: ``python benchmarks/inference.py [--device cuda] [--tile 64] [--scale 2] [--repeats 3]``

1. Speed. For each method of the registry (a trained checkpoint from ``--models DIR/<method>`` when
   one exists, else a randomly initialised model of the ``demo`` preset: speed does not depend on
   the weights), the median wall time of ``model.sample`` on one ``tile`` x ``tile`` LR tile of real
   Sentinel-2 reflectance (the shipped S2 patch), batch 1, one sample, at the method's default
   steps (SR3 at 50 DDIM steps), after one warm-up call. Goal: SinSR >= 30x faster than SR3.
2. Memory. Tiled inference (``run_inference``) of one method on a scene and on a scene with 4x the
   area (both mirrored copies of the real S2 patch), each in a fresh subprocess that reports its
   peak resident memory (``ru_maxrss``). Goal: peak grows < 1.3x.

Methods missing from the registry are skipped with a note. Timings on a shared CPU are noisy;
compare numbers from the same machine and run only.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

#: every method the study compares (docs/science.md, "The five diffusion methods"), in table order
ALL_METHODS: tuple[str, ...] = ("sr3", "srdiff", "ldm_sr", "resshift", "sinsr", "bicubic", "regression")
S2_PATCH = REPO_ROOT / "data" / "demo" / "source" / "s2_10m_b02_b03_b04_b08_spyndex.tif"
DEFAULT_MODELS_DIR = REPO_ROOT / "data" / "demo" / "models"
SPEED_GOAL = 30.0
MEMORY_GOAL = 1.3
SR3_STEPS = 50


def _s2_reflectance():
    """The real S2 patch as (4, 300, 300) float32 reflectance (DN / 10000)."""
    import warnings

    import numpy as np
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():  # the real patch has no georeferencing
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(S2_PATCH) as ds:
            return ds.read().astype(np.float32) * np.float32(1e-4)


def _model(method: str, scale: int, models_dir: Path, device: str):
    """(model, source label): a trained checkpoint when there is one, else random demo weights."""
    import torch

    from mindgap_core.models import build_model, load_model
    from mindgap_core.models.presets import resolve_config

    folder = models_dir / method
    if (folder / "model_index.json").is_file():
        model = load_model(folder, device=device)
        return model, f"checkpoint {folder}"
    torch.manual_seed(0)
    model = build_model(method, resolve_config(method, "demo"), scale=scale).to(device).eval()
    if model.num_parameters() == 0:
        return model, "no weights"
    return model, f"random demo-preset weights ({model.num_parameters() / 1e6:.2f} M parameters)"


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_speed(args: argparse.Namespace) -> dict[str, float]:
    import torch

    from mindgap_core.models import MODEL_REGISTRY

    lr_full = _s2_reflectance()
    tile = torch.from_numpy(lr_full[None, :, : args.tile, : args.tile].copy()).to(args.device)
    print(f"\n== seconds per tile: {args.tile}x{args.tile} LR px, x{args.scale}, batch 1, 1 sample, "
          f"device {args.device}, median of {args.repeats} after 1 warm-up ==")  # fmt: skip
    print(f"{'method':<11} {'steps':>5} {'s/tile':>9}  weights")
    seconds: dict[str, float] = {}
    for method in args.methods:
        if method not in MODEL_REGISTRY:
            print(f"{method:<11} skipped: not in mindgap_core.models.MODEL_REGISTRY yet")
            continue
        try:
            model, source = _model(method, args.scale, args.models, args.device)
        except Exception as exc:  # a broken method must not hide the others' numbers
            print(f"{method:<11} skipped: cannot build ({type(exc).__name__}: {exc})")
            continue
        steps = SR3_STEPS if method == "sr3" else model.default_steps
        gen = torch.Generator(device=args.device)
        model.sample(tile, steps=min(steps, 2), generator=gen.manual_seed(0))  # warm-up
        times = []
        for r in range(args.repeats):
            _sync(args.device)
            start = time.perf_counter()
            model.sample(tile, steps=steps, generator=gen.manual_seed(r))
            _sync(args.device)
            times.append(time.perf_counter() - start)
        seconds[method] = statistics.median(times)
        print(f"{method:<11} {steps:>5} {seconds[method]:>9.4f}  {source}", flush=True)
        del model
    if "sr3" in seconds and "sinsr" in seconds:
        ratio = seconds["sr3"] / seconds["sinsr"]
        verdict = "meets" if ratio >= SPEED_GOAL else "MISSES"
        print(
            f"SinSR speed-up over SR3 at {SR3_STEPS} DDIM steps: {ratio:.1f}x "
            f"({verdict} the goal >= {SPEED_GOAL:.0f}x)"
        )
    else:
        print("SinSR/SR3 ratio: not measured (sr3 or sinsr missing)")
    return seconds


def _write_scene(path: Path, side: int) -> None:
    """A side x side scene of mirrored copies of the real S2 patch, written row band by row band."""
    import warnings

    import numpy as np
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.windows import Window

    patch = _s2_reflectance()
    row = np.concatenate([patch, patch[:, :, ::-1]] * (side // (2 * patch.shape[2]) + 1), axis=2)[:, :, :side]
    profile = {
        "driver": "GTiff", "width": side, "height": side, "count": 4, "dtype": "float32", "tiled": True,
        "blockxsize": 256, "blockysize": 256,
    }  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # like the real patch: no georeferencing
        ds = rasterio.open(path, "w", **profile)
    with ds:
        ds.descriptions = ("blue", "green", "red", "nir")
        flip = False
        for top in range(0, side, patch.shape[1]):
            band = row[:, ::-1] if flip else row
            n = min(patch.shape[1], side - top)
            ds.write(np.ascontiguousarray(band[:, :n]), window=Window(0, top, side, n))
            flip = not flip


def _child_memory(args: argparse.Namespace) -> None:
    """Run in a subprocess: tiled inference of one scene; print peak RSS as JSON."""
    from mindgap_core.inference import run_inference

    model, _ = _model(args.memory_method, args.scale, args.models, args.device)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with tempfile.TemporaryDirectory() as tmp:
        result = run_inference(
            model, args.child_memory, Path(tmp) / "sr.tif", tile=args.tile, overlap=args.overlap,
            uncertainty_path=Path(tmp) / "std.tif", device=args.device, allow_no_crs=True,
        )  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"baseline": baseline, "peak": peak, "tiles": result.n_tiles, "seconds": result.seconds,
                      "buffer": result.peak_buffer_bytes}))  # fmt: skip


def bench_memory(args: argparse.Namespace) -> float | None:
    from mindgap_core.models import MODEL_REGISTRY

    if args.memory_method not in MODEL_REGISTRY:
        print(f"\nmemory benchmark skipped: {args.memory_method!r} not in the registry yet")
        return None
    print(
        f"\n== peak RSS of tiled inference ({args.memory_method}, tile {args.tile}, overlap {args.overlap}, "
        f"x{args.scale}, with uncertainty), one fresh subprocess per scene =="
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for side in (args.memory_side, 2 * args.memory_side):
            scene = Path(tmp) / f"scene_{side}.tif"
            _write_scene(scene, side)
            cmd = [
                sys.executable, __file__, "--child-memory", str(scene), "--memory-method", args.memory_method,
                "--tile", str(args.tile), "--overlap", str(args.overlap), "--scale", str(args.scale),
                "--device", args.device, "--models", str(args.models),
            ]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"scene {side}x{side}: child failed:\n{done.stderr[-2000:]}")
                return None
            info = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((side, info))
            mib = {k: info[k] / 2**20 for k in ("peak", "baseline", "buffer")}
            print(
                f"scene {side:>5}x{side:<5} LR ({info['tiles']:>4} tiles, {info['seconds']:7.1f} s): "
                f"peak RSS {mib['peak']:8.1f} MiB (after model load {mib['baseline']:8.1f} MiB, "
                f"strip buffers {mib['buffer']:6.1f} MiB)",
                flush=True,
            )
    ratio = rows[1][1]["peak"] / rows[0][1]["peak"]
    added = [max(info["peak"] - info["baseline"], 1) for _, info in rows]
    verdict = "meets" if ratio < MEMORY_GOAL else "MISSES"
    print(f"peak RSS growth for 4x the scene area: {ratio:.3f}x ({verdict} the goal < {MEMORY_GOAL}x); "
          f"memory added by inference itself: {added[0] / 2**20:.1f} -> {added[1] / 2**20:.1f} MiB "
          f"({added[1] / added[0]:.2f}x)")  # fmt: skip
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu", help="torch device")
    parser.add_argument("--tile", type=int, default=64, help="tile size in LR px (default 64, as inference)")
    parser.add_argument("--overlap", type=int, default=8, help="overlap in LR px for the memory runs")
    parser.add_argument("--scale", type=int, default=2, help="SR factor of the random models (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per method (median)")
    parser.add_argument("--methods", nargs="+", default=list(ALL_METHODS), help="methods to time")
    parser.add_argument(
        "--models", type=Path, default=DEFAULT_MODELS_DIR, help="folder of trained <method>/ model folders"
    )
    parser.add_argument("--memory-method", default="regression", help="model of the memory runs")
    parser.add_argument("--memory-side", type=int, default=256, help="LR side of the smaller memory scene")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_memory:
        _child_memory(args)
        return 0
    print(f"MindGap inference benchmark - device {args.device}, torch threads {_threads()}")
    if not args.skip_speed:
        bench_speed(args)
    if not args.skip_memory:
        bench_memory(args)
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    sys.exit(main())
