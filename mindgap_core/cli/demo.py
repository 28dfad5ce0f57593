"""``mindgap demo --stage data``: rebuild the embedded demo deterministically."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("Rebuild the embedded demo: 'data' (pairs from the real sample imagery), 'train' (every demo "
        "checkpoint, resumable), 'adapters' (the LR domain adapters), 'results' (the demo experiment and "
        "its gap attribution into data/demo/results).")

#: adapter folder (under models/adapters) -> `mindgap adapter` arguments
ADAPTER_RECIPES: dict[str, list[str]] = {
    "harmoniser": ["--kind", "harmoniser"],
    "harmoniser_coreg": ["--kind", "harmoniser", "--coregister"],
    "learned": ["--kind", "learned", "--steps", "1500", "--batch-size", "16"],
}

REPO_DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, so that the command line a
    model records (training.json, TRAINING.md) reads ``data/demo/...`` and can be re-run elsewhere."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _stage_data(args: argparse.Namespace) -> int:
    from mindgap_core.cli.progress import tqdm_progress
    from mindgap_core.data.demo import DemoConfig, build_demo_data

    config = DemoConfig(seed=args.seed)
    with tqdm_progress("demo tiles") as on_progress:
        manifest = build_demo_data(args.source, args.out, config, on_progress=on_progress)
    print(manifest)
    return 0


def _stage_train(args: argparse.Namespace) -> int:
    from mindgap_core.cli import main
    from mindgap_core.train.recipes import recipe_argv, select_recipes, write_training_summary

    recipes = select_recipes(args.max_priority, args.recipe or None)
    for i, recipe in enumerate(recipes, start=1):
        budget = f"{recipe.steps} steps, ~{recipe.est_minutes:.1f} min on 2 CPU cores"
        print(f"[{i}/{len(recipes)}] {recipe.name} ({budget})")
        code = main(recipe_argv(recipe, _shown(args.out / "manifest.parquet"), _shown(args.out / "models"),
                                seed=args.seed))
        if code:
            return code
    print(write_training_summary(args.out / "models"))
    return 0


def _stage_adapters(args: argparse.Namespace) -> int:
    from mindgap_core.cli import main
    from mindgap_core.train.recipes import write_training_summary

    for name, extra in ADAPTER_RECIPES.items():
        print(f"adapter {name}")
        code = main(["adapter", *extra, "--data", _shown(args.out / "manifest.parquet"), "--seed",
                     str(args.seed), "--out", _shown(args.out / "models" / "adapters" / name)])
        if code:
            return code
    print(write_training_summary(args.out / "models"))
    return 0


def _stage_results(args: argparse.Namespace) -> int:
    import shutil

    from mindgap_core.cli import main

    results = args.out / "results"
    if results.exists() and not args.resume:
        shutil.rmtree(results)
    code = main(["evaluate", "--experiment", str(args.out / "experiment.yaml"), "--out", str(results)])
    if code:
        return code
    # the gap by simulator effect; the simulated variant tiles are not shipped (re-simulated on demand)
    return main(["attribute", "--experiment", str(args.out / "attribution.yaml"), "--out", str(results),
                 "--discard-tiles"])


#: the test domain whose validation tiles fit the demo's spread factors (a few labelled target tiles)
CALIBRATION_DOMAIN = "simulated_cross_sensor"


def _stage_calibrate(args: argparse.Namespace) -> int:
    """Fit every ``spread_scale`` file the demo experiment names (``mindgap spread-scale`` on the
    validation tiles of the simulated cross-sensor domain)."""
    import yaml

    from mindgap_core.cli import main

    experiment = args.out / "experiment.yaml"
    models = yaml.safe_load(experiment.read_text())["models"]
    entries = [m for m in models if isinstance(m.get("spread_scale"), str)]
    for entry in entries:
        code = main(["spread-scale", "--experiment", _shown(experiment), "--model", entry["name"], "--domain",
                     CALIBRATION_DOMAIN, "--out", _shown(experiment.parent / entry["spread_scale"])])
        if code:
            return code
    return 0


#: stage name -> runner (a plain registry)
STAGES = {"data": _stage_data, "train": _stage_train, "adapters": _stage_adapters,
          "calibrate": _stage_calibrate, "results": _stage_results}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, choices=sorted(STAGES), help="which part to rebuild")
    parser.add_argument("--out", type=Path, default=REPO_DEMO, help="demo folder (default: data/demo)")
    parser.add_argument("--source", type=Path, default=REPO_DEMO / "source", help="real sample imagery")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    parser.add_argument("--max-priority", type=int, default=3,
                        help="train: 1 = synthetic + real models, 2 = + mixed/fine-tuned, 3 = + scaling")
    parser.add_argument("--recipe", action="append", help="train: only this recipe (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="results: keep an existing results folder and resume it")


def run(args: argparse.Namespace) -> int:
    return STAGES[args.stage](args)
