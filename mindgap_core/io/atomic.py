"""Atomic file writes: write to a temporary file beside the target, then ``os.replace``."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from mindgap_core.errors import InputError


def _create_unique(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty new file ``folder/prefix<random>suffix`` with the usual permissions.

    Unlike ``tempfile.mkstemp`` (always mode 0600), the mode is 0666 minus the umask, as for any
    file the user creates, so the renamed result is readable by whoever may read the folder.
    """
    for _ in range(100):
        path = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(folder))


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
        tmp = _create_unique(folder, f".{dest.name}.", suffix if suffix is not None else ".tmp")
    except OSError as exc:
        raise InputError(dest, f"cannot write here ({exc.strerror or exc})") from None
    try:
        yield tmp
        try:
            os.replace(tmp, dest)
        except OSError as exc:  # e.g. ``dest`` is an existing folder
            raise InputError(dest, f"cannot write here ({exc.strerror or exc})") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def check_writable(dest: str | Path, *, folder: bool = False) -> Path:
    """Raise :class:`InputError` naming ``dest`` when it cannot be written; creates nothing.

    ``dest`` is a file path (``folder=False``) or an output folder (``folder=True``). Fails when
    ``dest`` exists as the other kind, when the nearest existing path on its way is not a folder,
    or when the folder that would receive it is not writable. Lets commands refuse an unusable
    output before any expensive work.
    """
    dest = Path(dest)
    if dest.exists() and dest.is_dir() != folder:
        raise InputError(dest, "exists and is not a folder" if folder else "is a folder, not a file path")
    target = dest.absolute()
    candidates = (target, *target.parents) if folder else target.parents
    existing = next(p for p in candidates if p.exists())
    if not existing.is_dir():
        raise InputError(dest, f"cannot write here ({existing} is not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(dest, f"cannot write here ({existing} is not writable)")
    return dest
