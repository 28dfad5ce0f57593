"""``mindgap demo --stage data``: rebuild the embedded demo deterministically."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Rebuild the embedded demo (stage 'data': pairs from the real sample imagery)."

REPO_DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


def _stage_data(args: argparse.Namespace) -> int:
    from mindgap_core.cli.progress import tqdm_progress
    from mindgap_core.data.demo import DemoConfig, build_demo_data

    config = DemoConfig(seed=args.seed)
    with tqdm_progress("demo tiles") as on_progress:
        manifest = build_demo_data(args.source, args.out, config, on_progress=on_progress)
    print(manifest)
    return 0


#: stage name -> runner (a plain registry; later stages add entries)
STAGES = {"data": _stage_data}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, choices=sorted(STAGES), help="which part to rebuild")
    parser.add_argument("--out", type=Path, default=REPO_DEMO, help="demo folder (default: data/demo)")
    parser.add_argument("--source", type=Path, default=REPO_DEMO / "source", help="real sample imagery")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")


def run(args: argparse.Namespace) -> int:
    return STAGES[args.stage](args)
