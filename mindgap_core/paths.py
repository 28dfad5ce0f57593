"""Data roots: the folders a dashboard user may point at (paths they type are confined to these), and
the confinement of stored relative paths to their folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mindgap_core.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_ROOT = REPO_ROOT / "data" / "demo"
DEMO_RESULTS = DEMO_ROOT / "results"
DEMO_MANIFEST = DEMO_ROOT / "manifest.parquet"
#: environment variable listing extra data roots (os.pathsep-separated)
DATA_ROOTS_ENV = "MINDGAP_DATA_ROOTS"


def data_roots(env: dict[str, str] | None = None) -> tuple[Path, ...]:
    """The repository's ``data/`` plus every folder named in ``$MINDGAP_DATA_ROOTS``, resolved."""
    env = os.environ if env is None else env
    extra = [Path(p) for p in env.get(DATA_ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    return tuple(dict.fromkeys(p.resolve() for p in [REPO_ROOT / "data", *extra]))


def confine(path: str | Path, roots: Sequence[Path]) -> Path:
    """``path`` resolved (symlinks followed), or :class:`InputError` when it lies outside every root."""
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        if resolved == root or root in resolved.parents:
            return resolved
    allowed = ", ".join(str(r) for r in roots)
    raise InputError(path, f"outside the configured data roots ({allowed}); set {DATA_ROOTS_ENV} to add one")


def resolve_inside(root: str | Path, relpath: str, what: str) -> Path:
    """The absolute path of ``relpath`` (stored relative to ``root``, e.g. in a results row), or
    :class:`InputError` when it is empty or leads out of ``root`` (``what`` names the folder)."""
    root = Path(root)
    if not relpath:
        raise InputError(root, "empty path: it references no file")
    path = (root / relpath).resolve()
    if not path.is_relative_to(root.resolve()):
        raise InputError(relpath, f"path leaves {what} {root}")
    return path
