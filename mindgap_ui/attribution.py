"""Cached loaders and labels of the gap attribution (``mindgap attribute`` runs in a results store)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mindgap_core.attribution.decompose import (
    AttributionDomains,
    attribution_table,
    stored_attribution_domains,
)
from mindgap_core.attribution.names import effect_label
from mindgap_ui.results import N_BOOT, SEED, Filters, _filters, blocks, connection

#: what to run when a store holds no attribution run
ATTRIBUTE_COMMAND = "mindgap attribute --experiment data/demo/attribution.yaml --out data/demo/results"
#: chart labels of the terms that belong to no single effect
TERM_LABELS = {"baseline": "baseline (resampling kernel)", "interaction": "interaction", "total": "total gap"}


def term_label(kind: str, effect: str | None) -> str:
    """The display name of a decomposition term: its effect for single / leave-one-out terms."""
    if kind in ("single", "leave_one_out") and effect:
        return effect_label(effect)
    return TERM_LABELS.get(kind, kind)


@st.cache_data(show_spinner=False)
def attribution_runs(root: str, fingerprint: str) -> dict[str, dict]:
    """run id -> roles of its test domains (``reference``, ``target``, ``effects``) for every attribution
    run of the store, in run-id order (``fingerprint`` makes the cache follow new shards and runs)."""
    found = stored_attribution_domains(root)
    return {run_id: found[run_id].to_dict() for run_id in sorted(found)}


@st.cache_data(show_spinner="Bootstrapping the attribution terms…")
def attribution(root: str, fingerprint: str, run_id: str, metric: str, band: str,
                filters: Filters) -> pd.DataFrame:
    """The decomposition of ``run_id``'s gap in ``metric`` (every model; CIs over spatial blocks), as
    :func:`mindgap_core.attribution.decompose.attribution_table` computes it, with a ``label`` column."""
    domains = AttributionDomains.from_dict(attribution_runs(root, fingerprint)[run_id])
    with connection(root, fingerprint) as con:
        table = attribution_table(con, domains, metric=metric, band=band,
                                  filters={**_filters(filters), "run_id": run_id},
                                  blocks=blocks(root, fingerprint), n_boot=N_BOOT, seed=SEED)
    labels = [term_label(k, e) for k, e in zip(table["kind"], table["effect"], strict=True)]
    return table.assign(label=labels)


def variant_domains(roles: dict) -> list[str]:
    """The simulated variant test domains of an attribution run (roles as :func:`attribution_runs` gives)."""
    domains = AttributionDomains.from_dict(roles)
    return [d for d in domains.all_domains if d not in (domains.reference, domains.target)]
