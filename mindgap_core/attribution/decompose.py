"""Attribute the synthetic -> cross-sensor gap to simulator effects: Shapley values, and secondary views.

Per model and metric, with ``s_d`` a tile's score on test domain ``d``, the sign ``+1`` for
higher-better metrics (``-1`` otherwise) and ``v(S)`` = sign · (s_S − s_reference) the gap of the
simulator with exactly the effects of coalition S on (negative = worse on cross-sensor data):

* ``total``    = v(all players): the gap :func:`~mindgap_core.analysis.gap.gap_table` reports;
* ``baseline`` = v(∅): the simulator with every effect off versus the reference (synthetic)
  degradation, i.e. the resampling kernel;
* ``shapley:<e>`` = Σ_{S ∌ e} |S|! (n − |S| − 1)! / n! · (v(S ∪ {e}) − v(S)): e's Shapley value, the
  average of what e adds over every order of switching the effects on. Needs all 2^n coalitions
  (``mindgap attribute`` with ``shapley``); ``total = baseline + Σ shapley`` exactly (efficiency).
  Order-free, but scale-dependent: on a log scale (dB) an effect's marginal depends on the others'
  level, so the primary scale for pixel error is the linear MSE (metric ``mse``, from PSNR per tile,
  exact: MSE = data_range² · 10^(−PSNR/10)); the PSNR rows carry the MSE Shapley shares applied to the
  dB gap as a derived view (kind ``shapley``, no CI of their own);
* secondary views (order-dependent): ``single:<e>`` = v({e}) − v(∅) (e alone),
  ``leave_one_out:<e>`` = v(all) − v(all − {e}) (e on top of all others), and
  ``interaction`` = total − baseline − Σ single.

Every term is a weighted sum of per-tile domain scores, i.e. a mean over the same tiles; its CI is
cluster-robust over the tiles' spatial blocks (:mod:`mindgap_core.analysis.inference`), its p the
t-test of "term = 0", Holm-adjusted over the terms of one metric (one printed table).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mindgap_core.analysis.blocks import BlockMap, block_map
from mindgap_core.analysis.gap import UNIT_COLUMNS, Inference, mse_from_psnr, verdicts
from mindgap_core.analysis.inference import holm
from mindgap_core.attribution.names import Players
from mindgap_core.errors import InputError
from mindgap_core.store import views

TERM_KINDS = ("total", "baseline", "shapley", "single", "leave_one_out", "interaction")
#: the linear pixel-error scale of the Shapley split, derived per tile from PSNR
MSE = "mse"
ATTRIBUTION_COLUMNS = (
    "model", "method", "regime", "metric", "term", "kind", "effect", "value", "ci_low", "ci_high",
    "share_pct", "p_value", "p_adjusted", "verdict", *UNIT_COLUMNS, "ci_method", "higher_better",
)


@dataclass(frozen=True)
class AttributionDomains:
    """Which test domains of a results store play which role in the decomposition."""

    reference: str
    target: str
    effects: tuple[str, ...]
    #: effects on in the target but not attributed one by one (one joint player)
    others: tuple[str, ...] = ()

    @property
    def players(self) -> Players:
        return Players(self.effects, self.others)

    def coalition(self, on: Sequence[str] | frozenset[str]) -> str:
        """The test domain of coalition ``on`` (the target when every player is on)."""
        variant = self.players.variant(on)
        return self.target if variant is None else variant.domain

    @property
    def none(self) -> str:
        return self.coalition(())

    def only(self, effect: str) -> str:
        return self.coalition((effect,))

    def without(self, effect: str) -> str:
        return self.coalition([p for p in self.players.names if p != effect])

    @property
    def all_domains(self) -> tuple[str, ...]:
        """The domains of the total, baseline and secondary views."""
        secondary = (self.reference, self.target, self.none, *(self.only(e) for e in self.effects),
                 *(self.without(e) for e in self.effects))
        return tuple(dict.fromkeys(secondary))

    @property
    def coalition_domains(self) -> tuple[str, ...]:
        """Every coalition's domain (the Shapley values need them all), the target included."""
        return tuple(self.coalition(c) for c in self.players.coalitions())

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "target": self.target, "effects": list(self.effects),
                "others": list(self.others)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttributionDomains:
        return cls(str(data["reference"]), str(data["target"]), tuple(data["effects"]),
                   tuple(data.get("others", ())))


Weights = dict[str, float]


def _difference(plus: str, minus: str, scale: float = 1.0) -> Weights:
    return {plus: scale, minus: -scale} if plus != minus else {}


def _add(into: Weights, weights: Weights) -> None:
    for domain, w in weights.items():
        into[domain] = into.get(domain, 0.0) + w


def shapley_weights(domains: AttributionDomains) -> dict[str, Weights]:
    """player -> {coalition domain: weight}: its Shapley value as a weighted sum of domain scores."""
    names = domains.players.names
    n = len(names)
    out: dict[str, Weights] = {}
    for player in names:
        weights: Weights = {}
        for coalition in domains.players.coalitions():
            if player in coalition:
                continue
            w = math.factorial(len(coalition)) * math.factorial(n - len(coalition) - 1) / math.factorial(n)
            joined = domains.coalition(coalition | {player})
            _add(weights, _difference(joined, domains.coalition(coalition), w))
        out[player] = weights
    return out


