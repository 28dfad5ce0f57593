"""Shared text output of the ``mindgap`` table commands (gap, attribute): the ``--markdown | --json |
--csv`` switch, number and CI formatting, markdown tables."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported only when a command runs (keeps `mindgap --help` fast)
    import pandas as pd


def add_format_arguments(parser: argparse.ArgumentParser) -> None:
    """``--markdown`` (default) | ``--json`` | ``--csv``, stored as ``args.format``."""
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", dest="format", action="store_const", const="markdown",
                     help="markdown table (default)")
    fmt.add_argument("--json", dest="format", action="store_const", const="json", help="JSON records")
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv", help="CSV, full precision")
    parser.set_defaults(format="markdown")


def format_units(n_tiles: int, n_units: int, unit: str) -> str:
    """``"12 / 3 blocks"`` (tiles / independent units)."""
    return f"{n_tiles} / {n_units} {unit}s" if unit == "block" else f"{n_tiles} (tiles as units)"


def ci_methods(table: pd.DataFrame) -> str:
    methods = sorted(set(table["ci_method"].dropna()))
    return "; ".join(methods) if methods else "no CI"


def render_table(table: pd.DataFrame, fmt: str, markdown: Any) -> str:
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        return json.dumps([json_record(r) for r in table.to_dict(orient="records")], indent=1)
    return markdown(table)


def is_missing(value: Any) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value))


def json_record(record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in record.items():
        if is_missing(value):
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


def format_number(value: float, decimals: int, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def format_ci(value: float, low: float, high: float, decimals: int, signed: bool = False) -> str:
    if not math.isfinite(low) or not math.isfinite(high):
        return format_number(value, decimals, signed)
    return (f"{format_number(value, decimals, signed)} [{format_number(low, decimals, signed)}, "
            f"{format_number(high, decimals, signed)}]")


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
