"""The demo training plan is consistent: dependencies first, arguments the CLI accepts, CPU budgets."""

from __future__ import annotations

import argparse

import pytest

from mindgap_core.cli import train as train_cli
from mindgap_core.errors import ConfigError
from mindgap_core.models import MODEL_REGISTRY
from mindgap_core.train.recipes import (
    DEMO_RECIPES,
    SERIES_RUNS,
    estimated_minutes,
    recipe_argv,
    select_recipes,
)
from mindgap_core.train.regimes import REGIMES


def test_every_dependency_comes_first_and_names_are_unique() -> None:
    seen: dict[str, str] = {}
    for r in DEMO_RECIPES:
        assert r.name not in seen
        assert r.method in MODEL_REGISTRY and r.regime in REGIMES
        if r.init:
            assert seen.get(r.init) == r.method, r
        if r.teacher:
            assert r.method == "sinsr" and seen.get(r.teacher) == "resshift", r
        assert (r.init is not None) == (r.regime == "finetune")
        seen[r.name] = r.method
    for method in MODEL_REGISTRY:  # every method has a synthetic and (learnt ones) a real model
        assert f"{method}/synthetic" in seen
        assert method == "bicubic" or f"{method}/cross_sensor" in seen


def test_budgets_fit_the_two_core_cpu() -> None:
    for r in DEMO_RECIPES:
        per_run = r.est_minutes / SERIES_RUNS.get(r.series, 1)
        assert per_run <= 8.0, r
    # the whole plan must fit one working session of this CPU (it is retrained by `demo --stage train`)
    assert 15 < estimated_minutes(select_recipes(1)) < 70
    assert estimated_minutes(DEMO_RECIPES) < 100


def test_argv_is_accepted_by_the_cli_parser() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    train_cli.add_arguments(sub.add_parser("train"))
    for r in DEMO_RECIPES:
        args = parser.parse_args(recipe_argv(r, "data/demo/manifest.parquet", "runs"))
        assert args.method == r.method and args.steps == r.steps and args.resume
        assert str(args.out) == f"runs/{r.name}"
        assert (args.init is not None) == (r.init is not None)
        assert args.blocks_series == (r.series == "blocks")
        assert args.fixed_size_series == (r.series == "fixed_size")


def test_select_recipes() -> None:
    assert {r.priority for r in select_recipes(1)} == {1}
    chosen = select_recipes(names=["sr3/cross_sensor", "sr3/synthetic"])
    assert [r.name for r in chosen] == ["sr3/synthetic", "sr3/cross_sensor"]
    with pytest.raises(ConfigError, match="unknown recipes"):
        select_recipes(names=["vdsr/cross_sensor"])
