"""The demo's training plan (``mindgap demo --stage train``): which model on which regime, for how long.

Budgets are sized for the 2-core CPU of docs/science.md ("Measured on this 2-core CPU": a train step of
the 1.05 M-parameter demo UNet at batch 8, 64 x 64 HR, takes 0.5-0.7 s): about 4-6 minutes per
model, fine-tuning about half. Per-step cost estimates (batch 8 unless noted, 64 x 64 HR, x2):
regression 0.3 s, SR3 / ResShift 0.6 s, SRDiff 0.65 s, LDM-SR autoencoder 0.33 s and latent
diffusion ~0.1 s, SinSR distillation ~2.7 s at batch 4 (15 teacher evaluations per step).

Order matters: a recipe's ``init`` / ``teacher`` names an earlier recipe whose output it reads.
``priority`` 1 gives the train-domain x test-domain table (synthetic, cross_sensor), 2 adds mixed and
fine-tuned models, 3 the diversity-scaling series: ``scaling/<method>`` (tiles grow with blocks) and
``scaling_fixed/<method>`` (diversity at a fixed number of tiles, with the data-size control).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Recipe:
    """One training run of the demo."""

    name: str  # output sub-folder, "<method>/<regime>"
    method: str
    regime: str
    steps: int
    batch_size: int
    preset: str = "demo"
    init: str | None = None  # name of the recipe whose output initialises this one
    teacher: str | None = None  # sinsr: name of the ResShift recipe used as teacher
    #: "" (one model), "blocks" (--blocks-series: tiles grow with blocks) or "fixed_size"
    #: (--fixed-size-series: diversity at a fixed number of tiles, and the size control)
    series: str = ""
    est_minutes: float = 0.0  # expected wall time on the 2-core CPU
    priority: int = 1


def _budget(method: str) -> tuple[int, int, float]:
    """(steps, batch size, estimated minutes) of a from-scratch demo run on the 2-core CPU.

    docs/science.md ("Measured on this 2-core CPU"): residual / x0-predicting diffusion needs ~850 steps
    at batch 8 to tie bicubic on this CPU, so SR3 and ResShift get 850 (their demo preset reads the UNet
    output as a correction of up(LR), which also starts them at bicubic); SRDiff (residual target plus
    an LR encoder) already ties bicubic after 200. LDM-SR's budget is split 60 % autoencoder (f = 2, 5x
    learning rate, low initial posterior variance), 40 % latent diffusion; SinSR distils the trained
    ResShift teacher for 100 steps at batch 4. The whole plan trains in about 1.5 hours of an unloaded
    2-core CPU (minutes on a GPU); the recipe names stay if these numbers change.
    """
    return {
        "bicubic": (0, 8, 0.1),
        "regression": (400, 8, 2.0),
        "sr3": (850, 8, 8.0),
        "srdiff": (200, 8, 2.2),
        "ldm_sr": (2400, 8, 8.0),
        "resshift": (850, 8, 8.0),
        "sinsr": (100, 4, 4.5),
    }[method]


#: methods that also get the mixed and fine-tuned regimes (the issue asks for at least two)
EXTRA_REGIME_METHODS: tuple[str, ...] = ("regression", "resshift")
#: methods with a diversity-scaling series
SCALING_METHODS: tuple[str, ...] = ("regression",)
#: runs of a series (train/scaling.py): blocks 1, 2, 4, 7 of the demo; fixed size (1, 4), (2, 4), (4, 4),
#: (4, 8), (4, 16) (blocks, tiles) on the demo's 7 train blocks of 4 tiles
SERIES_RUNS = {"blocks": 4, "fixed_size": 5}
#: CLI flag of each kind of series
SERIES_FLAGS = {"blocks": "--blocks-series", "fixed_size": "--fixed-size-series"}


def _build() -> tuple[Recipe, ...]:
    recipes: list[Recipe] = []
    order = ("bicubic", "regression", "sr3", "srdiff", "ldm_sr", "resshift", "sinsr")
    for regime in ("synthetic", "cross_sensor"):
        for method in order:
            if method == "bicubic" and regime != "synthetic":
                continue  # nothing learnt: one bicubic model serves every regime
            steps, batch, minutes = _budget(method)
            teacher = f"resshift/{regime}" if method == "sinsr" else None
            recipes.append(Recipe(f"{method}/{regime}", method, regime, steps, batch, teacher=teacher,
                                  est_minutes=minutes, priority=1))
    for method in EXTRA_REGIME_METHODS:
        steps, batch, minutes = _budget(method)
        recipes.append(Recipe(f"{method}/mixed", method, "mixed", steps, batch, est_minutes=minutes,
                              priority=2))
        recipes.append(Recipe(f"{method}/finetune", method, "finetune", max(1, steps // 2), batch,
                              init=f"{method}/synthetic", est_minutes=minutes / 2, priority=2))
    for method in SCALING_METHODS:
        steps, batch, minutes = _budget(method)
        for name, series in (("scaling", "blocks"), ("scaling_fixed", "fixed_size")):
            recipes.append(Recipe(f"{name}/{method}", method, "cross_sensor", steps // 2, batch,
                                  series=series, est_minutes=SERIES_RUNS[series] * minutes / 2, priority=3))
    return tuple(recipes)


#: the demo's runs, in an order where every ``init``/``teacher`` comes first
DEMO_RECIPES: tuple[Recipe, ...] = _build()


def recipe_argv(recipe: Recipe, manifest: str | Path, out_root: str | Path, seed: int = 0) -> list[str]:
    """The ``mindgap train`` arguments (without the program name) that run ``recipe``."""
    out_root = Path(out_root)
    argv = [
        "train", "--method", recipe.method, "--regime", recipe.regime, "--data", str(manifest),
        "--out", str(out_root / recipe.name), "--steps", str(recipe.steps),
        "--batch-size", str(recipe.batch_size),
        "--config", recipe.preset, "--seed", str(seed), "--resume", "--save-dtype", "fp16",
    ]
    if recipe.init:
        argv += ["--init", str(out_root / recipe.init)]
    if recipe.teacher:
        argv += ["--teacher", str(out_root / recipe.teacher)]
    if recipe.series:
        argv.append(SERIES_FLAGS[recipe.series])
    return argv


def select_recipes(max_priority: int = 3, names: Iterable[str] | None = None) -> tuple[Recipe, ...]:
    """Recipes up to ``max_priority``, or exactly ``names`` (plus nothing else), in plan order."""
    wanted = set(names) if names is not None else None
    if wanted is not None:
        unknown = wanted - {r.name for r in DEMO_RECIPES}
        if unknown:
            from mindgap_core.errors import ConfigError

            raise ConfigError(f"unknown recipes {sorted(unknown)}; known: {[r.name for r in DEMO_RECIPES]}")
        return tuple(r for r in DEMO_RECIPES if r.name in wanted)
    return tuple(r for r in DEMO_RECIPES if r.priority <= max_priority)


def estimated_minutes(recipes: Iterable[Recipe]) -> float:
    """Sum of the recipes' estimated CPU minutes."""
    return sum(r.est_minutes for r in recipes)


