"""Refuse, before allocating, work that would not fit in memory: one budget, one message.

Commands that must hold a whole raster (the simulated cross-sensor degradation, pair building over
an overlap, whole-image scores) call :func:`check_fits` with the number of bytes they are about to
need; above the budget they raise one :class:`~mindgap_core.errors.InputError` that names the file,
its size in pixels and the bytes it would take, instead of dying with a MemoryError or being killed
by the kernel. Commands that work by windows (``degrade`` with a synthetic method, ``infer``,
windowed scoring) never need it.

The budget is ``MINDGAP_MEMORY_BUDGET`` (bytes, or a number with a K/M/G/T suffix, powers of 1024)
when set, else half of the machine's physical memory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mindgap_core.errors import ConfigError, InputError

BUDGET_ENV = "MINDGAP_MEMORY_BUDGET"
#: GDAL block cache (MB) while rasters are read or written by windows: caps memory spent on cached blocks.
GDAL_CACHE_MB: int = 64
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_bytes(text: str) -> int:
    """``"512M"`` -> 536870912; plain numbers are bytes; suffixes K, M, G, T (powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text.upper())
    if not match:
        raise ConfigError(f"{BUDGET_ENV}={text!r} is not a size (examples: 8G, 512M, 1073741824)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def physical_memory() -> int:
    """Bytes of physical memory of this machine."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def memory_budget() -> int:
    """Bytes one command may plan to hold at once (see the module docstring)."""
    text = os.environ.get(BUDGET_ENV)
    return parse_bytes(text) if text else physical_memory() // 2


def format_bytes(n: float) -> str:
    """1536 -> "1.5 KiB"."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_fits(source: str | Path, needed: int, what: str, remedy: str) -> None:
    """Raise :class:`InputError` naming ``source`` when ``needed`` bytes exceed the budget.

    ``what`` says what the bytes are for and the raster's size (e.g. "reading 20000 x 20000 x 4 pixels
    whole"), ``remedy`` what the user can do instead.
    """
    budget = memory_budget()
    if needed > budget:
        raise InputError(
            source,
            f"{what} needs about {format_bytes(needed)} of memory, more than the budget of "
            f"{format_bytes(budget)} (half the machine's memory, or {BUDGET_ENV}); {remedy}",
        )
