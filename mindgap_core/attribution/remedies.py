"""Does decoupling close the gap? Remedies compared with the synthetic-trained model of each method.

Per SR method, on the cross-sensor test domain, every model of that method (cross-sensor-trained,
mixed, fine-tuned, adapter + synthetic-trained) is compared with the method's synthetic-trained model:

* ``delta`` = sign · (s_model − s_synthetic-trained), paired over tiles, with a bootstrap CI
  (positive = the remedy scores better on cross-sensor data);
* ``recovered_pct`` = 100 · delta / |gap of the synthetic-trained model| (100 % = the whole
  synthetic -> cross-sensor gap recovered);
* the model's own gap (target − source domain) from :func:`gap_table`;
* the training cost: wall minutes of the SR model plus its adapter, from their ``training.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mindgap_core.analysis.bootstrap import mean_bootstrap, tile_set_rng
from mindgap_core.analysis.gap import gap_table
from mindgap_core.store import views

BASELINE_REGIME = "synthetic"
REMEDY_COLUMNS = (
    "method", "model", "regime", "remedy", "n_tiles", "mean_target", "gap", "gap_ci_low", "gap_ci_high",
    "delta", "delta_ci_low", "delta_ci_high", "recovered_pct", "train_minutes", "higher_better",
)


def remedy_kind(regime: str) -> str:
    """A readable name of how a model tries to close the gap."""
    if "+" in regime:
        base, adapter = regime.split("+", 1)
        return f"{adapter} + {base}-trained"
    return {"synthetic": "synthetic-trained (baseline)", "real": "cross-sensor-trained",
            "mixed": "mixed training", "finetune": "synthetic -> cross-sensor fine-tuned",
            "none": "no training"}.get(regime, regime)


def remedy_table(
    results: Any, *, metric: str, source_domain: str = "synthetic", target_domain: str | None = None,
    band: str = "all", filters: Mapping[str, Any] | None = None,
    train_minutes: Mapping[str, float] | None = None, n_boot: int = 2000, seed: int = 0, ci: float = 0.95,
) -> pd.DataFrame:
    """:data:`REMEDY_COLUMNS` per model of every method that has a synthetic-trained model.

    ``train_minutes``: model name -> training wall minutes (see :func:`training_minutes`).
    """
    flt = {**views.merge_filters(filters, band=band), "train_blocks": None}  # not the scaling series
    gaps = gap_table(results, source_domain=source_domain, target_domain=target_domain, metric=metric,
                     group=("method", "regime", "model", "metric"), filters=flt, n_boot=n_boot, seed=seed,
                     ci=ci)
    if gaps.empty:
        return pd.DataFrame(columns=list(REMEDY_COLUMNS))
    target = str(gaps["target_domain"].iloc[0])
    with views.connected(results) as con:
        tiles = views.tile_means(con, keys=["method", "regime", "model"],
                                 filters=views.merge_filters(flt, metric=metric, test_domain=target,
                                                             split="test"))
    records = []
    for method, group in gaps.groupby("method", sort=True):
        base = group[group["regime"] == BASELINE_REGIME]
        if base.empty:
            continue
        base_row = base.iloc[0]
        base_tiles = tiles[tiles["model"] == base_row["model"]].set_index("tile_id")["value"]
        for row in group.itertuples(index=False):
            mine = tiles[tiles["model"] == row.model].set_index("tile_id")["value"]
            common = sorted(set(mine.index) & set(base_tiles.index))
            sign = 1.0 if row.higher_better else -1.0
            diff = sign * (mine.loc[common].to_numpy(np.float64) - base_tiles.loc[common].to_numpy(np.float64))
            mean, low, high = mean_bootstrap(diff, n_boot=n_boot, rng=tile_set_rng(seed, common), ci=ci)
            base_gap = float(base_row["gap"])
            records.append({
                "method": method, "model": row.model, "regime": row.regime, "remedy": remedy_kind(row.regime),
                "n_tiles": len(common), "mean_target": row.mean_target, "gap": row.gap,
                "gap_ci_low": row.gap_ci_low, "gap_ci_high": row.gap_ci_high, "delta": float(mean[0]),
                "delta_ci_low": float(low[0]), "delta_ci_high": float(high[0]),
                "recovered_pct": 100.0 * float(mean[0]) / abs(base_gap) if base_gap < 0 else float("nan"),
                "train_minutes": (train_minutes or {}).get(row.model, float("nan")),
                "higher_better": bool(row.higher_better),
            })
    return pd.DataFrame.from_records(records, columns=list(REMEDY_COLUMNS))


def training_minutes(experiment_file: str | Path) -> dict[str, float]:
    """Model name -> training wall minutes of its SR checkpoint plus its adapter (NaN when unknown)."""
    from mindgap_core.analysis.training_logs import training_info
    from mindgap_core.experiments.spec import load_experiment

    minutes = {}
    for entry in load_experiment(experiment_file).models:
        folders = [f for f in (entry.checkpoint, entry.adapter) if f is not None]
        walls = [training_info(f).get("wall_s") for f in folders]
        known = [float(w) for w in walls if w is not None]
        if entry.checkpoint is None and entry.adapter is None:
            minutes[entry.name] = 0.0
        else:
            minutes[entry.name] = sum(known) / 60.0 if len(known) == len(folders) else float("nan")
    return minutes
