"""``mindgap gap``: print the domain-gap table (or the train × test matrix) of a results store."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mindgap_core.errors import InputError

if TYPE_CHECKING:  # pandas is imported only when the command runs (keeps `mindgap --help` fast)
    import pandas as pd

HELP = (
    "Domain-gap statistics of a results store: per metric × method × regime, mean on each test domain, "
    "paired gap with bootstrap CI, relative gap and Wilcoxon p."
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
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--ci", type=float, default=0.95, help="confidence level (default: 0.95)")
    parser.add_argument(
        "--interval", choices=("percentile", "expanded"), default="percentile",
        help="bootstrap interval: percentile (default) or expanded percentile (better with < ~30 tiles)",
    )
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
        help="print the diversity-scaling trend (score change per doubling of training blocks, with CI)",
    )
    add_format_arguments(parser)


def add_format_arguments(parser: argparse.ArgumentParser) -> None:
    """``--markdown`` (default) | ``--json`` | ``--csv``, stored as ``args.format``."""
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", dest="format", action="store_const", const="markdown",
                     help="markdown table (default)")
    fmt.add_argument("--json", dest="format", action="store_const", const="json", help="JSON records")
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv", help="CSV, full precision")
    parser.set_defaults(format="markdown")


def run(args: argparse.Namespace) -> int:
    from mindgap_core.analysis.gap import DEFAULT_GROUP, gap_table, train_test_matrix

    if not args.results.is_dir():
        raise InputError(args.results, "results store folder not found")
    if not (args.results / "shards").is_dir():
        raise InputError(args.results, "not a results store (no shards/ folder): run the evaluation first")
    if args.n_boot < 0 or not 0.0 < args.ci < 1.0:
        raise InputError("--n-boot/--ci", "need n_boot >= 0 and 0 < ci < 1")
    chosen = {"method": args.method, "experiment": args.experiment, "band": args.band}
    filters = {k: v for k, v in chosen.items() if v}
    if args.per_model and (args.remedies or args.scaling):
        raise InputError("--per-model", "works with the gap and --matrix only (remedies are already per model; "
                                        "a scaling series spans several models)")
    group = ("model", *DEFAULT_GROUP) if args.per_model else DEFAULT_GROUP
    common = dict(metric=args.metric, split=args.split, filters=filters, n_boot=args.n_boot, seed=args.seed,
                  ci=args.ci, interval=args.interval, group=group)
    if args.remedies:
        table = _remedies(args)
        text = _render(table, args.format, remedies_markdown)
    elif args.scaling:
        from mindgap_core.analysis.scaling import scaling_trend

        table = scaling_trend(args.results, **common)
        if table.empty:
            raise InputError(args.results, "no diversity-scaling rows (models with train_blocks) match")
        text = _render(table, args.format, lambda t: scaling_markdown(t, ci=args.ci))
    elif args.matrix:
        table = train_test_matrix(args.results, **common)
        if table.empty:
            raise InputError(args.results, "no result rows match")
        text = _render(table, args.format, lambda t: matrix_markdown(t, ci=args.ci))
    else:
        table = gap_table(args.results, source_domain=args.source, target_domain=args.target, **common)
        if table.empty:
            problem = f"no tile was scored in both {args.source!r} and the target domain"
            raise InputError(args.results, problem)
        text = _render(table, args.format, lambda t: gap_markdown(
            t, ci=args.ci, n_boot=args.n_boot, seed=args.seed, split=args.split, interval=args.interval))
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _remedies(args: argparse.Namespace) -> pd.DataFrame:
    """The remedy table of every chosen metric and band (training minutes from the runs' experiments)."""
    import pandas as pd

    from mindgap_core.analysis.training_logs import spec_path
    from mindgap_core.attribution.remedies import remedy_table, training_minutes
    from mindgap_core.store.results import ResultsStore

    minutes: dict[str, float] = {}
    for run in ResultsStore(args.results).runs():
        spec = spec_path(args.results, run.run_id)
        if spec is not None and (args.experiment is None or run.experiment == args.experiment):
            minutes.update(training_minutes(spec))
    filters = {k: v for k, v in {"method": args.method, "experiment": args.experiment}.items() if v}
    frames = [remedy_table(args.results, metric=m, band=b, source_domain=args.source, target_domain=args.target,
                           filters=filters, train_minutes=minutes, n_boot=args.n_boot, seed=args.seed, ci=args.ci)
              .assign(metric=m, band=b)
              for m in (args.metric or ["psnr"]) for b in (args.band or ["all"])]
    table = pd.concat(frames, ignore_index=True)
    if table.empty:
        raise InputError(args.results, "no method has a synthetic-trained model and another model to compare")
    return table


def remedies_markdown(table: pd.DataFrame) -> str:
    """The remedies as a markdown table."""
    lines = [
        "Remedies on the cross-sensor test domain: change vs the method's synthetic-trained model, paired "
        "over tiles (positive = better), 95 % bootstrap CI; recovered = change / |gap of the synthetic-"
        "trained model|; training = SR model + adapter wall minutes.", "",
        "| metric | method | model | remedy | mean on target | change [95 % CI] | recovered | training (min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        if r.regime == "synthetic":
            change, rec = "baseline", "–"
        else:
            d = decimals_for(max(abs(r.delta_ci_low), abs(r.delta_ci_high), 1e-9))
            change = f"{r.delta:+.{d}f} [{r.delta_ci_low:+.{d}f}, {r.delta_ci_high:+.{d}f}]"
            rec = "–" if _missing(r.recovered_pct) else f"{r.recovered_pct:.0f} %"
        minutes = "–" if _missing(r.train_minutes) else f"{r.train_minutes:.1f}"
        lines.append(f"| {r.metric} | {r.method} | {r.model} | {r.remedy} | {format_mean(r.mean_target)} | "
                     f"{change} | {rec} | {minutes} |")
    return "\n".join(lines) + "\n"


def format_mean(value: float) -> str:
    """A mean with about four significant digits."""
    return f"{value:.{decimals_for(abs(value))}f}"


def scaling_markdown(table: pd.DataFrame, *, ci: float) -> str:
    """The scaling trend as a markdown table: improvement per doubling of training blocks."""
    lines = [
        f"Diversity scaling: change of the score per doubling of the number of training blocks, signed so "
        f"that positive = better with more diverse data; {ci:.0%} paired bootstrap CI over tiles.",
        "",
        "| method | regime | metric | band | test domain | block counts | n tiles | improvement per doubling [CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        d = decimals_for(max(abs(r.improvement_ci_low), abs(r.improvement_ci_high)))
        lines.append(
            f"| {r.method} | {r.regime} | {r.metric} | {r.band} | {r.test_domain} | {r.n_levels} | {r.n_tiles} | "
            f"{r.improvement_per_doubling:.{d}f} [{r.improvement_ci_low:.{d}f}, {r.improvement_ci_high:.{d}f}] |"
        )
    return "\n".join(lines) + "\n"


def _render(table: pd.DataFrame, fmt: str, markdown: Any) -> str:
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        return json.dumps([_json_record(r) for r in table.to_dict(orient="records")], indent=1)
    return markdown(table)


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value))


def _json_record(record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in record.items():
        if _missing(value):
            out[key] = None
        elif hasattr(value, "item"):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def decimals_for(reference: float) -> int:
    """Decimals that show about four significant digits of ``reference`` (1 to 6)."""
    if not math.isfinite(reference) or reference == 0:
        return 3
    return int(min(6, max(1, 3 - math.floor(math.log10(abs(reference))))))


def _num(value: float, decimals: int) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{decimals}f}"


def _ci(value: float, low: float, high: float, decimals: int) -> str:
    if not math.isfinite(low) or not math.isfinite(high):
        return _num(value, decimals)
    return f"{_num(value, decimals)} [{_num(low, decimals)}, {_num(high, decimals)}]"


def format_p(p: float) -> str:
    """A p-value with 3 decimals, or in scientific notation below 0.001."""
    if p is None or not math.isfinite(p):
        return "–"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), "|" + "|".join("---" for _ in headers) + "|", *map(line, rows)])


