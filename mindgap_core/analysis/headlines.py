"""Headline findings of a gap table, as plain sentences computed from the numbers (never written by hand).

Input: rows of :func:`mindgap_core.analysis.gap.gap_table` for one metric (one band/aggregate), with
``method``, ``regime`` and, when grouped by it, ``train_domain``. Sign convention of the gap table:
a negative gap means worse on the target (cross-sensor) domain. Every claim follows the table's
verdict columns (cluster-robust CI over spatial blocks and Holm-adjusted p), never the point estimate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mindgap_core.analysis.gap import INCONCLUSIVE, REFERENCE_METHOD
from mindgap_core.experiments.spec import is_adapter_regime

#: how a train domain is grouped in the findings
TRAIN_GROUPS = ("synthetic", "cross-sensor", "mixed", "untrained")


def domain_label(name: str) -> str:
    """A readable domain name: ``simulated_cross_sensor`` -> ``simulated cross-sensor``."""
    return str(name).replace("_", " ").replace("cross sensor", "cross-sensor")


def train_group(train_domain: str) -> str:
    """Which of :data:`TRAIN_GROUPS` a train domain belongs to (``+``-joined domains are mixed)."""
    text = str(train_domain)
    if text in ("none", "", "unknown"):
        return "untrained" if text == "none" else "unknown"
    parts = set(text.split("+"))
    if text == "mixed" or len(parts) > 1:
        return "mixed"
    if parts == {"synthetic"}:
        return "synthetic"
    return "cross-sensor" if any("cross_sensor" in p for p in parts) else "unknown"


def format_value(value: float, unit: str = "", signed: bool = False) -> str:
    """``value`` with 3 significant digits and its unit (``n/a`` when not finite)."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    text = f"{float(value):+.3g}" if signed else f"{float(value):.3g}"
    return f"{text} {unit}".strip()


def _model_name(row: pd.Series) -> str:
    return f"{row['method']} / {row['regime']}"


def _units(row: pd.Series) -> str:
    n = int(row["n_units"]) if "n_units" in row and np.isfinite(row["n_units"]) else int(row["n_tiles"])
    unit = row.get("unit", "tile")
    return f"{n} {unit}{'s' if n != 1 else ''}"


def _relative(row: pd.Series) -> str:
    """The error ratio of a row (e.g. "MSE ×2.6 [1.9, 3.4]"), or "" when the metric has none."""
    if not str(row.get("ratio_of", "")) or not np.isfinite(row.get("ratio", np.nan)):
        return ""
    ci = (f" [{format_value(row['ratio_ci_low'])}, {format_value(row['ratio_ci_high'])}]"
          if np.isfinite(row.get("ratio_ci_low", np.nan)) else "")
    return f"; {str(row['ratio_of']).upper().replace('_', '-')} ×{format_value(row['ratio'])}{ci}"