def term_weights(domains: AttributionDomains, *, shapley: bool = True, secondary: bool = True
                 ) -> dict[str, tuple[str, str | None, Weights]]:
    """term -> (kind, effect, {test domain: weight}); a term is the weighted sum of domain scores."""
    ref, target, none = domains.reference, domains.target, domains.none
    terms: dict[str, tuple[str, str | None, Weights]] = {
        "total": ("total", None, _difference(target, ref)),
        "baseline": ("baseline", None, _difference(none, ref)),
    }
    if shapley:
        for player, weights in shapley_weights(domains).items():
            terms[f"shapley:{player}"] = ("shapley", player, weights)
    if secondary:
        interaction = _difference(target, none)  # total − baseline − Σ single
        for e in domains.effects:
            terms[f"single:{e}"] = ("single", e, _difference(domains.only(e), none))
            terms[f"leave_one_out:{e}"] = ("leave_one_out", e, _difference(target, domains.without(e)))
            _add(interaction, _difference(domains.only(e), none, -1.0))
        terms["interaction"] = ("interaction", None, interaction)
    return terms


def _decompose(wide: pd.DataFrame, terms: dict[str, tuple[str, str | None, Weights]], sign: float,
               inference: Inference) -> tuple[dict[str, Any], np.ndarray, Any]:
    """Per-tile term values of ``wide`` (tiles × domains) and their cluster-robust estimates."""
    matrix = np.column_stack([
        sign * sum((w * wide[d].to_numpy(np.float64) for d, w in weights.items()), np.zeros(len(wide)))
        for _, _, weights in terms.values()
    ])
    tile_ids = list(wide.index)
    clusters, info = inference.units(tile_ids)
    return info, matrix, inference.mean(matrix, clusters, tile_ids)


def attribute_scores(
    tile_scores: pd.DataFrame, domains: AttributionDomains, *,
    blocks: BlockMap | Mapping[str, str] | None = None, n_boot: int = 2000, seed: int = 0, ci: float = 0.95,
    interval: str = "t",
) -> pd.DataFrame:
    """The decomposition of per-tile scores (columns model, method, regime, metric, test_domain, tile_id,
    value, higher_better) into :data:`ATTRIBUTION_COLUMNS`, one row per model × metric × term.

    Per model × metric, the Shapley terms are computed when every coalition's domain was scored and the
    secondary views when their domains were; only tiles scored on every domain used are kept.
    ``share_pct`` = 100 · term / total. Metric ``mse`` rows (from ``psnr``) and the derived dB Shapley
    rows of ``psnr`` need ``psnr`` among the scores.
    """
    inference = Inference(block_map(None, blocks), ci=ci, interval=interval, n_boot=n_boot, seed=seed)
    records: list[dict[str, Any]] = []
    keys = ["model", "method", "regime", "metric"]
    coalitions, secondary = set(domains.coalition_domains), set(domains.all_domains)
    for key, group in tile_scores.groupby(keys, sort=True):
        wide = group.pivot_table(index="tile_id", columns="test_domain", values="value", aggfunc="mean")
        present = set(wide.columns)
        has_shapley, has_secondary = coalitions <= present, secondary <= present
        if not (has_shapley or has_secondary):
            continue  # this model × metric was not scored on the attribution domains
        needed = (coalitions if has_shapley else set()) | (secondary if has_secondary else set())
        wide = wide[sorted(needed)].dropna().sort_index()
        if wide.empty:
            continue
        higher_better = bool(group["higher_better"].iloc[0])
        names = dict(zip(keys, key, strict=True))
        derived = names["metric"] == "psnr" and has_shapley  # dB Shapley = MSE shares (see the docstring)
        terms = term_weights(domains, shapley=has_shapley and not derived, secondary=has_secondary)
        info, _, est = _decompose(wide, terms, 1.0 if higher_better else -1.0, inference)
        records += _records(names, terms, est, info, higher_better)
        if derived:
            records += _mse_records(names, wide, domains, float(est.mean[0]), float(est.mean[1]), inference)
    table = pd.DataFrame.from_records(records, columns=list(ATTRIBUTION_COLUMNS))
    return adjust_attribution(table, ci=ci)


def _records(names: dict[str, Any], terms: dict[str, tuple[str, str | None, Weights]], est: Any,
             info: dict[str, Any], higher_better: bool) -> list[dict[str, Any]]:
    total = float(est.mean[0])
    columns = zip(terms.items(), est.mean, est.low, est.high, est.p, strict=True)
    return [{**names, "term": term, "kind": kind, "effect": effect, "value": float(m), "ci_low": float(lo),
             "ci_high": float(hi), "share_pct": 100.0 * m / total if total != 0 else float("nan"),
             "p_value": float(p), **info, "higher_better": higher_better}
            for (term, (kind, effect, _)), m, lo, hi, p in columns]


