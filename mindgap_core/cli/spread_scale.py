"""``mindgap spread-scale``: fit a post-hoc factor on the spread of a model's samples on a validation split.

    mindgap spread-scale --experiment data/demo/experiment.yaml --model sr3/synthetic \\
        --domain simulated_cross_sensor --out data/demo/calibration/sr3_synthetic.json

The model runs on the domain's validation tiles exactly as the experiment runs it on its test tiles
(samples, steps, seeds); the factor that brings the coverage of the central 50/80/90/95 % sample
intervals closest to nominal is fitted there (:func:`mindgap_core.metrics.uncertainty.fit_spread_scale`,
a temperature on the deviations from the per-pixel mean). An experiment entry with ``spread_scale: FILE``
then also stores the test tiles' calibration scores with the spread scaled (the remedy's rows, model
``<name>/recalibrated``), so ``mindgap gap --uncertainty`` shows how much of the calibration gap it closes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = ("Fit a post-hoc spread factor of a stochastic model's samples on a validation split (a remedy for "
        "the calibration gap); write it as JSON for an experiment's spread_scale")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, type=Path, help="experiment YAML naming the model")
    parser.add_argument("--model", required=True, help="name of the model entry in the experiment")
    parser.add_argument("--domain", required=True, help="test domain (name in the experiment) to fit on")
    parser.add_argument("--split", default="val", help="split to fit on (default: val; never the test split)")
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import numpy as np
    import torch
    from tqdm import tqdm

    from mindgap_core.errors import InputError
    from mindgap_core.experiments.runner import UnitRunner, plan_units
    from mindgap_core.experiments.spec import load_experiment
    from mindgap_core.io.atomic import atomic_path
    from mindgap_core.metrics.uncertainty import (
        NOMINAL_LEVELS,
        coverages,
        fit_spread_scale,
        has_spread,
        scale_spread,
    )

    experiment = load_experiment(args.experiment, ignore_spread_scale=True)
    if args.split == experiment.split:
        raise InputError("--split", f"{args.split!r} is the split the experiment scores; fit on another one "
                                    "(a factor fitted on the test tiles would grade itself)")
    models = {m.name: m for m in experiment.models}
    domains = {d.name: d for d in experiment.test_domains}
    if args.model not in models:
        raise InputError("--model", f"{args.model!r} is not a model of {args.experiment} "
                                    f"({', '.join(models)})")
    if args.domain not in domains:
        raise InputError("--domain", f"{args.domain!r} is not a test domain of {args.experiment} "
                                     f"({', '.join(domains)})")
    if experiment.samples < 2:
        raise InputError(args.experiment, "samples must be >= 2 to have a spread to scale")
    try:
        fit = replace(experiment, split=args.split, models=(replace(models[args.model], spread_scale=None),),
                      test_domains=(domains[args.domain],))
        units = plan_units(fit)
    except ValueError as exc:
        raise InputError(args.experiment, str(exc)) from None
    device = args.device or experiment.device or ("cuda" if torch.cuda.is_available() else "cpu")
    runner = UnitRunner(fit, store=None, run_id="", device=device)  # type: ignore[arg-type]
    batches = []
    for unit in tqdm(units, desc=f"spread-scale {args.model} on {args.domain}/{args.split}"):
        drawn = runner.sample(unit)
        samples = torch.as_tensor(drawn.samples).float().cpu()
        truth = torch.from_numpy(np.stack([h.array for h in drawn.hr])).float()
        valid = torch.from_numpy(np.stack([h.valid for h in drawn.hr]))
        batches.append((samples, truth, valid))
    if not batches or not has_spread(batches[0][0]):
        raise InputError("--model", f"{args.model!r} gives identical samples (a deterministic model): no "
                                    "spread to scale")
    scale = fit_spread_scale(batches)

    def coverage_at(factor: float) -> dict[str, float]:
        per_tile = torch.cat([coverages(scale_spread(s, factor), t, NOMINAL_LEVELS, v)
                              for s, t, v in batches])
        mean = per_tile.mean(dim=0)
        return {f"{level:g}": round(float(c), 6) for level, c in zip(NOMINAL_LEVELS, mean, strict=True)}

    record = {
        "scale": scale, "model": args.model, "domain": args.domain, "split": args.split,
        "tiles": sum(int(b[0].shape[0]) for b in batches), "samples": experiment.samples,
        "steps": runner.steps(units[0]),
        "coverage_before": coverage_at(1.0), "coverage_after": coverage_at(scale),
        "command": f"mindgap spread-scale --experiment {args.experiment} --model {args.model} "
                   f"--domain {args.domain} --split {args.split} --out {args.out}",
    }
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    pairs = ", ".join(f"{k}: {record['coverage_before'][k]:.3f} / {record['coverage_after'][k]:.3f}"
                      for k in record["coverage_after"])
    print(f"{args.out}: spread x {scale:.3f} (coverage on {record['tiles']} {args.split} tiles, "
          f"nominal: before / after: {pairs})")
    return 0