def headline_findings(table: pd.DataFrame, *, metric_label: str, unit: str = "") -> list[str]:
    """Sentences summarising ``table`` (one metric); empty when the table is.

    A gap counts as shown only when its row's ``verdict`` says so (CI excludes 0 and Holm-adjusted p
    below 0.05, see :func:`mindgap_core.analysis.gap.verdicts`); adapter pipelines are never counted
    (they are remedies, scored on the cross-sensor domain only).
    """
    if "regime" in table:
        table = table[~table["regime"].map(is_adapter_regime).astype(bool)]
    if table.empty:
        return []
    target = domain_label(table["target_domain"].iloc[0]) if "target_domain" in table else "target"
    source = domain_label(table["source_domain"].iloc[0]) if "source_domain" in table else "source"
    gaps = table["gap"].to_numpy(float)
    n = len(table)
    worse = int(np.sum(gaps < 0))
    shown = int(np.sum(table["verdict"] == "worse"))
    has_ci = bool(np.isfinite(table["gap_ci_high"].to_numpy(float)).any())
    first = table.iloc[0]
    sentence = (f"{worse} of {n} model{'s' if n != 1 else ''} score worse on the {target} test tiles than "
                f"on the {source} ones by {metric_label}")
    sentence += (f"; for {shown} of them the gap is shown (95 % CI below zero over {_units(first)}, "
                 f"Holm-adjusted p < 0.05 across the {n} rows); the others are inconclusive."
                 if has_ci else " (too few spatial blocks for confidence intervals).")
    findings = [sentence]
    order = np.argsort(gaps, kind="stable")
    largest = table.iloc[order[0]]
    label = "Largest gap" if largest["gap"] < 0 else "Smallest improvement (no model is worse)"
    trained = f", trained on {domain_label(largest['train_domain'])}" if "train_domain" in table else ""
    ci = (f", 95 % CI [{format_value(largest['gap_ci_low'], signed=True)}, "
          f"{format_value(largest['gap_ci_high'], signed=True)}], {largest['verdict']}") if has_ci else ""
    findings.append(
        f"{label}: {_model_name(largest)}{trained}: {format_value(largest['gap'], unit, signed=True)} "
        f"({format_value(largest['mean_source'], unit)} on {source} vs "
        f"{format_value(largest['mean_target'], unit)} on {target}{ci}{_relative(largest)})."
    )
    if "train_domain" in table:
        groups = table.assign(_group=table["train_domain"].map(train_group))
        parts = []
        for group in TRAIN_GROUPS:
            rows = groups[groups["_group"] == group]
            if rows.empty or group == "untrained":
                continue
            mean_gap = format_value(rows["gap"].mean(), unit, True)
            parts.append(f"{group}-trained models ({len(rows)}): mean gap {mean_gap}, "
                         f"mean score on {target} {format_value(rows['mean_target'].mean(), unit)}")
        if len(parts) >= 2:
            findings.append("By training data: " + "; ".join(parts) + ".")
    baseline = table[table["method"] == REFERENCE_METHOD]
    if not baseline.empty:
        row = baseline.iloc[0]
        findings.append(
            f"The untrained bicubic baseline's gap is {format_value(row['gap'], unit, signed=True)}"
            f"{_relative(row)}: the difference between the two kinds of input alone, before any learning."
        )
        excess = table[table["excess_verdict"].isin(["more fragile", "less fragile"])]
        measured = int(table["excess_gap"].notna().sum())
        if measured:
            named = "; ".join(f"{_model_name(r)} {r['excess_verdict']} "
                              f"({format_value(r['excess_gap'], unit, signed=True)})"
                              for _, r in excess.iterrows())
            findings.append(
                f"Against interpolation (excess gap = model's gap − bicubic's on the same tiles): "
                f"{len(excess)} of {measured} models differ from bicubic beyond their CI and Holm-adjusted p"
                + (f": {named}." if named else "; every other model is as fragile as interpolation, within "
                                              "the uncertainty.")
            )
    return findings


def scaling_findings(trend: pd.DataFrame, *, metric_label: str, unit: str = "") -> list[str]:
    """One sentence per scaling series (rows of ``scaling_trend``): does the score change with more
    blocks (or, in the size control, more training pairs), judged by the row's verdict (CI over spatial
    blocks and Holm-adjusted p)."""
    from mindgap_core.analysis.scaling import SERIES_LABELS

    sentences = []
    for row in trend.itertuples(index=False):
        more = "training pairs" if row.factor == "pairs" else "training blocks"
        verdict = {"better": f"improves with more {more}", "worse": f"gets worse with more {more}",
                   INCONCLUSIVE: f"shows no change with more {more} beyond the uncertainty (inconclusive)"}
        verdict = verdict.get(row.verdict, "has too few spatial blocks for a confidence interval")
        name = " / ".join(str(getattr(row, c)) for c in ("method", "regime") if hasattr(row, c))
        fixed = "" if not np.isfinite(row.fixed) else \
            f" at {int(row.fixed)} {'training pairs' if row.factor == 'blocks' else 'blocks'}"
        sentences.append(
            f"{name} on {domain_label(row.test_domain)}, {SERIES_LABELS[row.series]}{fixed}: {metric_label} "
            f"{verdict}; improvement per doubling {format_value(row.improvement_per_doubling, unit, True)} "
            f"(95 % CI [{format_value(row.improvement_ci_low, '', True)}, "
            f"{format_value(row.improvement_ci_high, '', True)}], levels {row.levels}, {row.n_tiles} tiles "
            f"in {row.n_units} {row.unit}s)."
        )
    return sentences
