"""``mindgap attribute --experiment FILE --out RESULTS``: split the domain gap by simulator effect."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mindgap_core.attribution.names import effect_label

if TYPE_CHECKING:
    import pandas as pd

HELP = (
    "Attribute the synthetic -> cross-sensor gap to the simulator's effects: evaluate every model on "
    "the target domain re-simulated with one effect on and with all-but-one on, then print single-effect, "
    "leave-one-out and interaction terms with paired bootstrap CIs."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindgap_core.cli.gap import add_format_arguments

    parser.add_argument("--experiment", required=True, help="experiment YAML with an 'attribution' section")
    parser.add_argument("--out", required=True, type=Path, help="results store folder")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--metric", action="append", help="print only this metric (repeatable)")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    parser.add_argument("--discard-tiles", action="store_true",
                        help="delete the simulated variant tiles once every unit is scored (they are "
                             "re-simulated, identically, by the next run)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    add_format_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mindgap_core.attribution.decompose import attribution_table
    from mindgap_core.attribution.run import discard_variant_tiles, run_attribution
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
    if args.discard_tiles and world == 1 and summary.units_done_before + summary.units_run == summary.units_total:
        discard_variant_tiles(args.out, experiment.name)
    if world > 1 and rank != 0:
        return 0
    table = attribution_table(args.out, domains, metric=args.metric or list(experiment.metrics),
                              filters={"run_id": summary.run_id}, n_boot=args.n_boot, seed=args.seed)
    text = _render(table, args.format, attribution_markdown)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


TERM_LABELS = {"total": "**total gap**", "baseline": "resampling kernel (simulator, all effects off)",
               "interaction": "interaction (total − kernel − Σ single)"}


def term_label(term: str) -> str:
    """Readable row label of a decomposition term."""
    kind, _, effect = term.partition(":")
    if kind == "single":
        return f"{effect_label(effect)} alone"
    if kind == "leave_one_out":
        return f"{effect_label(effect)}, given all others (leave-one-out)"
    return TERM_LABELS.get(term, term)


def attribution_markdown(table: pd.DataFrame) -> str:
    """One markdown table per metric: rows = terms, columns = models, cells = value [95 % CI]."""
    from mindgap_core.cli.gap import decimals_for

    lines: list[str] = []
    for metric, group in table.groupby("metric", sort=True):
        models = list(dict.fromkeys(group["model"]))
        d = decimals_for(float(group["value"].abs().max() or 1.0))
        cells = group.set_index(["term", "model"])
        lines += [f"**{metric}** — negative = worse on the cross-sensor domain; 95 % paired bootstrap CI over "
                  f"{int(group['n_tiles'].max())} tiles; total = kernel + Σ single + interaction (SIMULATED effects)",
                  "", "| term | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
        for term in dict.fromkeys(group["term"]):
            row = [f"{cells.at[(term, m), 'value']:.{d}f} [{cells.at[(term, m), 'ci_low']:.{d}f}, "
                   f"{cells.at[(term, m), 'ci_high']:.{d}f}]" if (term, m) in cells.index else "–" for m in models]
            lines.append(f"| {term_label(term)} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)
