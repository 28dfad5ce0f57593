"""``mindgap attribute``: build the attribution test domains, evaluate them, decompose the gap.

The variant tiles (simulated) go to ``RESULTS/attribution/<experiment>/`` with their own manifest;
the evaluation is an ordinary run of the experiment machinery (same models, metrics, samples, seeds;
resumable, shardable) into the same results store, recorded with the roles of its test domains so
the dashboard and :func:`~mindgap_core.attribution.decompose.stored_attribution_domains` find them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mindgap_core.attribution.decompose import AttributionDomains
from mindgap_core.attribution.domains import write_variant_domains
from mindgap_core.attribution.names import RUN_PREFIX
from mindgap_core.errors import InputError
from mindgap_core.experiments.runner import RunSummary, run_experiment
from mindgap_core.experiments.spec import Experiment, TestDomain
from mindgap_core.types import ProgressFn, no_progress


def variant_folder(results: str | Path, experiment_name: str) -> Path:
    """Where the simulated variant tiles and their manifest of an experiment go."""
    return Path(results) / "attribution" / experiment_name


def discard_variant_tiles(results: str | Path, experiment_name: str) -> None:
    """Remove the variant tiles (not the manifest); the next run re-simulates them identically."""
    import shutil

    shutil.rmtree(variant_folder(results, experiment_name) / "tiles", ignore_errors=True)


def attribution_experiment(experiment: Experiment, results: str | Path,
                           on_progress: ProgressFn = no_progress) -> tuple[Experiment, AttributionDomains]:
    """The experiment whose test domains are the reference, the target and every variant of the target
    (variant tiles written under ``results``), and the roles of those domains.

    Every coalition of effects is simulated when a model gets Shapley values (the spec's ``shapley``);
    the other models are scored on the single-effect and leave-one-out variants only.
    """
    spec = experiment.attribution
    if spec is None:
        raise InputError(experiment.source, "no 'attribution' section (reference, target, effects)")
    by_name = {d.name: d for d in experiment.test_domains}
    reference, target = by_name[spec.reference], by_name[spec.target]
    out_dir = variant_folder(results, experiment.name)
    shapley = [m.name for m in experiment.models if spec.shapley_for(m.name)]
    manifest, variants, players = write_variant_domains(
        target.manifest, target.domain, experiment.split, out_dir, spec.effects, on_progress,
        shapley=bool(shapley))
    variant_domains = tuple(TestDomain(v.domain, manifest.resolve(), v.domain) for v in variants)
    domains = AttributionDomains(reference.name, target.name, players.effects, players.others)
    secondary = domains.all_domains
    models = tuple(m if m.name in shapley else dataclasses.replace(m, test_domains=secondary)
                   for m in experiment.models)
    derived = dataclasses.replace(
        experiment, name=f"{RUN_PREFIX}{experiment.name}", test_domains=(reference, target, *variant_domains),
        models=models, save_outputs=(), save_maps=(),
    )
    return derived, domains


def run_attribution(experiment: Experiment, results: str | Path, *, device: str | None = None,
                    rank: int = 0, world: int = 1, on_progress: ProgressFn = no_progress,
                    on_simulate: ProgressFn = no_progress) -> tuple[RunSummary, AttributionDomains]:
    """Simulate the variants and evaluate every model on them (resumes a killed run)."""
    derived, domains = attribution_experiment(experiment, results, on_simulate)
    summary = run_experiment(derived, results, device=device, rank=rank, world=world, on_progress=on_progress,
                             run_extra={"attribution": domains.to_dict()})
    return summary, domains
