"""Attribute the synthetic -> cross-sensor gap to simulator effects, with paired bootstrap CIs.

Per model and metric, with ``s_d`` a tile's score on test domain ``d`` and the sign ``+1`` for
higher-better metrics (``-1`` otherwise), so that negative always means "worse on cross-sensor data":

* ``total``          = sign · (s_all − s_reference): the gap :func:`gap_table` reports;
* ``baseline``       = sign · (s_none − s_reference): the simulator with every effect off versus the
  reference (synthetic) degradation, i.e. the resampling kernel;
* ``single:<e>``     = sign · (s_only-e − s_none): effect e alone;
* ``leave_one_out:<e>`` = sign · (s_all − s_without-e): what e adds when every other effect is on;
* ``interaction``    = total − baseline − Σ single: what the effects do together beyond their sum.

``total = baseline + Σ single + interaction`` holds exactly. Every term is a mean over the same tiles;
one paired bootstrap (the same resampled tiles for every term of a model × metric) gives the CIs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mindgap_core.analysis.bootstrap import mean_bootstrap, tile_set_rng
from mindgap_core.attribution.names import Variant
from mindgap_core.errors import InputError
from mindgap_core.store import views

TERM_KINDS = ("total", "baseline", "single", "leave_one_out", "interaction")
ATTRIBUTION_COLUMNS = (
    "model", "method", "regime", "metric", "term", "kind", "effect", "value", "ci_low", "ci_high",
    "share_pct", "n_tiles", "higher_better",
)


@dataclass(frozen=True)
class AttributionDomains:
    """Which test domains of a results store play which role in the decomposition."""

    reference: str
    target: str
    effects: tuple[str, ...]

    @property
    def none(self) -> str:
        return Variant("none", None, ()).domain

    def only(self, effect: str) -> str:
        return Variant("only", effect, (effect,)).domain

    def without(self, effect: str) -> str:
        return Variant("without", effect, ()).domain

    @property
    def all_domains(self) -> tuple[str, ...]:
        return (self.reference, self.target, self.none, *(self.only(e) for e in self.effects),
                *(self.without(e) for e in self.effects))

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "target": self.target, "effects": list(self.effects)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttributionDomains:
        return cls(str(data["reference"]), str(data["target"]), tuple(data["effects"]))


def term_weights(domains: AttributionDomains) -> dict[str, tuple[str, str | None, dict[str, float]]]:
    """term -> (kind, effect, {test domain: weight}); a term is the weighted sum of domain scores."""
    ref, target, none = domains.reference, domains.target, domains.none
    terms: dict[str, tuple[str, str | None, dict[str, float]]] = {
        "total": ("total", None, {target: 1.0, ref: -1.0}),
        "baseline": ("baseline", None, {none: 1.0, ref: -1.0}),
    }
    interaction = {target: 1.0, none: -1.0}  # total − baseline
    for e in domains.effects:
        terms[f"single:{e}"] = ("single", e, {domains.only(e): 1.0, none: -1.0})
        terms[f"leave_one_out:{e}"] = ("leave_one_out", e, {target: 1.0, domains.without(e): -1.0})
        interaction[domains.only(e)] = interaction.get(domains.only(e), 0.0) - 1.0
        interaction[none] = interaction[none] + 1.0
    terms["interaction"] = ("interaction", None, interaction)
    return terms


def attribute_scores(
    tile_scores: pd.DataFrame, domains: AttributionDomains, *, n_boot: int = 2000, seed: int = 0,
    ci: float = 0.95, interval: str = "percentile",
) -> pd.DataFrame:
    """The decomposition of per-tile scores (columns model, method, regime, metric, test_domain, tile_id,
    value, higher_better) into :data:`ATTRIBUTION_COLUMNS`, one row per model × metric × term.

    Only tiles scored on every domain of ``domains`` are used; ``share_pct`` = 100 · term / total.
    """
    needed = set(domains.all_domains)
    terms = term_weights(domains)
    records: list[dict[str, Any]] = []
    keys = ["model", "method", "regime", "metric"]
    for key, group in tile_scores[tile_scores["test_domain"].isin(needed)].groupby(keys, sort=True):
        wide = group.pivot_table(index="tile_id", columns="test_domain", values="value", aggfunc="mean")
        missing = needed - set(wide.columns)
        if missing:
            continue  # this model × metric was not scored on every attribution domain
        wide = wide.dropna().sort_index()
        if wide.empty:
            continue
        higher_better = bool(group["higher_better"].iloc[0])
        sign = 1.0 if higher_better else -1.0
        matrix = np.column_stack([
            sign * sum(w * wide[d].to_numpy(np.float64) for d, w in weights.items())
            for _, _, weights in terms.values()
        ])
        rng = tile_set_rng(seed, list(wide.index))
        mean, low, high = mean_bootstrap(matrix, n_boot=n_boot, rng=rng, ci=ci, interval=interval)
        total = mean[0]
        for (name, (kind, effect, _)), m, lo, hi in zip(terms.items(), mean, low, high, strict=True):
            share = 100.0 * m / total if total != 0 else float("nan")
            records.append({**dict(zip(keys, key, strict=True)), "term": name, "kind": kind, "effect": effect,
                            "value": float(m), "ci_low": float(lo), "ci_high": float(hi),
                            "share_pct": float(share), "n_tiles": len(wide), "higher_better": higher_better})
    return pd.DataFrame.from_records(records, columns=list(ATTRIBUTION_COLUMNS))


def attribution_table(
    results: Any, domains: AttributionDomains, *, metric: str | Sequence[str] | None = None,
    band: str = "all", split: str | None = "test", filters: Mapping[str, Any] | None = None,
    n_boot: int = 2000, seed: int = 0, ci: float = 0.95, interval: str = "percentile",
) -> pd.DataFrame:
    """:func:`attribute_scores` of a results store (or frame / connection), for one band (default the
    band average)."""
    flt = views.merge_filters(filters, metric=metric, split=split, band=band,
                              test_domain=list(domains.all_domains))
    with views.connected(results) as con:
        present = set(views.domains_present(con, views.merge_filters(filters, split=split)))
        missing = [d for d in domains.all_domains if d not in present]
        if missing:
            raise InputError("results", f"attribution test domains {missing} are not in the store; "
                                        "run `mindgap attribute` first")
        scores = views.tile_means(con, keys=["model", "method", "regime", "metric", "test_domain"], filters=flt)
    return attribute_scores(scores, domains, n_boot=n_boot, seed=seed, ci=ci, interval=interval)


def stored_attribution_domains(results: str | Path) -> dict[str, AttributionDomains]:
    """run id -> attribution roles, for every attribution run in a results store."""
    from mindgap_core.store.results import ResultsStore

    return {run.run_id: AttributionDomains.from_dict(run.extra["attribution"])
            for run in ResultsStore(results).runs() if "attribution" in run.extra}
