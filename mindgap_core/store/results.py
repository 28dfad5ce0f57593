"""Append-only results store: keyed Parquet shards written atomically, read through DuckDB views.

Crash-safe, resumable evaluation on top of it::

    store = ResultsStore("RESULTS")
    store.start_run(run_id, experiment=name, spec_hash=spec_hash)     # resumes if it exists
    for unit in work_units:                                          # e.g. (model, domain, tile batch)
        key = shard_key(run=run_id, model=unit.model, domain=unit.domain, tiles=unit.batch)
        if store.has_shard(key):
            continue                                                 # done before the crash
        store.write_shard(key, compute_rows(unit))                   # whole file or nothing
    store.finish_run(run_id)

A shard is one unit of work and its commit record: write the unit's COGs (``map_relpath`` +
``atomic_path``) and conditions first, its shard last; a rerun rewrites the files of a unit whose
shard is missing (same paths, atomically). The shard's file name is a hash of its key, so a rerun
finds it. Killing the writer at any moment (SIGKILL included) leaves only complete files plus hidden
temporary ones (``.<name>.<random>.tmp``) that the views never read and that opening the store
removes once stale.
The schema is documented in :mod:`mindgap_core.store.schema`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.paths import resolve_inside
from mindgap_core.store import schema as sch
from mindgap_core.store import views

#: temporary files younger than this are left alone on open: another process (an accelerate rank
#: sharing the store) may still be writing them. Stale ones are leftovers of a killed writer.
TEMP_GRACE_S = 600.0
_KEY_META = b"mindgap.shard_key"
_VERSION_META = b"mindgap.schema_version"
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
_FILE_MODE = 0o644


def shard_key(**parts: Any) -> str:
    """A canonical shard key from named parts, e.g. ``shard_key(run="r1", model="sr3/mixed", tiles=3)``.

    Parts are sorted by name, so the same parts always give the same key (and the same file).
    """
    if not parts:
        raise ConfigError("a shard key needs at least one part")
    return "/".join(f"{name}={parts[name]}" for name in sorted(parts))


def _slug(text: str) -> str:
    """A file-name-safe form of ``text`` ("sr3/synthetic-only" -> "sr3__synthetic-only")."""
    slug = _SLUG.sub("_", str(text).replace("/", "__")).strip(".")
    if not slug:
        raise ConfigError(f"{text!r} cannot be used in a file name")
    return slug


@dataclass(frozen=True)
class RunInfo:
    """Metadata of one evaluation run, stored as ``runs/<run_id>.json``."""

    run_id: str
    experiment: str
    spec_hash: str
    code_version: str
    started_at: str  # ISO-8601 UTC
    finished_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class ResultsStore:
    """A results folder (see :mod:`mindgap_core.store.schema`). Opening it creates nothing.

    ``temp_grace_s``: hidden temporary files older than this are deleted on open.
    """

    def __init__(self, root: str | Path, *, temp_grace_s: float = TEMP_GRACE_S) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise InputError(self.root, "a results store must be a folder")
        self.clean_temp(older_than_s=temp_grace_s)

    # --- layout -------------------------------------------------------------------------------
    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"

    @property
    def conditions_dir(self) -> Path:
        return self.root / "conditions"

    @property
    def maps_dir(self) -> Path:
        return self.root / "maps"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    @staticmethod
    def _file_name(key: str) -> str:
        if not isinstance(key, str) or not key:
            raise ConfigError(f"a shard key must be a non-empty string, got {key!r}")
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + ".parquet"

    def shard_path(self, key: str) -> Path:
        """Where the results shard of ``key`` lives (whether written or not)."""
        return self.shards_dir / self._file_name(key)

    def conditions_path(self, key: str) -> Path:
        """Where the conditions shard of ``key`` lives (whether written or not)."""
        return self.conditions_dir / self._file_name(key)

    # --- results --------------------------------------------------------------------------------
    def has_shard(self, key: str) -> bool:
        """Whether the unit of work ``key`` has been written (completely: writes are atomic)."""
        return self.shard_path(key).is_file()

    def write_shard(self, key: str, rows: pd.DataFrame | pa.Table) -> bool:
        """Validate ``rows`` and write them as the shard ``key``; True if written, False if already there.

        Writing the same key again with the same rows (``created_at`` aside) is a no-op; with different
        rows it raises :class:`InputError`: the store is append-only (use a new run id or key).
        Zero rows are allowed (the unit of work is then marked done).
        """
        table = sch.validate_results(rows, source=f"results shard {key!r}")
        return self._write_keyed(self.shard_path(key), key, table)

    def completed_keys(self) -> set[str]:
        """The keys of every results shard written so far."""
        return self._keys(self.shards_dir)

    # --- conditions -----------------------------------------------------------------------------
    def has_conditions(self, key: str) -> bool:
        """Whether the conditions shard ``key`` has been written."""
        return self.conditions_path(key).is_file()

    def write_conditions(self, key: str, rows: pd.DataFrame | pa.Table) -> bool:
        """Write per-tile conditions (see the schema); same append-only rules as :meth:`write_shard`."""
        table = sch.validate_conditions(rows, source=f"conditions shard {key!r}")
        return self._write_keyed(self.conditions_path(key), key, table)

    def completed_condition_keys(self) -> set[str]:
        """The keys of every conditions shard written so far."""
        return self._keys(self.conditions_dir)

    # --- runs -----------------------------------------------------------------------------------
    def start_run(
        self,
        run_id: str,
        *,
        experiment: str,
        spec_hash: str,
        code_version: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> RunInfo:
        """Record a run, or return the recorded one when resuming it (same ``spec_hash``).

        A run id already used by a different spec raises :class:`ConfigError`.
        """
        if not sch.is_safe_id(run_id):
            raise ConfigError(f"run id {run_id!r} may only use letters, digits, '.', '_' and '-'")
        existing = self.run(run_id)
        if existing is not None:
            if existing.spec_hash != spec_hash:
                raise ConfigError(
                    f"run {run_id!r} already exists in {self.root} for spec {existing.spec_hash} "
                    f"(now {spec_hash}); choose another run id"
                )
            return existing
        info = RunInfo(
            run_id=run_id,
            experiment=experiment,
            spec_hash=spec_hash,
            code_version=code_version or sch._code_version(),
            started_at=_utc_now_iso(),
            extra=dict(extra or {}),
        )
        self._write_run(info)
        return info

    def finish_run(self, run_id: str) -> RunInfo:
        """Mark a started run as finished (sets ``finished_at``)."""
        info = self.run(run_id)
        if info is None:
            raise ConfigError(f"run {run_id!r} was never started in {self.root}")
        info = replace(info, finished_at=_utc_now_iso())
        self._write_run(info)
        return info

    def run(self, run_id: str) -> RunInfo | None:
        """The recorded metadata of ``run_id``, or None."""
        path = self.runs_dir / f"{run_id}.json"
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return RunInfo(**data)
        except (json.JSONDecodeError, TypeError) as exc:
            raise InputError(path, f"not a MindGap run record ({exc})") from None

    def runs(self) -> list[RunInfo]:
        """Every recorded run, oldest first."""
        if not self.runs_dir.is_dir():
            return []
        found = [self.run(p.stem) for p in self.runs_dir.glob("*.json") if not p.name.startswith(".")]
        return sorted((r for r in found if r is not None), key=lambda r: (r.started_at, r.run_id))

    def _write_run(self, info: RunInfo) -> None:
        dest = self.runs_dir / f"{info.run_id}.json"
        with atomic_path(dest) as tmp:
            tmp.write_text(json.dumps(asdict(info), indent=2, sort_keys=True, default=str), encoding="utf-8")
            os.chmod(tmp, _FILE_MODE)

    # --- maps -----------------------------------------------------------------------------------
    def map_relpath(self, *, run_id: str, model: str, test_domain: str, tile_id: str, kind: str) -> str:
        """The store-relative path of a COG: ``maps/<run>/<model>/<domain>/<kind>/<tile>.tif``.

        ``kind`` is ``sr``, ``uncertainty`` or a metric name (its map). Put this string in the row's
        ``sr_path`` / ``uncertainty_path`` / ``map_path``; write the file with
        ``atomic_path(store.resolve(relpath))`` so it also appears whole or not at all.
        """
        parts = [_slug(p) for p in (run_id, model, test_domain, kind)]
        return "/".join(["maps", *parts, _slug(tile_id) + ".tif"])

    def map_path(self, *, run_id: str, model: str, test_domain: str, tile_id: str, kind: str) -> Path:
        """The absolute path of :meth:`map_relpath` (where the COG writer puts the file)."""
        return self.resolve(
            self.map_relpath(run_id=run_id, model=model, test_domain=test_domain, tile_id=tile_id, kind=kind)
        )

    def resolve(self, relpath: str) -> Path:
        """The absolute path of a store-relative path (as found in a row); refuses paths leaving the store."""
        return resolve_inside(self.root, relpath, "the results store")

    # --- reading --------------------------------------------------------------------------------
    def connect(self, *, materialize: bool = False) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with views ``results``, ``conditions`` and ``runs``.

        The views glob the shard folders at each query, so new shards show up (only if the folder
        held no shard at connect time is the view fixed empty: connect again). ``materialize=True``
        copies the shards into in-memory tables once (faster repeated queries, a fixed snapshot).
        """
        return views.connect(self.root, materialize=materialize)

    def rows(
        self, filters: Mapping[str, Any] | None = None, *, columns: list[str] | None = None
    ) -> pd.DataFrame:
        """Result rows as a DataFrame; ``filters`` maps a column to a value or a list of values."""
        con = self.connect()
        try:
            return views.select_rows(con, filters=filters, columns=columns)
        finally:
            con.close()

    def fingerprint(self) -> str:
        """A short string that changes whenever a shard, conditions file or run record is added or changed.

        Use it as a cache key (e.g. for the dashboard's cached queries).
        """
        digest = hashlib.sha256()
        for folder in (self.shards_dir, self.conditions_dir, self.runs_dir):
            if not folder.is_dir():
                continue
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                stat = entry.stat()
                digest.update(f"{folder.name}/{entry.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return digest.hexdigest()[:16]

    # --- housekeeping ---------------------------------------------------------------------------
    def clean_temp(self, *, older_than_s: float = 0.0) -> int:
        """Delete hidden temporary files (``.*``, leftovers of killed writers) older than ``older_than_s``.

        Returns how many were removed. Only run with ``older_than_s=0`` when no writer is active.
        """
        removed = 0
        now = time.time()
        folders = [self.shards_dir, self.conditions_dir, self.runs_dir]
        if self.maps_dir.is_dir():
            folders += [Path(d) for d, _, _ in os.walk(self.maps_dir)]
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in folder.glob(".*"):
                try:
                    if path.is_file() and now - path.stat().st_mtime >= older_than_s:
                        path.unlink()
                        removed += 1
                except OSError:  # renamed by a concurrent writer, or a read-only store
                    continue
        return removed

    # --- internals ------------------------------------------------------------------------------
    def _keys(self, folder: Path) -> set[str]:
        if not folder.is_dir():
            return set()
        keys = set()
        for path in folder.glob("*.parquet"):
            try:
                meta = pq.read_schema(path).metadata or {}
            except (OSError, pa.ArrowException) as exc:
                raise InputError(path, f"unreadable shard ({exc})") from None
            if _KEY_META not in meta:
                raise InputError(path, "not a MindGap shard (no shard key in its metadata)")
            keys.add(meta[_KEY_META].decode("utf-8"))
        return keys

    def _write_keyed(self, path: Path, key: str, table: pa.Table) -> bool:
        if path.is_file():
            if _same_rows(_read_shard(path), table):
                return False
            raise InputError(
                path,
                f"shard {key!r} already holds different rows; the store is append-only "
                "(use a new run id or key)",
            )
        meta = {_KEY_META: key.encode("utf-8"), _VERSION_META: sch.SCHEMA_VERSION.encode()}
        table = table.replace_schema_metadata(meta)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression="zstd")
            with open(tmp, "rb+") as handle:  # on disk before the rename: survives power loss too
                os.fsync(handle.fileno())
            os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; readers (dashboard) may be other users
        return True


def _read_shard(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(path, f"unreadable shard ({exc})") from None


def _same_rows(a: pa.Table, b: pa.Table) -> bool:
    """Whether two shards hold the same multiset of rows, ignoring ``created_at``."""
    if a.num_rows != b.num_rows or set(a.column_names) != set(b.column_names):
        return False
    cols = [c for c in b.column_names if c != "created_at"]
    fa = a.select(cols).to_pandas()
    fb = b.select(cols).to_pandas()
    fa = fa.sort_values(cols, na_position="last").reset_index(drop=True)
    fb = fb.sort_values(cols, na_position="last").reset_index(drop=True)
    return bool(fa.equals(fb))