def _mse_records(names: dict[str, Any], psnr: pd.DataFrame, domains: AttributionDomains, total_db: float,
                 baseline_db: float, inference: Inference) -> list[dict[str, Any]]:
    """The ``mse`` decomposition of PSNR scores (tiles × domains; every term, with CIs) and the derived
    dB Shapley rows of ``psnr``: shapley_dB(e) = (total_dB − baseline_dB) · φ_MSE(e) / Σ φ_MSE (they sum
    to total_dB − baseline_dB exactly; no CI of their own, see the ``mse`` rows)."""
    mse = pd.DataFrame(mse_from_psnr(psnr.to_numpy()), index=psnr.index, columns=psnr.columns)
    terms = term_weights(domains)
    info, _, est = _decompose(mse, terms, -1.0, inference)
    rows = _records({**names, "metric": MSE}, terms, est, info, False)
    phi = {t: float(m) for t, m in zip(terms, est.mean, strict=True) if t.startswith("shapley:")}
    spread = sum(phi.values())
    for term, value in phi.items():
        db = (total_db - baseline_db) * value / spread if spread != 0 else float("nan")
        rows.append({**names, "term": term, "kind": "shapley", "effect": term.split(":", 1)[1], "value": db,
                     "ci_low": np.nan, "ci_high": np.nan,
                     "share_pct": 100.0 * db / total_db if total_db != 0 else np.nan,
                     "p_value": np.nan, **info, "higher_better": True})
    return rows


def adjust_attribution(table: pd.DataFrame, *, ci: float = 0.95) -> pd.DataFrame:
    """Holm over the terms of each metric (one family per printed table; the total, whose test is the gap
    table's, included) and verdicts (``worse`` / ``better`` / ``inconclusive``)."""
    adjusted = np.full(len(table), np.nan)
    for _, index in table.groupby("metric", sort=False).indices.items():
        adjusted[index] = holm(table["p_value"].to_numpy(float)[index])
    table = table.assign(p_adjusted=adjusted)
    table["verdict"] = verdicts(table["ci_low"], table["ci_high"], table["p_adjusted"], ci=ci)
    return table


def _data_range(con: Any, filters: Mapping[str, Any]) -> float:
    """The one PSNR data range of the rows (their ``options``), 1.0 when not recorded."""
    where, params = views.where_clause(views.merge_filters(filters, metric="psnr"))
    found = {json.loads(r[0] or "{}").get("data_range", 1.0)
             for r in con.execute(f"SELECT DISTINCT options FROM results {where}", params).fetchall()}
    if len(found) > 1:
        raise InputError("results", f"PSNR rows with several data ranges {sorted(found)}: MSE is ambiguous")
    return float(found.pop()) if found else 1.0


def attribution_table(
    results: Any, domains: AttributionDomains, *, metric: str | Sequence[str] | None = None,
    band: str = "all", split: str | None = "test", filters: Mapping[str, Any] | None = None,
    blocks: BlockMap | Mapping[str, str] | str | None = None,
    n_boot: int = 2000, seed: int = 0, ci: float = 0.95, interval: str = "t",
) -> pd.DataFrame:
    """:func:`attribute_scores` of a results store (or frame / connection), for one band (default the
    band average). ``metric`` may name ``mse`` (computed from ``psnr``)."""
    wanted = None if metric is None else ([metric] if isinstance(metric, str) else list(metric))
    scored = None if wanted is None else sorted({"psnr" if m == MSE else m for m in wanted})
    every = tuple(dict.fromkeys((*domains.all_domains, *domains.coalition_domains)))
    flt = views.merge_filters(filters, metric=scored, split=split, band=band, test_domain=list(every))
    with views.connected(results) as con:
        present = set(views.domains_present(con, views.merge_filters(filters, split=split)))
        missing = [d for d in domains.all_domains if d not in present]
        if missing:
            raise InputError("results", f"attribution test domains {missing} are not in the store; "
                                        "run `mindgap attribute` first")
        keys = ["model", "method", "regime", "metric", "test_domain"]
        scores = views.tile_means(con, keys=keys, filters=flt)
        data_range = _data_range(con, flt)
    table = attribute_scores(scores, domains, blocks=block_map(results, blocks), n_boot=n_boot, seed=seed,
                             ci=ci, interval=interval)
    if data_range != 1.0:
        mse = table["metric"] == MSE
        table.loc[mse, ["value", "ci_low", "ci_high"]] *= data_range**2
    if wanted is not None:
        table = table[table["metric"].isin(wanted)].reset_index(drop=True)
    return table


def stored_attribution_domains(results: str | Path) -> dict[str, AttributionDomains]:
    """run id -> attribution roles, for every attribution run in a results store."""
    from mindgap_core.store.results import ResultsStore

    return {run.run_id: AttributionDomains.from_dict(run.extra["attribution"])
            for run in ResultsStore(results).runs() if "attribution" in run.extra}
