"""Benchmark: time to the overview page's first complete render (Streamlit AppTest, in-process).

Stores measured:
* the demo results (``data/demo/results``) when shipped, else the dashboard test fixture store (the
  real evaluation of bicubic + tiny models on the demo's 12 test tiles; built once, about a minute);
* a store of ~100k synthetic result rows written with ``ResultsStore.write_shard`` (the generator of
  ``benchmarks/store.py``: 7 methods × 4 regimes × 2 domains × 8 metrics × 5 bands × ~45 tiles).

For each store: ``cold`` = first render with empty Streamlit caches (imports already done: the
first AppTest of the process is reported separately as ``first in process``), ``warm`` = a new
session rendering the same view from the caches. Goal: cold < 2 s.

    python benchmarks/dashboard.py                 # both stores, 3 repeats
    python benchmarks/dashboard.py --rows 1000000  # a bigger synthetic store
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mindgap_core.paths import DATA_ROOTS_ENV, DEMO_RESULTS  # noqa: E402

GOAL_S = 2.0


def _store_benchmark_module():
    spec = importlib.util.spec_from_file_location("store_benchmark", REPO / "benchmarks" / "store.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render_overview(query: str) -> float:
    """Seconds for one AppTest run of app.py on the overview page with ``results=query``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    if query:
        at.query_params["results"] = query
    at.switch_page("pages/overview.py")
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"overview raised: {[e.value for e in at.exception]}")
    charts = len(at.get("plotly_chart"))
    if charts < 2:
        raise RuntimeError(f"overview rendered {charts} charts (expected the gap and train×test matrices)")
    return elapsed


def measure(name: str, query: str, repeats: int) -> dict[str, float]:
    import streamlit as st
    from streamlit.logger import set_log_level

    set_log_level("error")  # clearing caches outside a server logs "No runtime found"

    cold, warm = [], []
    for _ in range(repeats):
        st.cache_data.clear()
        st.cache_resource.clear()
        cold.append(render_overview(query))
        warm.append(render_overview(query))
    return {"cold": statistics.median(cold), "warm": statistics.median(warm), "cold_max": max(cold)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the synthetic store")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ[DATA_ROOTS_ENV] = str(tmp)
        stores: list[tuple[str, str]] = []
        if (DEMO_RESULTS / "shards").is_dir() and any((DEMO_RESULTS / "shards").glob("[!.]*.parquet")):
            stores.append(("demo results", ""))
        else:
            from tests.fixtures.results_store import make_results_store

            folder = os.environ.get("MINDGAP_TEST_STORE")
            if folder:
                os.environ[DATA_ROOTS_ENV] += os.pathsep + str(Path(folder))
            t0 = time.perf_counter()
            root = make_results_store(Path(folder) if folder else tmp / "fixture")
            took = time.perf_counter() - t0
            print(f"(demo results not shipped yet: built the fixture store in {took:.0f} s)")
            stores.append(("fixture store (12 tiles, 6 models)", str(root)))
        synthetic = tmp / "synthetic"
        t0 = time.perf_counter()
        n = _store_benchmark_module().build_store(synthetic, args.rows)
        print(f"(wrote {n:,} synthetic rows in {time.perf_counter() - t0:.1f} s)")
        stores.append((f"synthetic store ({n:,} rows)", str(synthetic)))

        first = render_overview(stores[0][1])
        print(f"first render in this process (page modules imported): {first:.2f} s")
        print(f"{'store':<40} {'cold (s)':>9} {'warm (s)':>9} {'cold max':>9}  goal < {GOAL_S:.0f} s")
        ok = True
        for name, query in stores:
            res = measure(name, query, args.repeats)
            ok &= res["cold"] < GOAL_S
            print(f"{name:<40} {res['cold']:>9.2f} {res['warm']:>9.2f} {res['cold_max']:>9.2f}  "
                  f"{'ok' if res['cold'] < GOAL_S else 'SLOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
