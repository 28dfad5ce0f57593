"""Atomic file writes: write to a temporary file beside the target, then ``os.replace``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mindgap_core.errors import InputError


@contextlib.contextmanager
def atomic_path(dest: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``dest``'s folder; on success rename it onto ``dest``.

    On any exception the temporary file is removed and ``dest`` is untouched, so a reader never
    sees a half-written file. Raises :class:`InputError` when the folder cannot be written.
    """
    dest = Path(dest)
    folder = dest.parent if str(dest.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{dest.name}.", suffix=suffix if suffix is not None else ".tmp", dir=folder
        )
    except OSError as exc:
        raise InputError(dest, f"cannot write here ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
