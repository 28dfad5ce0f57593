"""Headline findings of a gap table, as plain sentences computed from the numbers (never written by hand).

Input: rows of :func:`mindgap_core.analysis.gap.gap_table` for one metric (one band/aggregate), with
``method``, ``regime`` and, when grouped by it, ``train_domain``. Sign convention of the gap table:
a negative gap means worse on the target (cross-sensor) domain.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

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


def headline_findings(table: pd.DataFrame, *, metric_label: str, unit: str = "") -> list[str]:
    """Sentences summarising ``table`` (one metric); empty when the table is."""
    if table.empty:
        return []
    target = domain_label(table["target_domain"].iloc[0]) if "target_domain" in table else "target"
    source = domain_label(table["source_domain"].iloc[0]) if "source_domain" in table else "source"
    gaps = table["gap"].to_numpy(float)
    n = len(table)
    worse = int(np.sum(gaps < 0))
    significant = int(np.sum(table["gap_ci_high"].to_numpy(float) < 0))
    has_ci = bool(np.isfinite(table["gap_ci_high"].to_numpy(float)).any())
    sentence = (f"{worse} of {n} model{'s' if n != 1 else ''} score worse on the {target} test tiles than "
                f"on the {source} ones by {metric_label}")
    sentence += (f"; for {significant} of them the 95 % CI of the gap lies entirely below zero."
                 if has_ci else " (too few tiles for confidence intervals).")
    findings = [sentence]
    order = np.argsort(gaps, kind="stable")
    largest = table.iloc[order[0]]
    label = "Largest gap" if largest["gap"] < 0 else "Smallest improvement (no model is worse)"
    trained = f", trained on {domain_label(largest['train_domain'])}" if "train_domain" in table else ""
    ci = (f", 95 % CI [{format_value(largest['gap_ci_low'], signed=True)}, "
          f"{format_value(largest['gap_ci_high'], signed=True)}]") if has_ci else ""
    findings.append(
        f"{label}: {_model_name(largest)}{trained}: {format_value(largest['gap'], unit, signed=True)} "
        f"({format_value(largest['rel_gap_pct'], '%', signed=True)}{ci}; "
        f"{format_value(largest['mean_source'], unit)} on {source} vs "
        f"{format_value(largest['mean_target'], unit)} on {target})."
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
    baseline = table[table["method"] == "bicubic"]
    if not baseline.empty:
        row = baseline.iloc[0]
        findings.append(
            f"The untrained bicubic baseline's gap is {format_value(row['gap'], unit, signed=True)} "
            f"({format_value(row['rel_gap_pct'], '%', signed=True)}): the difference between the two "
            "kinds of input alone, before any learning."
        )
    return findings


def scaling_findings(trend: pd.DataFrame, *, metric_label: str, unit: str = "") -> list[str]:
    """One sentence per diversity-scaling curve (rows of ``scaling_trend``): does more diverse training
    data help, judged by the 95 % CI of the improvement per doubling of training blocks."""
    sentences = []
    for row in trend.itertuples(index=False):
        low, high = row.improvement_ci_low, row.improvement_ci_high
        if np.isfinite(low) and low > 0:
            verdict = "improves with more diverse training data (CI above zero)"
        elif np.isfinite(high) and high < 0:
            verdict = "gets worse with more diverse training data (CI below zero)"
        elif np.isfinite(low):
            verdict = "shows no clear change with more diverse training data (CI includes zero)"
        else:
            verdict = "has too few tiles for a confidence interval"
        name = " / ".join(str(getattr(row, c)) for c in ("method", "regime") if hasattr(row, c))
        sentences.append(
            f"{name} on {domain_label(row.test_domain)}: {metric_label} {verdict}; improvement per doubling "
            f"{format_value(row.improvement_per_doubling, unit, True)} "
            f"(95 % CI [{format_value(low, '', True)}, {format_value(high, '', True)}], "
            f"{row.n_levels} block counts, {row.n_tiles} tiles)."
        )
    return sentences
