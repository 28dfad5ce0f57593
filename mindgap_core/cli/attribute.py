"""``mindgap attribute --experiment FILE --out RESULTS``: split the domain gap by simulator effect."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

HELP = (
    "Attribute the synthetic -> cross-sensor gap to the simulator's effects: evaluate every model on "
    "the target domain re-simulated with one effect on and with all-but-one on, then print single-effect, "
    "leave-one-out and interaction terms with paired bootstrap CIs."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment YAML with an 'attribution' section")
    parser.add_argument("--out", required=True, type=Path, help="results store folder")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--metric", action="append", help="print only this metric (repeatable)")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", dest="format", action="store_const", const="markdown",
                     help="markdown table (default)")
    fmt.add_argument("--json", dest="format", action="store_const", const="json", help="JSON records")
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv", help="CSV, full precision")
    parser.set_defaults(format="markdown")


def run(args: argparse.Namespace) -> int:
    from mindgap_core.attribution.decompose import attribution_table
    from mindgap_core.attribution.run import run_attribution
    from mindgap_core.cli.gap import _render
    from mindgap_core.cli.progress import tqdm_progress
    from mindgap_core.errors import InputError
    from mindgap_core.experiments.runner import process_grid
    from mindgap_core.experiments.spec import load_experiment

    if args.n_boot < 0:
        raise InputError("--n-boot", "must be >= 0")
    experiment = load_experiment(args.experiment)
    if experiment.attribution is None:
        raise InputError(args.experiment, "no 'attribution' section (reference, target, effects)")
    rank, world = process_grid()
    with tqdm_progress("simulate attribution domains") as on_simulate, \
            tqdm_progress(f"attribute (rank {rank}/{world})") as on_progress:
        summary, domains = run_attribution(experiment, args.out, device=args.device, rank=rank, world=world,
                                           on_progress=on_progress, on_simulate=on_simulate)
    print(f"run {summary.run_id}: {summary.units_run} units run, {summary.units_done_before} already done, "
          f"{summary.units_total} in the matrix (rank {rank} of {world})", file=sys.stderr)
    if world > 1 and rank != 0:
        return 0
    table = attribution_table(args.out, domains, metric=args.metric or list(experiment.metrics),
                              filters={"run_id": summary.run_id}, n_boot=args.n_boot, seed=args.seed)
    text = _render(table, args.format, attribution_markdown)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def attribution_markdown(table: pd.DataFrame) -> str:
    """One markdown table per metric: rows = models, columns = terms (value [95 % CI])."""
    from mindgap_core.cli.gap import decimals_for

    lines: list[str] = []
    for metric, group in table.groupby("metric", sort=True):
        terms = list(dict.fromkeys(group["term"]))
        d = decimals_for(float(group["value"].abs().max() or 1.0) / 10)
        lines += [f"**{metric}** (negative = worse on the cross-sensor domain; 95 % paired bootstrap CI over "
                  f"{int(group['n_tiles'].max())} tiles)", "",
                  "| model | " + " | ".join(terms) + " |", "|---" * (len(terms) + 1) + "|"]
        for model, rows in group.groupby("model", sort=False):
            by_term = rows.set_index("term")
            cells = [f"{by_term.at[t, 'value']:.{d}f} [{by_term.at[t, 'ci_low']:.{d}f}, "
                     f"{by_term.at[t, 'ci_high']:.{d}f}]" for t in terms]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