def _optional_keys(table: pd.DataFrame) -> list[str]:
    keys = []
    if "aggregate" in table and set(table["aggregate"]) != {"mean"}:
        keys.append("aggregate")
    if "train_blocks" in table and table["train_blocks"].notna().any():
        keys.append("train_blocks")
    return keys


def _cell(value: Any) -> str:
    return "–" if _missing(value) else str(value)


def gap_markdown(
    table: pd.DataFrame, *, ci: float, n_boot: int, seed: int, split: str | None, interval: str = "percentile"
) -> str:
    """The gap table as markdown, with a caption stating the domains, the sign rule and the statistics."""
    source, target = table["source_domain"].iloc[0], table["target_domain"].iloc[0]
    pct = f"{100 * ci:g} %"
    extra = _optional_keys(table)
    lead = ["model"] if "model" in table else []
    headers = [*lead, "method", "regime", "metric", "band", *extra, "n tiles", f"mean {source}",
               f"mean {target}", f"gap [{pct} CI]", f"rel. gap % [{pct} CI]", "Wilcoxon p"]
    rows = []
    for r in table.itertuples(index=False):
        d = decimals_for(r.mean_source)
        arrow = "↑" if r.higher_better else "↓"
        rows.append([
            *[getattr(r, k) for k in lead], r.method, r.regime, f"{r.metric} {arrow}", r.band,
            *[_cell(getattr(r, k)) for k in extra],
            str(r.n_tiles), _num(r.mean_source, d), _num(r.mean_target, d),
            _ci(r.gap, r.gap_ci_low, r.gap_ci_high, d), _ci(r.rel_gap_pct, r.rel_ci_low, r.rel_ci_high, 1),
            format_p(r.wilcoxon_p),
        ])
    caption = [
        f"Domain gap, {target} vs {source}" + (f" ({split} split)" if split else "") + ". "
        f"Gap = {target} − {source} for ↑ metrics, {source} − {target} for ↓ metrics: "
        f"negative = worse on {target}. Relative gap in % of the {source} mean. "
        f"Paired over tiles; {pct} {interval} bootstrap CI ({n_boot} resamples, seed {seed}); "
        "two-sided Wilcoxon signed-rank p.",
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
        cells = {r.test_domain: _ci(r.mean, r.ci_low, r.ci_high, d) for r in frame.itertuples(index=False)}
        arrow = "↑" if frame["higher_better"].iloc[0] else "↓"
        key = [_cell(k) for k in (key if isinstance(key, tuple) else (key,))]
        key[keys.index("metric")] += f" {arrow}"
        rows.append([*key, *[cells.get(dom, "–") for dom in domains]])
    pct = f"{100 * ci:g} %"
    caption = f"Mean score by train domain (rows) × test domain (columns), {pct} bootstrap CI over tiles."
    headers = [k.replace("_", " ") for k in keys] + domains
    return caption + "\n\n" + markdown_table(headers, rows)
