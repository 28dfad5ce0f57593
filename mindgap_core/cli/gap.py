"""``mindgap gap``: print the domain-gap table (or the train × test matrix) of a results store."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mindgap_core.analysis import INTERVALS, MIN_BOOTSTRAP_BLOCKS
from mindgap_core.cli.formatting import (
    add_format_arguments,
    ci_methods,
    decimals_for,
    format_ci,
    format_number,
    format_p,
    format_units,
    is_missing,
    markdown_table,
    render_table,
)
from mindgap_core.errors import InputError

if TYPE_CHECKING:  # pandas is imported only when the command runs (keeps `mindgap --help` fast)
    import pandas as pd

HELP = (
    "Domain-gap statistics of a results store: per metric × method × regime, mean on each test domain, "
    "paired gap with a CI over spatial blocks (the independent units), error ratio, excess gap vs bicubic, "
    "Holm-adjusted p and a verdict (inconclusive when the CI includes 0)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, type=Path, help="results store folder (RESULTS/)")
    parser.add_argument("--metric", action="append", help="only this metric (repeat for several)")
    parser.add_argument("--band", action="append",
                        help="only this band: a band name or 'all' (the band average; repeat for several)")
    parser.add_argument("--method", action="append", help="only this method (repeat for several)")
    parser.add_argument("--experiment", help="only rows of this experiment")
    parser.add_argument("--source", default="synthetic", help="source test domain (default: synthetic)")
    parser.add_argument(
        "--target", help="target test domain (default: real_cross_sensor, else simulated_cross_sensor)"
    )
    parser.add_argument("--split", default="test", help="data split to use (default: test)")
    parser.add_argument("--blocks", type=Path, metavar="MANIFEST",
                        help="manifest whose block_id column gives the tiles' spatial blocks (default: the "
                             "manifests of the store's experiments; without any, tiles count as independent)")
    parser.add_argument(
        "--interval", choices=INTERVALS, default="t",
        help="t: t-interval over blocks, CR2 cluster-robust SE, G-1 df (default); bootstrap: cluster "
             f"bootstrap over blocks, expanded percentile (refused below {MIN_BOOTSTRAP_BLOCKS} blocks)",
    )
    parser.add_argument("--n-boot", type=int, default=2000,
                        help="cluster-bootstrap resamples (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="cluster-bootstrap seed (default: 0)")
    parser.add_argument("--ci", type=float, default=0.95, help="confidence level (default: 0.95)")
    parser.add_argument(
        "--per-model", action="store_true",
        help="one row per model name instead of per method × regime (e.g. several checkpoints of one "
             "method and regime, or one checkpoint at several step counts)",
    )
    parser.add_argument(
        "--matrix", action="store_true",
        help="print the train-domain × test-domain matrix instead of the gap",
    )
    parser.add_argument(
        "--remedies", action="store_true",
        help="compare, per method and metric, each model with the synthetic-trained one on the target domain "
             "(cross-sensor-trained, fine-tuned, adapter + synthetic-trained: paired change with CI, share "
             "of the gap recovered, training minutes)",
    )
    parser.add_argument(
        "--scaling", action="store_true",
        help="print the diversity-scaling trends (score change per doubling of training blocks, or of "
             "training pairs in the size control of a fixed-size series, with CI)",
    )
    parser.add_argument(
        "--attribution", action="store_true",
        help="print the gap attribution of the store's `mindgap attribute` runs (Shapley and secondary "
             "terms; nothing is simulated or scored again); default metrics: every one scored, plus mse "
             "from psnr",
    )
    parser.add_argument(
        "--uncertainty", action="store_true",
        help="print the calibration gap per model: coverage of the central 50/80/90/95 %% sample intervals, "
             "calibration error, spread, error-spread Spearman and AUROC on each test domain, and their "
             "paired change (target - source) with CIs over spatial blocks; models without samples (or "
             "deterministic ones) have no rows",
    )
    add_format_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mindgap_core.analysis.blocks import block_map
    from mindgap_core.analysis.gap import DEFAULT_GROUP, gap_table, train_test_matrix

    if not args.results.is_dir():
        raise InputError(args.results, "results store folder not found")
    if not (args.results / "shards").is_dir():
        raise InputError(args.results, "not a results store (no shards/ folder): run the evaluation first")
    if args.n_boot < 0 or not 0.0 < args.ci < 1.0:
        raise InputError("--n-boot/--ci", "need n_boot >= 0 and 0 < ci < 1")
    chosen = {"method": args.method, "experiment": args.experiment, "band": args.band}
    filters = {k: v for k, v in chosen.items() if v}
    if args.per_model and (args.remedies or args.scaling or args.attribution or args.uncertainty):
        raise InputError("--per-model", "works with the gap and --matrix only (remedies, attribution and "
                                        "uncertainty are already per model; a scaling series spans several "
                                        "models)")
    group = ("model", *DEFAULT_GROUP) if args.per_model else DEFAULT_GROUP
    stats = dict(blocks=block_map(args.results, args.blocks), n_boot=args.n_boot, seed=args.seed, ci=args.ci,
                 interval=args.interval)
    common = dict(metric=args.metric, split=args.split, filters=filters, group=group, **stats)
    if args.uncertainty:
        table = _uncertainty(args, stats, filters)
        text = render_table(table, args.format, lambda t: uncertainty_markdown(t, ci=args.ci))
    elif args.attribution:
        from mindgap_core.cli.attribute import attribution_markdown

        table = _attribution(args, stats)
        text = render_table(table, args.format, attribution_markdown)
    elif args.remedies:
        table = _remedies(args, stats)
        text = render_table(table, args.format, lambda t: remedies_markdown(t, ci=args.ci))
    elif args.scaling:
        from mindgap_core.analysis.scaling import scaling_trend

        table = scaling_trend(args.results, **common)
        if table.empty:
            raise InputError(args.results, "no diversity-scaling rows (models with train_blocks) match")
        text = render_table(table, args.format, lambda t: scaling_markdown(t, ci=args.ci))
    elif args.matrix:
        table = train_test_matrix(args.results, **common)
        if table.empty:
            raise InputError(args.results, "no result rows match")
        text = render_table(table, args.format, lambda t: matrix_markdown(t, ci=args.ci))
    else:
        table = gap_table(args.results, source_domain=args.source, target_domain=args.target, **common)
        if table.empty:
            problem = f"no tile was scored in both {args.source!r} and the target domain"
            raise InputError(args.results, problem)
        text = render_table(table, args.format, lambda t: gap_markdown(t, ci=args.ci, split=args.split))
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


#: the calibration scores ``mindgap gap --uncertainty`` prints by default, in this order
UNCERTAINTY_DEFAULT = ("coverage_50", "coverage_80", "coverage_90", "coverage_95", "calibration_error",
                       "spread", "uncertainty_spearman", "uncertainty_auroc")


def _uncertainty(args: argparse.Namespace, stats: dict[str, Any], filters: dict[str, Any]) -> pd.DataFrame:
    """The calibration gap: :func:`gap_table` of the calibration scores per model (no reference method:
    bicubic has no samples); coverage rows carry their nominal level."""
    from mindgap_core.analysis.gap import DEFAULT_GROUP, gap_table
    from mindgap_core.metrics.registry import METRICS, UNCERTAINTY_METRICS

    metrics = args.metric or list(UNCERTAINTY_DEFAULT)
    unknown = [m for m in metrics if m not in UNCERTAINTY_METRICS]
    if unknown:
        raise InputError("--metric", f"{unknown} are not calibration scores; with --uncertainty choose from "
                                     f"{', '.join(UNCERTAINTY_METRICS)}")
    table = gap_table(args.results, metric=metrics, split=args.split, filters=filters,
                      group=("model", *DEFAULT_GROUP), source_domain=args.source, target_domain=args.target,
                      reference_method=None, **stats)
    if table.empty:
        raise InputError(args.results, "no calibration scores in both domains: score a stochastic model "
                                       "with `samples` > 1 and the coverage metrics (as in "
                                       "data/demo/experiment.yaml)")
    order = {m: i for i, m in enumerate(metrics)}
    table = table.sort_values(["model", "band"], kind="stable")
    table = table.sort_values("metric", key=lambda m: m.map(order), kind="stable")
    table = table.sort_values("model", kind="stable").reset_index(drop=True)
    nominal = [float(m.split("_")[1]) / 100 if m.startswith("coverage_") else math.nan
               for m in table["metric"]]
    table.insert(table.columns.get_loc("metric") + 1, "nominal", nominal)
    table.insert(table.columns.get_loc("nominal") + 1, "unit_of_metric",
                 [METRICS[m].unit for m in table["metric"]])
    return table


def uncertainty_markdown(table: pd.DataFrame, *, ci: float) -> str:
    """The calibration-gap table as markdown, with a caption stating how to read it."""
    from mindgap_core.analysis.gap import target_minus_source

    source, target = table["source_domain"].iloc[0], table["target_domain"].iloc[0]
    pct = f"{100 * ci:g} %"
    headers = ["model", "metric", "nominal", "band", "tiles / units", f"{source}", f"{target}",
               f"change {target} − {source} [{pct} CI]", "adj. p", "verdict"]
    rows = []
    for r in target_minus_source(table).itertuples(index=False):
        d = max(decimals_for(r.mean_source), 3)
        change, low, high = r.change, r.change_ci_low, r.change_ci_high
        verdict = r.verdict
        if r.metric.startswith("coverage_") and verdict in ("worse", "better"):
            verdict = "lower" if change < 0 else "higher"
        rows.append([r.model, r.metric, "" if math.isnan(r.nominal) else f"{r.nominal:g}", r.band,
                     format_units(r.n_tiles, r.n_units, r.unit), format_number(r.mean_source, d),
                     format_number(r.mean_target, d),
                     format_ci(change, low, high, d, signed=True), format_p(r.p_adjusted), verdict])
    caption = (
        f"Calibration gap, {target} vs {source}: per model, the calibration scores of its samples on each "
        f"test domain and their paired change ({target} − {source}), {pct} CI over the tiles' spatial blocks "
        f"({ci_methods(table)}), Holm-adjusted over this table's {int(table['p_value'].notna().sum())} "
        "tests. "
        "Coverage: share of HR values inside the central interval of the samples (calibrated = nominal; "
        "below = over-confident). Calibration error: mean |coverage − nominal| over 50/80/90/95 % (a "
        "positive change = calibration lost). AUROC 0.5 / Spearman 0 = the spread does not point at the "
        "errors. "
        "Deterministic models have no rows ('no uncertainty')."
    )
    if "simulated" in target or "simulated" in source:
        caption += " The cross-sensor domain is SIMULATED."
    return markdown_table(headers, rows) + "\n\n" + caption + "\n"


def _remedies(args: argparse.Namespace, stats: dict[str, Any]) -> pd.DataFrame:
    """The remedy table of every chosen metric and band (training minutes from the runs' experiments);
    Holm over all of its rows."""
    import pandas as pd

    from mindgap_core.analysis.training_logs import spec_path
    from mindgap_core.attribution.remedies import adjust_remedies, remedy_table, training_minutes
    from mindgap_core.store.results import ResultsStore

    minutes: dict[str, float] = {}
    for run in ResultsStore(args.results).runs():
        spec = spec_path(args.results, run.run_id)
        if spec is not None and (args.experiment is None or run.experiment == args.experiment):
            minutes.update(training_minutes(spec))
    filters = {k: v for k, v in {"method": args.method, "experiment": args.experiment}.items() if v}
    frames = [remedy_table(args.results, metric=m, band=b, source_domain=args.source,
                           target_domain=args.target, filters=filters, train_minutes=minutes, **stats)
              .assign(metric=m, band=b)
              for m in (args.metric or ["psnr"]) for b in (args.band or ["all"])]
    table = pd.concat(frames, ignore_index=True)
    if table.empty:
        raise InputError(args.results, "no method has a synthetic-trained model and another model to compare")
    return adjust_remedies(table, ci=args.ci)


def _attribution(args: argparse.Namespace, stats: dict[str, Any]) -> pd.DataFrame:
    """The attribution table of every attribution run of the store (of ``--experiment``'s runs only)."""
    import pandas as pd

    from mindgap_core.attribution.decompose import MSE, attribution_table, stored_attribution_domains
    from mindgap_core.store.results import ResultsStore

    runs = {r.run_id: r.experiment for r in ResultsStore(args.results).runs()}
    found = {run_id: roles for run_id, roles in stored_attribution_domains(args.results).items()
             if args.experiment is None or runs.get(run_id) == args.experiment}
    if not found:
        raise InputError(args.results, "no `mindgap attribute` run in this store" +
                         (f" for experiment {args.experiment!r}" if args.experiment else ""))
    frames = []
    for run_id, roles in sorted(found.items()):
        metrics = args.metric
        if metrics is None:
            rows = ResultsStore(args.results).rows({"run_id": run_id}, columns=["metric"])
            scored = sorted(set(rows["metric"]))
            metrics = [*scored, *([MSE] if "psnr" in scored else [])]
        for band in args.band or ["all"]:
            table = attribution_table(args.results, roles, metric=metrics, band=band,
                                      filters={"run_id": run_id}, **stats)
            frames.append(table.assign(run_id=run_id, band=band))
    return pd.concat(frames, ignore_index=True)


def remedies_markdown(table: pd.DataFrame, *, ci: float = 0.95) -> str:
    """The remedies as a markdown table."""
    pct = f"{100 * ci:g} %"
    tests = int(table["p_value"].notna().sum())
    lines = [
        f"Remedies on the cross-sensor test domain: change vs the method's synthetic-trained model, "
        f"paired over tiles (positive = better), {pct} CI over spatial blocks ({ci_methods(table)}); "
        f"Holm-adjusted p over the {tests} comparisons; recovered = change / |gap of the synthetic-trained "
        "model|; adapter pipelines are scored on the cross-sensor domain only (no gap of their own); "
        "training = SR model + adapter wall minutes.", "",
        "| metric | method | model | remedy | tiles / units | mean on target | change [CI] | adj. p "
        "| verdict | recovered | training (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        if r.verdict == "baseline":
            change, rec, p = "baseline", "–", "–"
        else:
            finite = math.isfinite(r.delta_ci_low)
            d = decimals_for(max(abs(r.delta_ci_low), abs(r.delta_ci_high), 1e-9) if finite else abs(r.delta))
            change = format_ci(r.delta, r.delta_ci_low, r.delta_ci_high, d, signed=True)
            rec = "–" if is_missing(r.recovered_pct) else f"{r.recovered_pct:.0f} %"
            p = format_p(r.p_adjusted)
        minutes = "–" if is_missing(r.train_minutes) else f"{r.train_minutes:.1f}"
        units = format_units(r.n_tiles, r.n_units, r.unit)
        lines.append(f"| {r.metric} | {r.method} | {r.model} | {r.remedy} | {units} | "
                     f"{format_mean(r.mean_target)} | {change} | {p} | {r.verdict} | {rec} | {minutes} |")
    return "\n".join(lines) + "\n"


def format_mean(value: float) -> str:
    """A mean with about four significant digits."""
    return f"{value:.{decimals_for(abs(value))}f}"


def scaling_markdown(table: pd.DataFrame, *, ci: float) -> str:
    """The scaling trends as a markdown table: improvement per doubling of blocks (or training pairs)."""
    from mindgap_core.analysis.scaling import SERIES_LABELS

    lines = [
        f"Diversity scaling: change of the score per doubling of the level (blocks, or training pairs in the "
        f"size control), signed so that positive = better; {100 * ci:g} % CI paired over tiles, over their "
        f"spatial blocks ({ci_methods(table)}); Holm-adjusted p over the "
        f"{int(table['p_value'].notna().sum())} trends. Only the 'diversity' series (same number of "
        "training pairs) tests diversity as such.",
        "",
        "| method | regime | metric | band | test domain | series | fixed at | levels | tiles / units "
        "| improvement per doubling [CI] | adj. p | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        d = decimals_for(max(abs(r.improvement_ci_low), abs(r.improvement_ci_high))) \
            if math.isfinite(r.improvement_ci_low) else 3
        other = "pairs" if r.factor == "blocks" else "blocks"
        fixed = "–" if is_missing(r.fixed) else f"{int(r.fixed)} {other}"
        trend = format_ci(r.improvement_per_doubling, r.improvement_ci_low, r.improvement_ci_high, d,
                          signed=True)
        lines.append(
            f"| {r.method} | {r.regime} | {r.metric} | {r.band} | {r.test_domain} "
            f"| {SERIES_LABELS[r.series]} | {fixed} | {r.levels} {r.factor} "
            f"| {format_units(r.n_tiles, r.n_units, r.unit)} | {trend} "
            f"| {format_p(r.p_adjusted)} | {r.verdict} |"
        )
    return "\n".join(lines) + "\n"


def _optional_keys(table: pd.DataFrame) -> list[str]:
    keys = []
    if "aggregate" in table and set(table["aggregate"]) != {"mean"}:
        keys.append("aggregate")
    if "train_blocks" in table and table["train_blocks"].notna().any():
        keys.append("train_blocks")
    return keys


def _cell(value: Any) -> str:
    return "–" if is_missing(value) else str(value)


def _ratio(r: Any) -> str:
    if not r.ratio_of or is_missing(r.ratio):
        return "–"
    return f"{r.ratio_of.upper()} ×{format_ci(r.ratio, r.ratio_ci_low, r.ratio_ci_high, 2)}"


def gap_markdown(table: pd.DataFrame, *, ci: float, split: str | None) -> str:
    """The gap table as markdown, with a caption stating the domains, the sign rule and the statistics."""
    from mindgap_core.analysis.gap import REFERENCE_METHOD

    source, target = table["source_domain"].iloc[0], table["target_domain"].iloc[0]
    pct = f"{100 * ci:g} %"
    extra = _optional_keys(table)
    lead = ["model"] if "model" in table else []
    headers = [*lead, "method", "regime", "metric", "band", *extra, "tiles / units", f"mean {source}",
               f"mean {target}", f"gap [{pct} CI]", "adj. p", "verdict", "error ratio [CI]",
               f"excess gap vs {REFERENCE_METHOD} [CI]", "excess adj. p", "vs interpolation"]
    rows = []
    for r in table.itertuples(index=False):
        d = decimals_for(r.mean_source)
        arrow = "↑" if r.higher_better else "↓"
        rows.append([
            *[getattr(r, k) for k in lead], r.method, r.regime, f"{r.metric} {arrow}", r.band,
            *[_cell(getattr(r, k)) for k in extra], format_units(r.n_tiles, r.n_units, r.unit),
            format_number(r.mean_source, d), format_number(r.mean_target, d),
            format_ci(r.gap, r.gap_ci_low, r.gap_ci_high, d, signed=True), format_p(r.p_adjusted), r.verdict,
            _ratio(r),
            format_ci(r.excess_gap, r.excess_ci_low, r.excess_ci_high, d, signed=True),
            format_p(r.excess_p_adjusted),
            r.excess_verdict or ("reference" if r.method == REFERENCE_METHOD else "–"),
        ])
    tests = int(table["p_value"].notna().sum() + table["excess_p"].notna().sum())
    inconclusive = int((~table["verdict"].isin(["worse", "better"])).sum())
    caption = [
        f"Domain gap, {target} vs {source}" + (f" ({split} split)" if split else "") + ". "
        f"Gap = {target} − {source} for ↑ metrics, {source} − {target} for ↓ metrics: negative = worse on "
        f"{target}. Paired over tiles; {pct} CI over the tiles' spatial blocks, the independent units "
        f"({ci_methods(table)}); two-sided t-test p, Holm-adjusted over the {tests} tests of this table "
        f"(gap and excess gap); verdict 'inconclusive' when the CI includes 0 or the adjusted p "
        f"≥ {1 - ci:.2g} "
        f"({inconclusive} of {len(table)} gap rows). Error ratio = mean {target} / mean {source} of an "
        "error-type metric (MSE from PSNR per tile), CI on the log scale; none for dB or similarity metrics. "
        f"Excess gap = the model's gap − {REFERENCE_METHOD}'s on the same tiles (negative = more fragile "
        "than interpolation). Adapter pipelines are remedies scored on the cross-sensor domain only "
        "(`mindgap gap --remedies`).",
    ]
    if "simulated" in target or "simulated" in source:
        caption.append(
            "Note: the simulated cross-sensor domain is SIMULATED from the HR image, not real data."
        )
    return "\n\n".join([*caption, markdown_table(headers, rows)])


def matrix_markdown(table: pd.DataFrame, *, ci: float) -> str:
    """The train-domain × test-domain matrix as markdown (one column per test domain)."""
    domains = sorted(table["test_domain"].unique())
    keys = ["model", "method", "regime", "metric", "band", *_optional_keys(table), "train_domain"]
    keys = [k for k in keys if k in table]
    rows = []
    for key, frame in table.groupby(keys, dropna=False, sort=True):
        d = decimals_for(frame["mean"].abs().max())
        cells = {r.test_domain: format_ci(r.mean, r.ci_low, r.ci_high, d)
                 for r in frame.itertuples(index=False)}
        arrow = "↑" if frame["higher_better"].iloc[0] else "↓"
        key = [_cell(k) for k in (key if isinstance(key, tuple) else (key,))]
        key[keys.index("metric")] += f" {arrow}"
        first = frame.iloc[0]
        rows.append([*key, format_units(first["n_tiles"], first["n_units"], first["unit"]),
                     *[cells.get(dom, "–") for dom in domains]])
    pct = f"{100 * ci:g} %"
    caption = (f"Mean score by train domain (rows) × test domain (columns), {pct} CI over the tiles' spatial "
               f"blocks ({ci_methods(table)}).")
    headers = [k.replace("_", " ") for k in keys] + ["tiles / units"] + domains
    return caption + "\n\n" + markdown_table(headers, rows)
