"""Acceptance sweep (issue 16): every page renders, without an exception element, for every combination
of sidebar choices the demo store offers, and for malformed query strings.

The combinations are walked in the sidebar's order (run, metric, method, regime, compared domain,
band, sample aggregate), each list narrowed by the choices above it, exactly as mindgap_ui/choices.py
narrows them; each page gets one session driven through its sidebar widgets. By default the sweep
renders a subset holding every pair of choices offered together (167 of the 1097 combinations of the
demo store; all of them took 15 min on 2 cores when last run);
``MINDGAP_SWEEP=all`` renders every combination. Pages are split over two worker processes (the CI
machine has 2 cores).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from mindgap_ui.navigation import PAGES
from tests.app.conftest import demo_results_exist
from tests.app.sweep import (
    call,
    covering_views,
    demo_combinations,
    sidebar_views,
    sweep_queries,
    sweep_views,
)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not demo_results_exist(), reason="no demo results (data/demo/results)")]

SWEEP_ENV = "MINDGAP_SWEEP"
#: pages that draw the results sidebar
SIDEBAR_PAGES = [name for name, spec in PAGES.items() if spec.analysis] + ["map_explorer"]
LONG = "x" * 5000
#: query strings a user (or a broken link) can send: unknown values, wrong types, repeated keys, path
#: tricks, control characters, markup; the sidebar and every page must explain, not raise
MALFORMED: list[dict[str, str | list[str]]] = [
    {"metric": "no_such_metric", "band": "ultraviolet", "method": "<script>alert(1)</script>", "regime": "",
     "run": "../../etc/passwd", "target": "synthetic", "aggregate": "median", "model": "no/such/model",
     "plot": "pie", "tile": "r99c99", "map_left": "sr|nope|x", "map_right": "|||", "map_colour": "rainbow",
     "map_model": "job:-1", "attribution_run": "ghost", "logy": "maybe", "unknown": "1"},
    {"metric": ["psnr", "ssim"], "band": ["all", "nir"], "tile": ["r0c0", "../x"], "model": LONG,
     "plot": "%00", "run": "∅ ünïcødé 🛰", "map_left": "lr|" + LONG},
    {"metric": "lpips_sat", "band": "nir", "method": "sinsr", "regime": "finetune"},  # issue 16's crashes
    {"metric": "ergas", "band": "red", "run": "attribution-demo-7c50c14326", "target": "attr-only-mtf"},
    {"results": "/nonexistent/store", "metric": "psnr"},
    {"results": "../../../../etc", "tile": "r0c0"},
    {"results": "a\x00b"},
    {"results": "data/demo/results/shards", "metric": "lpips_sat", "band": "nir"},
]


def _workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _run(jobs: list[tuple]) -> tuple[int, list[str]]:
    runs, problems = 0, []
    with ProcessPoolExecutor(_workers(), mp_context=multiprocessing.get_context("spawn")) as pool:
        for n, found in pool.map(call, jobs):
            runs += n
            problems += found
    return runs, problems


def test_the_sidebar_offers_only_comparable_combinations() -> None:
    combos = demo_combinations()
    views = sidebar_views(combos)
    assert len(views) > 100
    pairs = {p for v in views for p in itertools.combinations(sorted(v.items()), 2)}
    covered = {p for v in covering_views(views) for p in itertools.combinations(sorted(v.items()), 2)}
    assert covered == pairs
    for row in combos.rows:  # every offered combination has a compared domain besides the source
        assert row[4] not in (None, "synthetic") and not str(row[4]).startswith("attr-")
    # the three combinations of issue 16 that crashed are not offered
    for bad in ({"metric": "lpips_sat", "band": "nir"}, {"metric": "ergas", "band": "red"},
                {"method": "sinsr", "regime": "finetune"}):
        assert not [v for v in views if all(v[k] == x for k, x in bad.items())], bad


def test_every_page_for_every_pair_of_sidebar_choices() -> None:
    """Every pair of choices the sidebar offers together (metric + band, method + regime, ...) on every
    page; with ``MINDGAP_SWEEP=all``, every combination (about 11 times longer)."""
    views = sidebar_views(demo_combinations())
    if os.environ.get(SWEEP_ENV) != "all":
        views = covering_views(views)
    jobs = [(sweep_views, page, views) for page in SIDEBAR_PAGES]
    runs, problems = _run(jobs)
    assert runs >= len(views) * len(SIDEBAR_PAGES)
    assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} problems)"


def test_every_page_for_malformed_query_strings() -> None:
    jobs = [(sweep_queries, page, MALFORMED) for page in PAGES]
    runs, problems = _run(jobs)
    assert runs == len(MALFORMED) * len(PAGES)
    assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} problems)"