def write_training_summary(models_root: str | Path) -> Path:
    """``TRAINING.md`` in ``models_root``: steps, wall time and device of every trained model there."""
    import json

    from mindgap_core.io.atomic import atomic_path

    models_root = Path(models_root)
    planned = {r.name: r.steps for r in DEMO_RECIPES}
    lines = ["# Demo checkpoints", "",
             "Trained by `mindgap demo --stage train` (recipes in `mindgap_core/train/recipes.py`). "
             "Cross-sensor (`cross_sensor`) training data is the demo's **simulated** cross-sensor domain. "
             "Wall times are as measured; the 2-core CPU was shared with other jobs during training, so "
             "the same recipe took between 1x and ~8x its unloaded time.", "",
             "| model | method | regime | train domains | blocks | steps | wall time (min) | device |",
             "|---|---|---|---|---|---|---|---|"]
    adapter_header = ["", "## LR domain adapters (`mindgap demo --stage adapters`)", "",
                      "Trained on the train split of the **simulated** cross-sensor domain, target = the "
                      "synthetic LR of the same tiles; validation L1 = mean absolute LR difference to the "
                      "synthetic LR on the validation split, before -> after adaptation.", "",
                      "| adapter | kind | steps | wall time (min) | device | val L1 before -> after |",
                      "|---|---|---|---|---|---|"]
    adapter_rows: list[str] = []
    for info_path in sorted(models_root.rglob("training.json")):
        info = json.loads(info_path.read_text())
        name = info_path.parent.relative_to(models_root).as_posix()
        if "kind" in info:  # an LR adapter, not an SR model
            kind = info["kind"] + (" + co-registration (oracle geometry)" if info.get("coregister") else "")
            minutes = float(info.get("wall_s", 0)) / 60
            before, after = info.get("val_l1_before", float("nan")), info.get("val_l1_after", float("nan"))
            adapter_rows.append(f"| {name} | {kind} | {info.get('steps')} | {minutes:.1f} | "
                                f"{info.get('device', '?')} | {before:.5f} -> {after:.5f} |")
            continue
        domains = ", ".join(info.get("train_domains", []))
        recipe_steps = planned.get(name.rsplit("/blocks-", 1)[0])  # a scaling series: its recipe
        steps = str(info.get("steps"))
        if recipe_steps is not None and info.get("steps") != recipe_steps:
            steps += f" (recipe now {recipe_steps}: trained with an earlier budget)"
        lines.append(f"| {name} | {info.get('method')} | {info.get('regime')} | {domains} | "
                     f"{info.get('blocks') or 'all'} | {steps} | "
                     f"{float(info.get('wall_s', 0)) / 60:.1f} | {info.get('device', '?')} |")
    if adapter_rows:
        lines += adapter_header + adapter_rows
    dest = models_root / "TRAINING.md"
    with atomic_path(dest) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return dest
