"""Does decoupling close the gap? Remedies compared with the synthetic-trained model of each method.

Per SR method, on the cross-sensor test domain, every model of that method (cross-sensor-trained,
mixed, fine-tuned, adapter + synthetic-trained) is compared with the method's synthetic-trained model:

* ``delta`` = sign · (s_model − s_synthetic-trained), paired over tiles, with a cluster-robust CI over
  the tiles' spatial blocks (:mod:`mindgap_core.analysis.inference`; positive = the remedy scores
  better on cross-sensor data), its t-test p and the Holm-adjusted p over the table's tests;
* ``recovered_pct`` = 100 · delta / |gap of the synthetic-trained model| (100 % = the whole
  synthetic -> cross-sensor gap recovered);
* the model's own gap (target − source domain) from :func:`gap_table`; none for an adapter pipeline,
  which is designed for cross-sensor input and scored on the target domain only;
* the training cost: wall minutes of the SR model plus its adapter, from their ``training.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mindgap_core.analysis.blocks import BlockMap, block_map
from mindgap_core.analysis.gap import UNIT_COLUMNS, Inference, gap_table, verdicts
from mindgap_core.analysis.inference import holm
from mindgap_core.experiments.spec import ADAPTER_JOIN
from mindgap_core.store import views

BASELINE_REGIME = "synthetic"
REMEDY_COLUMNS = (
    "method", "model", "regime", "remedy", *UNIT_COLUMNS, "mean_target", "gap", "gap_ci_low", "gap_ci_high",
    "delta", "delta_ci_low", "delta_ci_high", "p_value", "p_adjusted", "verdict", "recovered_pct",
    "train_minutes", "ci_method", "higher_better",
)


def remedy_kind(regime: str) -> str:
    """A readable name of how a model tries to close the gap."""
    if ADAPTER_JOIN in regime:
        base, adapter = regime.split(ADAPTER_JOIN, 1)
        return f"{adapter} + {base}-trained"
    return {"synthetic": "synthetic-trained (baseline)", "cross_sensor": "cross-sensor-trained",
            "mixed": "mixed training", "finetune": "synthetic -> cross-sensor fine-tuned",
            "none": "no training"}.get(regime, regime)


def remedy_table(
    results: Any, *, metric: str, source_domain: str = "synthetic", target_domain: str | None = None,
    band: str = "all", filters: Mapping[str, Any] | None = None,
    train_minutes: Mapping[str, float] | None = None,
    blocks: BlockMap | Mapping[str, str] | str | None = None,
    n_boot: int = 2000, seed: int = 0, ci: float = 0.95, interval: str = "t",
) -> pd.DataFrame:
    """:data:`REMEDY_COLUMNS` per model of every method that has a synthetic-trained model.

    ``train_minutes``: model name -> training wall minutes (see :func:`training_minutes`).
    """
    inference = Inference(block_map(results, blocks), ci=ci, interval=interval, n_boot=n_boot, seed=seed)
    flt = {**views.merge_filters(filters, band=band), "train_blocks": None}  # not the scaling series
    gaps = gap_table(results, source_domain=source_domain, target_domain=target_domain, metric=metric,
                     group=("method", "regime", "model", "metric"), filters=flt, blocks=inference.blocks,
                     n_boot=n_boot, seed=seed, ci=ci, interval=interval)
    if gaps.empty:
        return pd.DataFrame(columns=list(REMEDY_COLUMNS))
    target = str(gaps["target_domain"].iloc[0])
    with views.connected(results) as con:
        tiles = views.tile_means(con, keys=["method", "regime", "model"],
                                 filters=views.merge_filters(flt, metric=metric, test_domain=target,
                                                             split="test"))
    gap_of = gaps.set_index("model")
    records = []
    for method, group in tiles.groupby("method", sort=True):
        base_models = sorted(set(group.loc[group["regime"] == BASELINE_REGIME, "model"]) & set(gap_of.index))
        if not base_models:
            continue
        base_model = base_models[0]
        base_gap = float(gap_of.at[base_model, "gap"])
        base_tiles = group[group["model"] == base_model].set_index("tile_id")["value"]
        for (model, regime), mine in group.groupby(["model", "regime"], sort=True):
            mine = mine.set_index("tile_id")
            common = sorted(set(mine.index) & set(base_tiles.index))
            higher_better = bool(mine["higher_better"].iloc[0])
            sign = 1.0 if higher_better else -1.0
            clusters, info = inference.units(common)
            values = mine.loc[common, "value"].to_numpy(np.float64)
            diff = sign * (values - base_tiles.loc[common].to_numpy(np.float64))
            est = inference.mean(diff, clusters, common)
            own = gap_of.loc[model] if model in gap_of.index else None
            records.append({
                "method": method, "model": model, "regime": regime, "remedy": remedy_kind(regime), **info,
                "mean_target": float(values.mean()),
                **{c: float(own[c]) if own is not None else np.nan
                   for c in ("gap", "gap_ci_low", "gap_ci_high")},
                "delta": float(est.mean[0]), "delta_ci_low": float(est.low[0]),
                "delta_ci_high": float(est.high[0]),
                "p_value": float(est.p[0]) if model != base_model else np.nan,
                "recovered_pct": 100.0 * float(est.mean[0]) / abs(base_gap) if base_gap < 0 else float("nan"),
                "train_minutes": (train_minutes or {}).get(model, float("nan")),
                "higher_better": higher_better,
            })
    return adjust_remedies(pd.DataFrame.from_records(records, columns=list(REMEDY_COLUMNS)), ci=ci)


def adjust_remedies(table: pd.DataFrame, *, ci: float = 0.95) -> pd.DataFrame:
    """Holm-adjusted p over every comparison of ``table`` (one family) and the verdicts (``baseline`` for
    the synthetic-trained models themselves)."""
    table = table.assign(p_adjusted=holm(table["p_value"].to_numpy(float)))
    table["verdict"] = verdicts(table["delta_ci_low"], table["delta_ci_high"], table["p_adjusted"], ci=ci)
    table.loc[table["p_value"].isna(), "verdict"] = "baseline"
    return table


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
