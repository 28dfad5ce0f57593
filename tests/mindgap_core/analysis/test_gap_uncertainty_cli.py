"""``mindgap gap --uncertainty --json`` on the shipped demo store: per stochastic model the coverage at
50/80/90/95 %, AUROC and Spearman on both domains, the calibration gap with its CI over spatial blocks and
the units used; deterministic models have no rows; the numbers are the core's gap table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mindgap_core.analysis.blocks import store_blocks
from mindgap_core.analysis.gap import gap_table
from mindgap_core.cli import main
from mindgap_core.paths import DEMO_RESULTS

HEADLINE = {"coverage_50", "coverage_80", "coverage_90", "coverage_95", "uncertainty_auroc",
            "uncertainty_spearman", "calibration_error", "spread"}


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    if not (DEMO_RESULTS / "shards").is_dir():
        pytest.skip("no demo results")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["gap", "--results", str(DEMO_RESULTS), "--uncertainty", "--band", "all", "--json"]) == 0
    return json.loads(out.getvalue())


def test_every_stochastic_model_has_the_headline_scores_with_units(records) -> None:
    by_model: dict[str, set[str]] = {}
    for r in records:
        by_model.setdefault(r["model"], set()).add(r["metric"])
        assert r["n_units"] == 3 and r["unit"] == "block" and "CR2" in r["ci_method"]
        assert r["gap_ci_low"] <= r["gap"] <= r["gap_ci_high"]
        assert r["source_domain"] == "synthetic" and r["target_domain"] == "simulated_cross_sensor"
    for name in ("sr3/synthetic", "srdiff/synthetic", "ldm_sr/synthetic", "resshift/synthetic",
                 "sinsr/synthetic", "sr3/synthetic/recalibrated"):
        assert by_model[name] == HEADLINE, name
    assert not any(m.startswith(("bicubic", "regression")) for m in by_model)  # no uncertainty: no rows


def test_numbers_are_the_core_gap_table(records) -> None:
    expected = gap_table(DEMO_RESULTS, metric=sorted(HEADLINE), filters={"band": "all"},
                         group=("model", "method", "regime", "train_domain", "metric"), reference_method=None,
                         blocks=store_blocks(DEMO_RESULTS)).set_index(["model", "metric"])
    assert len(records) == len(expected)
    for r in records:
        row = expected.loc[(r["model"], r["metric"])]
        np.testing.assert_allclose([r["mean_source"], r["mean_target"], r["gap_ci_low"], r["gap_ci_high"]],
                                   [row["mean_source"], row["mean_target"], row["gap_ci_low"],
                                    row["gap_ci_high"]])
