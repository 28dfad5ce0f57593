"""``mindgap evaluate --experiment FILE --out RESULTS``: run the whole matrix, resumably."""

from __future__ import annotations

import argparse

HELP = "Run an experiment (test domains × models × metrics) into a results store; resumes after a crash."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment YAML")
    parser.add_argument("--out", required=True, help="results store folder")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")


def run(args: argparse.Namespace) -> int:
    from mindgap_core.cli.progress import tqdm_progress
    from mindgap_core.experiments.runner import process_grid, run_experiment
    from mindgap_core.experiments.spec import load_experiment

    experiment = load_experiment(args.experiment)
    rank, world = process_grid()
    with tqdm_progress(f"evaluate (rank {rank}/{world})") as on_progress:
        summary = run_experiment(experiment, args.out, device=args.device, rank=rank, world=world,
                                 on_progress=on_progress)
    print(f"run {summary.run_id}: {summary.units_run} units run, {summary.units_done_before} already done, "
          f"{summary.units_total} in the matrix (rank {rank} of {world})")
    return 0
