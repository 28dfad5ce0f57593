"""``mindgap adapter --kind harmoniser|learned --data MANIFEST --out DIR``: fit an LR -> LR adapter."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "Fit a domain adapter that maps cross-sensor LR toward the synthetic-LR domain (classical harmoniser: "
    "histogram matching + co-registration + MTF matching; or a small learned CNN), for the decoupled "
    "'adapter + synthetic-trained SR model' pipeline."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", required=True, choices=("harmoniser", "learned"), help="adapter kind")
    parser.add_argument("--data", required=True, type=Path, help="manifest with paired source/target domains")
    parser.add_argument("--out", required=True, type=Path, help="adapter folder to write")
    parser.add_argument("--source-domain", default="simulated_cross_sensor",
                        help="domain whose LR is adapted (default: simulated_cross_sensor)")
    parser.add_argument("--target-domain", default="synthetic",
                        help="domain it is mapped to (default: synthetic)")
    parser.add_argument("--coregister", action="store_true",
                        help="harmoniser: co-register each tile to the HR reference (oracle geometry at "
                             "inference)")
    parser.add_argument("--steps", type=int, default=1500, help="learned: training steps (default: 1500)")
    parser.add_argument("--batch-size", type=int, default=16, help="learned: batch size (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="learned: seed (default: 0)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from mindgap_core.adapters.base import load_adapter_pairs
    from mindgap_core.adapters.harmoniser import Harmoniser
    from mindgap_core.adapters.learned import (
        train_learned_adapter,
        validation_l1,
        write_loss_log,
        write_training_info,
    )
    from mindgap_core.cli.progress import tqdm_progress
    from mindgap_core.errors import InputError
    from mindgap_core.io.atomic import check_writable

    if args.steps < 1 or args.batch_size < 1:
        raise InputError("--steps/--batch-size", "must be >= 1")
    if args.coregister and args.kind != "harmoniser":
        raise InputError("--coregister", "applies to --kind harmoniser only")
    check_writable(args.out / "adapter_index.json")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    train = load_adapter_pairs(args.data, args.source_domain, args.target_domain, "train")
    val = load_adapter_pairs(args.data, args.source_domain, args.target_domain, "val")
    data = {"manifest": str(args.data), "source_domain": args.source_domain,
            "target_domain": args.target_domain}
    if args.kind == "harmoniser":
        start = time.perf_counter()
        adapter = Harmoniser.fit(train, coregister=args.coregister)
        summary = {"kind": "harmoniser", "coregister": args.coregister, "steps": 0, "device": "cpu",
                   "wall_s": round(time.perf_counter() - start, 2), "train_tiles": len(train.tile_ids),
                   **validation_l1(adapter, val)}
        rows = None
    else:
        with tqdm_progress("train learned adapter") as on_progress:
            adapter, rows, summary = train_learned_adapter(
                train, val, steps=args.steps, batch_size=args.batch_size, seed=args.seed, device=device,
                on_progress=on_progress,
            )
    args.out.mkdir(parents=True, exist_ok=True)
    if rows is not None:
        write_loss_log(args.out, rows)
    write_training_info(args.out, {**summary, **data})
    adapter.save(args.out)  # the index last: the folder is an adapter only when complete
    print(f"{args.kind} adapter written to {args.out}: validation L1 to the {args.target_domain} LR "
          f"{summary['val_l1_before']:.5f} -> {summary['val_l1_after']:.5f} ({len(val.tile_ids)} tiles)")
    return 0
