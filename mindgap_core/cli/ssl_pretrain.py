"""``mindgap ssl-pretrain``: pre-train the LPIPS-Sat backbone (SimSiam) on the real imagery we ship,
then calibrate its channel weights (``mindgap lpips-sat-calibrate``'s step) unless told not to."""

from __future__ import annotations

import argparse

HELP = (
    "Self-supervised (SimSiam) pre-training of the LPIPS-Sat backbone on the real Sentinel-2 patch, "
    "Landsat-8 scene and the demo HR image without its test/val tiles, then 2AFC calibration of its "
    "channel weights; writes model.safetensors + config.json + training_log.json + calibration_log.json"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindgap_core.cli.lpips_sat_calibrate import add_source_arguments

    parser.add_argument("--out", default="data/lpips_sat", help="output folder (default data/lpips_sat)")
    add_source_arguments(parser)
    parser.add_argument("--landsat-dir", default=None,
                        help="Landsat-8 folder (*_B2/B3/B4.TIF); default <source-dir>/landsat8")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default 400)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="regions per step, 2 views each (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda); default cpu")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: bit-reproducible, and fastest on a shared CPU; recorded)",
    )
    parser.add_argument("--no-calibrate", action="store_true",
                        help="keep uniform channel weights (skip the 2AFC calibration)")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    import torch

    from mindgap_core.cli.lpips_sat_calibrate import calibrate_and_report
    from mindgap_core.cli.progress import tqdm_progress
    from mindgap_core.errors import ConfigError
    from mindgap_core.ssl.data import load_sources
    from mindgap_core.ssl.pretrain import PretrainConfig, pretrain, save_backbone

    if args.threads < 1:
        raise ConfigError("--threads must be >= 1")
    cfg = PretrainConfig(seed=args.seed)
    if args.steps is not None:
        if args.steps < 1:
            raise ConfigError("--steps must be >= 1")
        cfg = replace(cfg, steps=args.steps, warmup_steps=min(cfg.warmup_steps, args.steps))
    if args.batch_size is not None:
        if args.batch_size < 2:
            raise ConfigError("--batch-size must be >= 2 (BatchNorm needs two samples)")
        cfg = replace(cfg, batch_size=args.batch_size)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device}: CUDA is not available on this machine")
    images = load_sources(Path(args.source_dir), args.landsat_dir, Path(args.demo_dir))
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        with tqdm_progress("ssl-pretrain") as on_progress:
            result = pretrain(images, cfg, device=args.device, on_progress=on_progress)
        out = save_backbone(Path(args.out), result, cfg, device=args.device)
        n_params = sum(p.numel() for p in result.encoder.parameters())
        print(
            f"wrote {out} ({n_params / 1e6:.2f} M parameters, {cfg.steps} steps, final loss "
            f"{result.losses[-1]:.4f}, collapse std {result.collapse_std:.4f}, "
            f"{result.wall_time_s:.0f} s wall, {result.cpu_time_s:.0f} s CPU)"
        )
        if not args.no_calibrate:
            calibrate_and_report(out, Path(args.demo_dir), Path(args.source_dir), args.seed)
    finally:
        torch.set_num_threads(threads)
    return 0
