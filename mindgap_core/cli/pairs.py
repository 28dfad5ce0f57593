"""``mindgap pairs``: cut real Sentinel-2 / PlanetScope tile pairs and write their manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "build real cross-sensor LR/HR tile pairs (Sentinel-2 + PlanetScope) with a manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--s2", required=True, metavar="PATH",
                        help="Sentinel-2 L2A: STAC item (.json file or URL), .SAFE folder, per-band folder, "
                        "or 4-band reflectance GeoTIFF (bands named, else in the order blue, green, red, "
                        "nir)")
    parser.add_argument("--ps", required=True, metavar="PATH",
                        help="PlanetScope: STAC item (.json file or URL), analytic SR GeoTIFF (UDM2 found "
                        "beside it), or 4-band reflectance GeoTIFF")
    parser.add_argument("--scale", required=True, type=int, metavar="N",
                        help="HR pixels per S2 pixel per axis (HR is resampled to S2 pixel size / N)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--tile", type=int, default=64, metavar="PX",
                        help="HR tile size in pixels, a multiple of --scale (default 64)")
    parser.add_argument("--min-valid", type=float, default=0.9, metavar="F",
                        help="keep tiles with at least this fraction of valid pixels (default 0.9)")
    parser.add_argument("--block-size", type=int, default=2, metavar="N",
                        help="spatial split blocks of N x N tiles (default 2)")
    parser.add_argument("--correct-shift", action="store_true",
                        help="remove the scene-level sub-pixel shift from the HR before tiling")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split assignment (default 0)")
    parser.add_argument("--synthetic", default=None, metavar="METHOD",
                        help="also write the HR tiles degraded by METHOD (bicubic, gaussian_mtf, "
                        "opensr_like) as the 'synthetic' domain of the same manifest: the reference "
                        "`mindgap gap` compares the real pairs with")


def summary(manifest: Path) -> str:
    """One line: real pairs per split, the median per-tile shift (LR pixels), synthetic tiles if any."""
    import json

    import numpy as np

    from mindgap_core.data.manifest import read_manifest
    from mindgap_core.data.pairs import DOMAIN, SYNTHETIC_DOMAIN

    everything = read_manifest(manifest)
    frame = everything[everything["domain"] == DOMAIN]
    synthetic = everything[everything["domain"] == SYNTHETIC_DOMAIN]
    counts = frame["split"].value_counts()
    per_split = ", ".join(f"{name} {int(counts.get(name, 0))}" for name in ("train", "val", "test"))
    dx, dy = np.nanmedian(frame["shift_x_lr"]), np.nanmedian(frame["shift_y_lr"])
    magnitude = np.nanmedian(np.hypot(frame["shift_x_lr"], frame["shift_y_lr"]))
    scene = json.loads(frame["params_json"].iloc[0]).get("scene_shift_lr", [None, None])
    scene_text = "n/a" if None in scene else f"dx {scene[0]:+.2f}, dy {scene[1]:+.2f}"
    corrected = " (corrected)" if bool(frame["shift_corrected"].iloc[0]) else ""
    extra = ""
    if len(synthetic):
        extra = f"; + {len(synthetic)} synthetic ({synthetic['degradation'].iloc[0]}) LR tiles"
    return (
        f"{len(frame)} pairs ({per_split}); median tile shift dx {dx:+.2f}, dy {dy:+.2f}, "
        f"|shift| {magnitude:.2f} LR px; scene shift {scene_text} LR px{corrected}{extra}"
    )


def run(args: argparse.Namespace) -> int:
    from mindgap_core.cli.progress import tqdm_progress
    from mindgap_core.data.pairs import check_out_dir, plan_pairs, write_pairs

    check_out_dir(args.out)
    plan = plan_pairs(  # reads and checks everything; input errors surface before any output
        args.s2, args.ps, scale=args.scale, tile_size=args.tile, min_valid=args.min_valid,
        block_size=args.block_size, correct_shift=args.correct_shift, seed=args.seed,
        synthetic=args.synthetic,
    )
    with tqdm_progress("pairs: writing tiles") as on_progress:
        manifest = write_pairs(plan, args.out, on_progress=on_progress)
    print(manifest)
    print(summary(manifest))
    return 0
