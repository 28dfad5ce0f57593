"""``mindgap train``: train one super-resolution model on one regime (or a diversity-scaling series).

Examples (M = data/demo/manifest.parquet)::

    mindgap train --method resshift --regime synthetic --data M --out runs/resshift/synthetic
    mindgap train --method resshift --regime finetune --init runs/resshift/synthetic --data M \\
        --out runs/resshift/finetune
    mindgap train --method sinsr --regime cross_sensor --teacher runs/resshift/cross_sensor --data M \\
        --out runs/sinsr/cross_sensor
    mindgap train --method srdiff --regime cross_sensor --blocks-series --data M --out runs/scaling/srdiff
    mindgap train --method regression --regime cross_sensor --fixed-size-series --data M \\
        --out runs/fixed/regression
    accelerate launch --multi_gpu --num_processes 2 -m mindgap_core train ...   # several processes

Regimes: synthetic | real (the cross-sensor domain in the manifest: real_cross_sensor, or
simulated_cross_sensor in the demo) | mixed (--mix-ratio = share of cross-sensor samples) |
finetune (cross-sensor, from --init). Interrupted runs continue with --resume.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "train a super-resolution model (five diffusion methods + baselines) on a training regime"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2]
    parser.add_argument("--method", required=True,
                        help="sr3 | srdiff | ldm_sr | resshift | sinsr | bicubic | regression")
    parser.add_argument("--regime", required=True, help="synthetic | cross_sensor | mixed | finetune")
    parser.add_argument("--data", required=True, type=Path, metavar="MANIFEST",
                        help="pair manifest (manifest.parquet or its folder)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="output folder (new, or --resume)")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer steps over all stages (default 500; bicubic: 0)")
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per step and process (default 8)")
    parser.add_argument("--lr", type=float, default=2e-4, help="peak learning rate, AdamW (default 2e-4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    parser.add_argument("--mix-ratio", type=float, default=0.5,
                        help="mixed regime: probability that a sample is cross-sensor (default 0.5)")
    parser.add_argument("--cross-domain", default=None,
                        help="real_cross_sensor | simulated_cross_sensor, when the manifest has both")
    parser.add_argument("--init", type=Path, default=None, metavar="DIR",
                        help="start from this checkpoint (required by --regime finetune)")
    parser.add_argument("--teacher", type=Path, default=None, metavar="DIR",
                        help="sinsr: trained ResShift teacher (otherwise one is trained first, same run)")
    blocks = parser.add_mutually_exclusive_group()
    blocks.add_argument("--blocks", type=int, default=None, metavar="K",
                        help="diversity scaling: train on the first K spatial blocks only")
    blocks.add_argument("--blocks-series", action="store_true",
                        help="diversity scaling: K = 1, 2, 4, ... blocks, same steps, in DIR/blocks-KKK "
                             "(more blocks = more tiles: diversity and data size confounded)")
    blocks.add_argument("--fixed-size-series", action="store_true",
                        help="diversity at a fixed number of training tiles, and data size at a fixed number "
                             "of blocks (the control), same steps, in DIR/blocks-KKK-tiles-NNN")
    parser.add_argument("--config", default="demo", metavar="PRESET|JSON",
                        help="model config: preset tiny | demo, or a JSON file ({'preset': ..., overrides})")
    parser.add_argument("--ema-decay", type=float, default=0.999,
                        help="EMA of weights, 0 = off (default 0.999)")
    parser.add_argument("--checkpoint-every", type=int, default=100, metavar="N",
                        help="steps between checkpoints")
    parser.add_argument("--mixed-precision", default="no", choices=("no", "fp16", "bf16"),
                        help="autocast on CUDA (ignored on CPU)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run in --out from its last checkpoint "
                             "(a finished one is kept)")
    parser.add_argument("--save-dtype", default="fp32", choices=("fp32", "fp16"),
                        help="dtype of the saved weights (fp16: half the size, loaded back as float32)")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep the last checkpoint after finishing")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads per process (default: torch's; 1 is fastest for tiny models)")


def command_line(args: argparse.Namespace) -> list[str]:
    """An equivalent ``mindgap train`` command line with every option spelled out (for training.json)."""
    argv = ["mindgap", "train"]
    for key, value in vars(args).items():
        if key.startswith("_") or key == "command" or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def run(args: argparse.Namespace) -> int:
    import contextlib
    import os

    import torch

    from mindgap_core.cli.progress import tqdm_progress
    from mindgap_core.train.scaling import run_fixed_size_series, run_scaling_series
    from mindgap_core.train.trainer import DEFAULT_STEPS, TrainOptions, train

    steps = args.steps if args.steps is not None else (0 if args.method == "bicubic" else DEFAULT_STEPS)
    opts = TrainOptions(
        method=args.method, regime=args.regime, manifest=args.data, out=args.out, steps=steps,
        batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed, mix_ratio=args.mix_ratio,
        init=args.init, teacher=args.teacher, blocks=args.blocks, config=args.config,
        cross_domain=args.cross_domain, ema_decay=args.ema_decay, checkpoint_every=args.checkpoint_every,
        mixed_precision=args.mixed_precision, resume=args.resume, keep_checkpoints=args.keep_checkpoints,
        save_dtype=args.save_dtype,
        command_line=tuple(command_line(args)),
    )
    if args.threads is not None:
        if args.threads < 1:
            from mindgap_core.errors import ConfigError

            raise ConfigError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under accelerate launch only rank 0 reports
    with contextlib.ExitStack() as stack:
        bar: list = []

        def on_progress(done: int, total: int) -> None:
            if not main_rank:
                return
            if not bar:  # opened at the first step, so that input errors print no empty bar
                bar.append(stack.enter_context(tqdm_progress(f"train {args.method}/{args.regime}")))
            bar[0](done, total)

        if args.blocks_series:
            results = run_scaling_series(opts, on_progress=on_progress)
        elif args.fixed_size_series:
            results = run_fixed_size_series(opts, on_progress=on_progress)
        else:
            results = [train(opts, on_progress=on_progress)]
    for r in results if main_rank else []:
        if r.already_done:
            print(f"{r.out}: already trained ({r.method}/{r.regime}, {r.steps} steps); nothing to do")
        else:
            loss = f", final loss {r.final_loss:.4g}" if r.final_loss is not None else ""
            resumed = f", resumed from step {r.resumed_from}" if r.resumed_from else ""
            print(f"{r.out}: {r.method}/{r.regime} {r.steps} steps in {r.wall_s:.0f} s{loss}{resumed}")
    return 0
