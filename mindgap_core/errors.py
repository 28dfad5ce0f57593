"""One exception family for every input problem a user can cause.

The CLI turns a :class:`MindGapError` into one line on stderr and a non-zero exit code, with no
traceback. Library code raises these instead of letting rasterio/numpy errors escape.
"""

from __future__ import annotations

from pathlib import Path


class MindGapError(Exception):
    """Base class of errors that are the user's input, not a bug."""


class InputError(MindGapError):
    """A file (or value) the user gave is unusable; the message names it and says what is wrong."""

    def __init__(self, source: str | Path, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class ConfigError(MindGapError):
    """An option or experiment setting is invalid."""
