"""Training regimes (docs/science.md, "Training regimes"): which manifest rows a model trains on.

Regime -> domains (always the ``train`` split):

============  ==================================================================================
synthetic     ``synthetic`` pairs (HR degraded to LR)
cross_sensor  the cross-sensor domain present in the manifest, named as it is:
              ``real_cross_sensor`` (real Sentinel-2 LR) or, in the demo, ``simulated_cross_sensor``;
              whether it is real or simulated is the model's train domain, shown in every label
mixed         both; each drawn sample is cross-sensor with probability ``mix_ratio`` (default 0.5)
finetune      the cross-sensor domain, starting from a synthetic-trained checkpoint (``--init``)
============  ==================================================================================

When a manifest holds both cross-sensor domains, ``cross_domain`` must say which one (never a
silent choice between real and simulated data). Diversity scaling (``blocks=K``) keeps the first K
spatial blocks (natural order of ``block_id``) among the selected rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mindgap_core.errors import ConfigError, InputError

SYNTHETIC_DOMAIN = "synthetic"
#: cross-sensor domains, in order of preference for documentation only (never chosen silently)
CROSS_SENSOR_DOMAINS: tuple[str, ...] = ("real_cross_sensor", "simulated_cross_sensor")
TRAIN_SPLIT = "train"


@dataclass(frozen=True)
class Regime:
    """A training regime: which domains it reads and whether it starts from a checkpoint."""

    name: str
    description: str
    uses_synthetic: bool
    uses_cross_sensor: bool
    needs_init: bool = False


REGIMES: dict[str, Regime] = {
    "synthetic": Regime("synthetic", "synthetic pairs only", True, False),
    "cross_sensor": Regime("cross_sensor", "cross-sensor pairs only (real, or simulated in the demo)",
                           False, True),
    "mixed": Regime("mixed", "synthetic and cross-sensor pairs, mixed by --mix-ratio", True, True),
    "finetune": Regime(
        "finetune", "synthetic-trained checkpoint fine-tuned on cross-sensor pairs", False, True, True
    ),
}


@dataclass(frozen=True, eq=False)
class TrainingSelection:
    """The rows a run trains on, with their sampling weights (None = uniform epochs)."""

    rows: pd.DataFrame
    weights: np.ndarray | None
    domains: tuple[str, ...]
    blocks: tuple[str, ...]


def natural_key(text: str) -> tuple[object, ...]:
    """Sort key that orders ``b2_10`` after ``b2_9``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(text)))


def cross_sensor_domain(manifest: pd.DataFrame, requested: str | None, source: str | Path) -> str:
    """The cross-sensor domain to use: ``requested``, or the only one present in the manifest."""
    present = [d for d in CROSS_SENSOR_DOMAINS if (manifest["domain"] == d).any()]
    if requested is not None:
        if requested not in CROSS_SENSOR_DOMAINS:
            raise ConfigError(f"--cross-domain must be one of {CROSS_SENSOR_DOMAINS}, got {requested!r}")
        if requested not in present:
            raise InputError(
                source, f"has no {requested!r} pairs (cross-sensor domains present: {present or 'none'})"
            )
        return requested
    if not present:
        raise InputError(
            source, f"has no cross-sensor pairs (domains {CROSS_SENSOR_DOMAINS}); this regime needs them"
        )
    if len(present) > 1:
        raise ConfigError(f"{source} holds both {present}; choose one with --cross-domain")
    return present[0]


def select_training_rows(
    manifest: pd.DataFrame, regime: str, *, source: str | Path, mix_ratio: float = 0.5,
    blocks: int | None = None, cross_domain: str | None = None,
) -> TrainingSelection:
    """The train-split rows of ``regime`` (see the module docstring), optionally the first K blocks."""
    if regime not in REGIMES:
        hint = " (renamed cross_sensor: the regime names the domain kind, the train domain says whether " \
               "it is real or simulated)" if regime == "real" else ""
        raise ConfigError(f"unknown regime {regime!r}{hint}; known: {', '.join(REGIMES)}")
    spec = REGIMES[regime]
    domains: list[str] = []
    if spec.uses_synthetic:
        domains.append(SYNTHETIC_DOMAIN)
    if spec.uses_cross_sensor:
        domains.append(cross_sensor_domain(manifest, cross_domain, source))
    rows = manifest[(manifest["split"] == TRAIN_SPLIT) & manifest["domain"].isin(domains)]
    for d in domains:
        if not (rows["domain"] == d).any():
            raise InputError(
                source, f"has no {TRAIN_SPLIT}-split pairs of domain {d!r} (regime {regime!r} needs them)"
            )
    all_blocks = sorted(set(rows["block_id"].astype(str)), key=natural_key)
    if blocks is not None:
        if blocks < 1:
            raise ConfigError(f"--blocks must be >= 1, got {blocks}")
        if blocks > len(all_blocks):
            raise ConfigError(
                f"--blocks {blocks} but the train split has only {len(all_blocks)} blocks ({source})"
            )
        all_blocks = all_blocks[:blocks]
        rows = rows[rows["block_id"].astype(str).isin(all_blocks)]
        for d in domains:
            if not (rows["domain"] == d).any():
                raise InputError(source, f"the first {blocks} blocks hold no {d!r} pairs")
    rows = rows.sort_values("pair_id", kind="stable").reset_index(drop=True)
    weights = None
    if regime == "mixed":
        if not 0.0 < mix_ratio < 1.0:
            raise ConfigError(f"--mix-ratio must be strictly between 0 and 1, got {mix_ratio}")
        is_cross = (rows["domain"] != SYNTHETIC_DOMAIN).to_numpy()
        weights = np.where(is_cross, mix_ratio / is_cross.sum(), (1.0 - mix_ratio) / (~is_cross).sum())
    return TrainingSelection(rows=rows, weights=weights, domains=tuple(domains), blocks=tuple(all_blocks))
