"""Training loss logs of the models behind an evaluation run (no torch import: dashboard-safe).

A trained model folder (see :mod:`mindgap_core.train.trainer`) holds ``training.json`` and
``loss.csv`` (``step,loss,lr,wall_s``). The folders of a run are found through its run record
(``runs/<run_id>.json`` → ``extra.spec``, the experiment YAML → its models' ``checkpoint`` paths);
when that YAML moved (a clone of the repository elsewhere), the YAML of the same name next to the
store is tried. Folders can also be found by scanning a models folder for ``training.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mindgap_core.errors import InputError

#: file names written by the trainer (``mindgap_core.train.trainer.TRAINING_JSON`` / ``LOSS_CSV``)
TRAINING_JSON = "training.json"
LOSS_CSV = "loss.csv"
LOSS_COLUMNS = ("step", "loss", "lr", "wall_s")
LOG_COLUMNS = ("model", "method", "regime", "train_domain", "blocks", *LOSS_COLUMNS)


def spec_path(store_root: str | Path, run_id: str) -> Path | None:
    """The experiment YAML a run was made from (its recorded path, or the same name next to the store)."""
    record = Path(store_root) / "runs" / f"{run_id}.json"
    if not record.is_file():
        return None
    try:
        spec = json.loads(record.read_text(encoding="utf-8")).get("extra", {}).get("spec")
    except (json.JSONDecodeError, AttributeError):
        raise InputError(record, "not a MindGap run record") from None
    if not spec:
        return None
    root = Path(store_root).resolve()
    # a relative record is relative to the store (portable); then a same-named file beside the store
    # (a copied demo); an absolute record last (it may point into another checkout)
    candidates = ([root / spec] if not Path(spec).is_absolute() else []) + [root.parent / Path(spec).name,
                                                                          Path(spec)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def run_model_folders(store_root: str | Path, run_id: str) -> dict[str, Path]:
    """``{model name: checkpoint folder}`` of the run's experiment (existing folders only)."""
    spec = spec_path(store_root, run_id)
    if spec is None:
        return {}
    try:
        raw = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise InputError(spec, "not valid YAML") from None
    folders = {}
    for entry in raw.get("models", []) or []:
        if isinstance(entry, dict) and entry.get("checkpoint"):
            folder = (spec.parent / str(entry["checkpoint"])).resolve()
            if folder.is_dir():
                folders[str(entry.get("name", folder.name))] = folder
    return folders


def scan_model_folders(root: str | Path) -> dict[str, Path]:
    """``{relative path: folder}`` of every folder under ``root`` holding a ``training.json``."""
    root = Path(root)
    if not root.is_dir():
        return {}
    return {p.parent.relative_to(root).as_posix(): p.parent for p in sorted(root.rglob(TRAINING_JSON))}


def training_info(folder: str | Path) -> dict[str, Any]:
    """The parsed ``training.json`` of a model folder ({} when absent)."""
    path = Path(folder) / TRAINING_JSON
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise InputError(path, "not valid JSON") from None


def read_loss_csv(path: str | Path) -> pd.DataFrame:
    """A ``loss.csv`` as a DataFrame (``step, loss, lr, wall_s``); empty when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=list(LOSS_COLUMNS))
    frame = pd.read_csv(path)
    missing = [c for c in LOSS_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(path, f"not a MindGap loss log (missing columns {missing})")
    return frame[list(LOSS_COLUMNS)]


def loss_logs(folders: Mapping[str, str | Path]) -> pd.DataFrame:
    """All loss logs of ``{model name: folder}`` in long form (columns :data:`LOG_COLUMNS`).

    Folders without a ``loss.csv`` (untrained, or random-weight models) contribute no rows.
    """
    frames = []
    for name, folder in folders.items():
        losses = read_loss_csv(Path(folder) / LOSS_CSV)
        if losses.empty:
            continue
        info = training_info(folder)
        domains = info.get("train_domains") or []
        frames.append(losses.assign(
            model=name, method=info.get("method", "unknown"), regime=info.get("regime", "unknown"),
            train_domain="+".join(domains) if domains else "unknown", blocks=info.get("blocks"),
        ))
    if not frames:
        return pd.DataFrame(columns=list(LOG_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(LOG_COLUMNS)]


def models_without_logs(folders: Mapping[str, str | Path]) -> list[str]:
    """Names of the folders that have no ``loss.csv``."""
    return [name for name, folder in folders.items() if not (Path(folder) / LOSS_CSV).is_file()]
