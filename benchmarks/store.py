"""Benchmark: the dashboard's gap-overview query (DuckDB over the results store) vs pandas groupby.

The DuckDB side calls :func:`mindgap_core.store.views.gap_overview`, the exact function the dashboard
uses, over a store written with :meth:`ResultsStore.write_shard` (one shard per model × test domain ×
batch of 64 tiles). The pandas side computes the same table (checked equal) with ``groupby`` on a
DataFrame already in memory, and also including ``pd.read_parquet`` of the shards.

    python benchmarks/store.py                 # 100k and 1M rows
    python benchmarks/store.py --rows 100000   # one size
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from mindgap_core.store import ResultsStore, shard_key, views

METHODS = ("sr3", "srdiff", "ldm_sr", "resshift", "sinsr", "bicubic", "regression")
REGIMES = ("synthetic-only", "real-only", "mixed", "pretrain-finetune")
DOMAINS = ("synthetic", "simulated_cross_sensor")
METRICS = {"psnr": True, "ssim": True, "cpsnr": True, "sam": False, "ergas": False, "lpips": False,
           "lpips_sat": False, "spectral": True}
BANDS = ("all", "blue", "green", "red", "nir")
TILES_PER_SHARD = 64
KEYS = ["method", "regime", "metric", "band", "aggregate", "train_blocks"]


def rows_per_tile() -> int:
    return len(METHODS) * len(REGIMES) * len(DOMAINS) * len(METRICS) * len(BANDS)


def build_store(root: Path, n_rows: int, seed: int = 0) -> int:
    """Write about ``n_rows`` synthetic result rows into a store at ``root``; returns the row count."""
    rng = np.random.default_rng(seed)
    n_tiles = max(1, round(n_rows / rows_per_tile()))
    store = ResultsStore(root)
    store.start_run("bench", experiment="benchmark", spec_hash="synthetic-benchmark")
    metric_names = np.array(list(METRICS))
    hb = np.array([METRICS[m] for m in metric_names])
    total = 0
    for method in METHODS:
        for regime in REGIMES:
            for domain in DOMAINS:
                for start in range(0, n_tiles, TILES_PER_SHARD):
                    stop = min(start + TILES_PER_SHARD, n_tiles)
                    tiles = np.array([f"t{t:05d}" for t in range(start, stop)])
                    axes = (np.arange(len(tiles)), np.arange(len(BANDS)), np.arange(len(metric_names)))
                    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
                    n = len(grid)
                    frame = pd.DataFrame({
                        "run_id": "bench", "model": f"{method}/{regime}", "method": method, "regime": regime,
                        "train_domain": "synthetic", "test_domain": domain, "tile_id": tiles[grid[:, 0]],
                        "split": "test", "band": np.array(BANDS)[grid[:, 1]],
                        "metric": metric_names[grid[:, 2]],
                        "value": rng.normal(20.0 if domain == "synthetic" else 18.0, 3.0, n),
                        "higher_better": hb[grid[:, 2]], "options": '{"samples": 4}',
                    })
                    key = shard_key(run="bench", model=f"{method}/{regime}", domain=domain, tiles=start)
                    store.write_shard(key, frame)
                    total += n
    return total


def pandas_overview(df: pd.DataFrame, source: str, target: str) -> pd.DataFrame:
    """The gap overview with pandas groupby (same definition as ``views.gap_overview``)."""
    d = df[(df["split"] == "test") & df["test_domain"].isin([source, target])]
    tiles = (
        d.groupby([*KEYS, "tile_id", "test_domain"], dropna=False, observed=True, sort=False)["value"]
        .mean().unstack("test_domain").dropna(subset=[source, target])
    )
    agg = tiles.groupby(level=KEYS, dropna=False, observed=True).agg(
        n_tiles=(source, "size"), mean_source=(source, "mean"), mean_target=(target, "mean")
    )
    hb = d.groupby(KEYS, dropna=False, observed=True)["higher_better"].all()
    agg = agg.join(hb)
    sign = np.where(agg["higher_better"], 1.0, -1.0)
    agg["gap"] = sign * (agg["mean_target"] - agg["mean_source"])
    agg["rel_gap_pct"] = 100.0 * agg["gap"] / agg["mean_source"].abs()
    return agg.reset_index()


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """Median wall and CPU (all threads) seconds of ``repeat`` calls after one warm-up, and the result.

    CPU time is reported because this machine's 2 cores are shared: wall time grows with the load.
    """
    result = fn()
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), result


def check_same(duck: pd.DataFrame, pand: pd.DataFrame) -> None:
    cols = ["n_tiles", "mean_source", "mean_target", "gap", "rel_gap_pct"]
    a = duck.sort_values(KEYS[:4]).reset_index(drop=True)
    b = pand.sort_values(KEYS[:4]).reset_index(drop=True)
    assert len(a) == len(b), (len(a), len(b))
    assert (a[KEYS[:4]].astype(str).to_numpy() == b[KEYS[:4]].astype(str).to_numpy()).all()
    np.testing.assert_allclose(a[cols].to_numpy(float), b[cols].to_numpy(float), rtol=1e-9, atol=1e-9)


def bench(n_rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mindgap-bench-") as tmp:
        t0 = time.perf_counter()
        total = build_store(Path(tmp), n_rows)
        build_s = time.perf_counter() - t0
        store = ResultsStore(tmp)
        n_shards = len(list(store.shards_dir.glob("*.parquet")))
        src, tgt = "synthetic", "simulated_cross_sensor"

        con = store.connect()
        duck = timed(lambda: views.gap_overview(con, source_domain=src, target_domain=tgt), repeat)
        mcon = store.connect(materialize=True)
        mat = timed(lambda: views.gap_overview(mcon, source_domain=src, target_domain=tgt), repeat)

        df = pd.read_parquet(store.shards_dir)
        pand = timed(lambda: pandas_overview(df, src, tgt), repeat)
        pand_io = timed(
            lambda: pandas_overview(pd.read_parquet(store.shards_dir), src, tgt), max(1, repeat // 2)
        )
        check_same(duck[2], pand[2])
        load = os.getloadavg()[0]
        print(f"\n{total:,} rows in {n_shards} shards (written in {build_s:.1f} s), {len(duck[2])} gap rows, "
              f"load average {load:.1f} on {os.cpu_count()} cores")
        print(f"  {'':55s} {'wall s':>8s} {'cpu s':>8s}")
        for label, (wall, cpu, _) in (
            ("duckdb gap_overview over Parquet shards (dashboard)", duck),
            ("duckdb gap_overview, materialized in-memory tables", mat),
            ("pandas groupby, DataFrame already in memory", pand),
            ("pandas read_parquet + groupby", pand_io),
        ):
            print(f"  {label:55s} {wall:8.3f} {cpu:8.3f}")
        print(f"  {'ratio pandas(in memory) / duckdb(over shards)':55s} {pand[0] / duck[0]:7.2f}x "
              f"{pand[1] / duck[1]:7.2f}x")
        print(f"  {'ratio pandas(read+groupby) / duckdb(over shards)':55s} {pand_io[0] / duck[0]:7.2f}x "
              f"{pand_io[1] / duck[1]:7.2f}x")
        con.close()
        mcon.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="row counts (default: 100000 and 1000000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions (median reported)")
    args = parser.parse_args()
    import duckdb

    print(f"duckdb {duckdb.__version__}, pandas {pd.__version__}; "
          "goal: < 0.5 s at 1M rows and faster than pandas")
    for n in args.rows or [100_000, 1_000_000]:
        bench(n, args.repeat)


if __name__ == "__main__":
    main()
