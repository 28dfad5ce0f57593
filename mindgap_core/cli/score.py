"""``mindgap score``: score one SR raster against its HR reference (and LR input)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "Score an SR raster against the HR reference (and the LR input for opensr-test-style scores): "
    "PSNR, SSIM, SAM, ERGAS, cPSNR, LPIPS, LPIPS-Sat, consistency, correctness"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sr", required=True, help="super-resolved raster (GeoTIFF/COG) on the HR grid")
    parser.add_argument("--hr", required=True, help="HR reference raster, same bands and grid")
    parser.add_argument("--lr", default=None, help="LR input raster (needed by consistency/correctness)")
    parser.add_argument("--scale", type=int, default=None, help="HR/LR resolution ratio (inferred from --lr)")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated metric names (default: all that can run)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--bands", default=None, help="band names in file order, e.g. blue,green,red,nir")
    parser.add_argument(
        "--dn-scale", type=float, default=None,
        help="read integer (DN) rasters as reflectance = DN x this factor (e.g. 0.0001)",
    )
    parser.add_argument("--data-range", type=float, default=1.0, help="reflectance data range (default 1)")
    parser.add_argument(
        "--hist-match", choices=("none", "hr", "lr"), default="none",
        help="match SR histograms per band to HR or LR before the HR-referenced metrics (default none)",
    )
    parser.add_argument("--cpsnr-shift", type=int, default=3,
                        help="cPSNR search radius in HR pixels (default 3)")
    parser.add_argument("--opensr-border", type=int, default=0,
                        help="HR border pixels ignored by opensr scores (default 0)")
    parser.add_argument("--lpips-weights", type=Path, default=None,
                        help="standard LPIPS needs torchvision's ImageNet AlexNet weights file "
                             "alexnet-owt-7be5be79.pth: give its path, or put it in "
                             "$TORCH_HOME/hub/checkpoints/ (default ~/.cache/torch/hub/checkpoints/). "
                             "Nothing is downloaded: without the file LPIPS is skipped with a note "
                             "(an error when --metrics names lpips); LPIPS-Sat needs no download")
    parser.add_argument("--lpips-sat-backbone", default=None,
                        help="LPIPS-Sat backbone: a MindGap folder or an SSL4EO-S12 checkpoint file "
                             "(default: the shipped data/lpips_sat)")
    parser.add_argument("--ssl4eo-arch", choices=("resnet18", "resnet50"), default="resnet18",
                        help="architecture of an SSL4EO-S12 checkpoint (default resnet18)")
    parser.add_argument("--maps-dir", default=None, help="also write metric maps (COGs on the HR grid) here")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")


def _read(path: str, bands: tuple[str, ...] | None, dn_scale: float | None):
    import numpy as np

    from mindgap_core.errors import InputError
    from mindgap_core.io import read_raster

    r = read_raster(path, band_names=bands)
    if r.units == "DN":
        if dn_scale is None:
            raise InputError(path, "holds digital numbers (DN); give --dn-scale to read them as reflectance")
        r = r.replace(array=r.array.astype(np.float64) * dn_scale, units="reflectance")
    return r


def run(args: argparse.Namespace) -> int:
    import json
    import math
    import sys
    from dataclasses import asdict

    import torch

    from mindgap_core.errors import ConfigError
    from mindgap_core.metrics.engine import Evaluator, ScoreOptions, validate_pair
    from mindgap_core.metrics.opensr import OpensrOptions
    from mindgap_core.metrics.registry import parse_metric_list
    from mindgap_core.scoring import MapOptions, score_pair, write_rasters

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device}: CUDA is not available on this machine")
    bands = tuple(b.strip() for b in args.bands.split(",")) if args.bands else None
    sr = _read(args.sr, bands, args.dn_scale)
    hr = _read(args.hr, bands, args.dn_scale)
    lr = _read(args.lr, bands, args.dn_scale) if args.lr else None
    scale = validate_pair(sr, hr, lr, args.scale, names=(args.sr, args.hr, args.lr or "LR"))
    metrics = parse_metric_list(args.metrics) if args.metrics else None
    options = ScoreOptions(data_range=args.data_range, hist_match=args.hist_match, scale=scale,
                           cpsnr_max_shift=args.cpsnr_shift, opensr=OpensrOptions(border=args.opensr_border))
    ev = Evaluator(metrics, options, args.device, lpips_trunk=args.lpips_weights,
                   lpips_sat=args.lpips_sat_backbone, ssl4eo_arch=args.ssl4eo_arch)
    tile_id = Path(args.sr).stem
    kinds = ["abs_error", "ssim", "sam", *(k for k in ("lpips", "lpips_sat") if k in ev.metrics)]
    scored = score_pair(ev, [hr], [sr], lr=None if lr is None else [lr], tile_ids=[tile_id], scale=scale,
                        maps=kinds if args.maps_dir else (),
                        map_options=MapOptions(args.data_range, args.hist_match == "hr", args.device))
    rows = scored.rows
    written = write_rasters(scored.tiles[0].maps, lambda kind: Path(args.maps_dir) / f"{tile_id}_{kind}.tif")
    maps_written = [str(p) for p in written.values()]

    if args.json:
        out = {
            "sr": args.sr, "hr": args.hr, "lr": args.lr,
            "rows": [asdict(r) | {"options": dict(r.options)} for r in rows],
            "notes": ev.notes, "maps": maps_written,
        }
        print(json.dumps(out, indent=1, allow_nan=False))
    else:
        width = max((len(r.metric) for r in rows), default=6)
        for r in rows:
            value = f"{r.value:.6g}" if math.isfinite(r.value) else str(r.value)
            print(f"{r.metric:<{width}}  {r.band:<5}  {value}")
        for note in ev.notes:
            print(f"note: {note}", file=sys.stderr)
        for m in maps_written:
            print(f"map: {m}")
    return 0
