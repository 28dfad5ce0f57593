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
    "the target domain re-simulated with every coalition of effects (Shapley values, on MSE from PSNR and "
    "on each metric) and with one / all-but-one effect on (single-effect, leave-one-out and interaction "
    "views), with CIs over the tiles' spatial blocks and Holm-adjusted p."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindgap_core.analysis import INTERVALS
    from mindgap_core.cli.formatting import add_format_arguments

    parser.add_argument("--experiment", required=True, help="experiment YAML with an 'attribution' section")
    parser.add_argument("--out", required=True, type=Path, help="results store folder")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--metric", action="append", help="print only this metric (repeatable)")
    parser.add_argument("--n-boot", type=int, default=2000,
                        help="cluster-bootstrap resamples (with --interval bootstrap; default: 2000)")
    parser.add_argument("--interval", choices=INTERVALS, default="t",
                        help="t-interval over blocks (default) or cluster bootstrap (`mindgap gap --help`)")
    parser.add_argument("--discard-tiles", action="store_true",
                        help="delete the simulated variant tiles once every unit is scored (they are "
                             "re-simulated, identically, by the next run)")
    parser.add_argument("--seed", type=int, default=0, help="cluster-bootstrap seed (default: 0)")
    add_format_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mindgap_core.attribution.decompose import MSE, attribution_table
    from mindgap_core.attribution.run import discard_variant_tiles, run_attribution
    from mindgap_core.cli.formatting import render_table
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
    complete = summary.units_done_before + summary.units_run == summary.units_total
    if args.discard_tiles and world == 1 and complete:
        discard_variant_tiles(args.out, experiment.name)
    if world > 1 and rank != 0:
        return 0
    metrics = args.metric or [*experiment.metrics, *([MSE] if "psnr" in experiment.metrics else [])]
    table = attribution_table(args.out, domains, metric=metrics, filters={"run_id": summary.run_id},
                              n_boot=args.n_boot, seed=args.seed, interval=args.interval)
    text = render_table(table, args.format, attribution_markdown)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


TERM_LABELS = {"total": "**total gap**", "baseline": "resampling kernel (simulator, all effects off)",
               "interaction": "interaction (total − kernel − Σ single)"}
#: the order of the term kinds in a printed table: the exact, order-free split first
KIND_ORDER = {"total": 0, "baseline": 1, "shapley": 2, "single": 3, "leave_one_out": 4, "interaction": 5}


def term_label(term: str) -> str:
    """Readable row label of a decomposition term."""
    kind, _, effect = term.partition(":")
    if kind == "shapley":
        return f"{effect_label(effect)} (Shapley)"
    if kind == "single":
        return f"{effect_label(effect)} alone"
    if kind == "leave_one_out":
        return f"{effect_label(effect)}, given all others (leave-one-out)"
    return TERM_LABELS.get(term, term)


def _cell(row: pd.Series, decimals: int) -> str:
    from mindgap_core.cli.formatting import format_ci

    text = format_ci(row["value"], row["ci_low"], row["ci_high"], decimals, signed=True)
    return text + (" *" if row["verdict"] in ("worse", "better") else "")


def attribution_markdown(table: pd.DataFrame) -> str:
    """One markdown table per metric: rows = terms (Shapley split first), columns = models, cells =
    value [CI], * where the CI excludes 0 and the Holm-adjusted p < 0.05."""
    from mindgap_core.cli.formatting import ci_methods, decimals_for

    lines: list[str] = []
    order = {m: i for i, m in enumerate(("mse", "psnr"))}
    for metric, group in sorted(table.groupby("metric"), key=lambda kv: (order.get(kv[0], 9), kv[0])):
        models = list(dict.fromkeys(group["model"]))
        d = decimals_for(float(group["value"].abs().max() or 1.0))
        cells = group.set_index(["term", "model"])
        derived = " The PSNR Shapley rows are the MSE Shapley shares of the dB gap (no CI of their own)." \
            if metric == "psnr" and (group["kind"] == "shapley").any() else ""
        lines += [f"**{metric}** — negative = worse on the cross-sensor domain; {ci_methods(group)}, paired "
                  f"over {int(group['n_tiles'].max())} tiles; * = CI excludes 0 and Holm-adjusted p < 0.05 "
                  f"over the {int(group['p_value'].notna().sum())} terms of this table. total = kernel + Σ "
                  "Shapley exactly (order-free); single-effect, leave-one-out and interaction are "
                  f"order-dependent secondary views (SIMULATED effects).{derived}",
                  "", "| term | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
        terms = sorted(dict.fromkeys(group["term"]), key=lambda t: KIND_ORDER.get(t.split(":")[0], 9))
        for term in terms:
            row = [_cell(cells.loc[(term, m)], d) if (term, m) in cells.index else "–" for m in models]
            lines.append(f"| {term_label(term)} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)
