"""MindGap's opensr-test-style scores equal ESA opensr-test 1.3.3's own output on real imagery.

Golden values: ``tests/data/opensr_test_golden.json``, written by ``scripts/opensr_reference.py golden``
(run in opensr-test's own venv; see that script's docstring) on the triplets of
``tests/fixtures/opensr_triplets.py`` (demo scene crops; SR = HR, bicubic, bilinear, blur, shift,
far shift, gain, noise, texture; scales 2 and 4), at border 16 (opensr-test's default) and 0, with
float32 and with float64 input tensors. No opensr-test at run time.

What remains (measured when the golden file was made, asserted below):
- float64 inputs: within 3e-6 relative. opensr-test's ``sr_harm`` passes through OpenCV's
  ``warpAffine`` in float32 whatever the input dtype; MindGap computes in float64 throughout. (That
  rounding can also move a single pixel across the hard 75th-percentile correctness mask: none here,
  one benchmark tile of 256 in ``benchmarks/metrics.py --opensr``, 1.2e-3 on hallucination.)
- float32 inputs: within 1e-3 relative, except where opensr-test's float32 run disagrees with its own
  float64 run by more than that: its float32 phase correlation (skimage on complex64) can pick the
  neighbouring 1/50-pixel peak (one case: ``c3_x4_bicubic`` at border 16, shift -0.48 vs -0.46 px,
  moving synthesis and correctness by up to 2.7e-3). There MindGap equals the float64 run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mindgap_core.metrics.opensr import SCORES, OpensrOptions, opensr_scores
from tests.fixtures.opensr_triplets import BORDERS, RGB_BANDS, SCALES, build_triplets, checksum

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "opensr_test_golden.json"
REL_FLOAT32 = 1e-3
REL_FLOAT64 = 1e-5


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def ours() -> dict[int, dict[str, dict[str, float]]]:
    """border -> case id -> score -> value, scored batched (one batch per scale)."""
    triplets = build_triplets()
    out: dict[int, dict[str, dict[str, float]]] = {}
    for border in BORDERS:
        out[border] = {}
        for scale in SCALES:
            sel = [t for t in triplets if t.scale == scale]
            stack = {k: torch.from_numpy(np.stack([getattr(t, k) for t in sel])) for k in ("lr", "sr", "hr")}
            got = opensr_scores(stack["sr"], stack["lr"], stack["hr"], scale, RGB_BANDS,
                                OpensrOptions(border=border))
            for i, t in enumerate(sel):
                out[border][t.case_id] = {k: float(v[i]) for k, v in got.items()}
    return out


def _rel(a: float | None, b: float | None) -> float:
    """Relative difference of ``a`` to ``b``; None/NaN is "undefined" (opensr-test writes NaN as
    null): 0 when both are undefined, inf when only one is."""
    a_nan = a is None or math.isnan(a)
    b_nan = b is None or math.isnan(b)
    if a_nan or b_nan:
        return 0.0 if a_nan and b_nan else math.inf
    return abs(a - b) / abs(b) if b != 0 else abs(a)


def test_inputs_are_the_ones_opensr_test_scored(golden):
    triplets = build_triplets()
    assert {t.case_id for t in triplets} == set(golden["inputs"])
    for t in triplets:
        for k in ("lr", "sr", "hr"):
            assert checksum(getattr(t, k)) == pytest.approx(golden["inputs"][t.case_id][k], rel=1e-7), (
                f"{t.case_id} {k} changed: rerun scripts/opensr_reference.py golden")


def test_golden_covers_every_score_and_both_spatial_outcomes(golden):
    assert golden["opensr_test_version"] == "1.3.3"
    for table in golden["scores"].values():
        for scores in table.values():
            assert set(scores) == set(SCORES)
    # the far shift at scale 2 (6 LR px) is beyond opensr-test's 5 px limit: spatial undefined
    g16 = golden["scores"]["border16_float32"]
    assert g16["c0_x2_far_shift"]["consistency_spatial"] is None
    assert g16["c0_x2_shift"]["consistency_spatial"] > 0.5


@pytest.mark.parametrize("border", BORDERS)
def test_equal_to_opensr_test_with_float64_inputs(golden, ours, border):
    gold = golden["scores"][f"border{border}_float64"]
    for case, scores in gold.items():
        for name, value in scores.items():
            got = ours[border][case][name]
            assert _rel(got, value) <= REL_FLOAT64, (case, name, got, value)


@pytest.mark.parametrize("border", BORDERS)
def test_equal_to_opensr_test_with_float32_inputs(golden, ours, border):
    g32, g64 = golden["scores"][f"border{border}_float32"], golden["scores"][f"border{border}_float64"]
    own_float32_spread = []
    for case, scores in g32.items():
        for name, value in scores.items():
            if _rel(value, g64[case][name]) > REL_FLOAT32:  # opensr-test disagrees with itself
                own_float32_spread.append((case, name))
                assert _rel(ours[border][case][name], g64[case][name]) <= REL_FLOAT64
                continue
            got = ours[border][case][name]
            assert _rel(got, value) <= REL_FLOAT32, (case, name, got, value)
    # the exception stays the rare float32 phase-correlation tie, never a whole score
    assert len({c for c, _ in own_float32_spread}) <= 2
    assert all(n not in ("consistency_reflectance", "consistency_spectral") for _, n in own_float32_spread)
