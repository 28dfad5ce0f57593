"""A small resumable writer loop, run as a subprocess by test_crash_resume.py and killed with SIGKILL.

    python crash_writer.py ROOT --shards N [--sleep S] [--stall-at I]

It is the pattern the ``evaluate`` command follows: start (or resume) the run, skip every unit of
work whose shard exists, compute and write the others. ``--stall-at I`` hangs inside the write of
shard I, after its temporary file is complete but before the rename (to kill it exactly there).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from mindgap_core.store import ResultsStore, shard_key  # noqa: E402

ROWS_PER_SHARD = 3000


def unit_rows(i: int) -> pd.DataFrame:
    """The rows of unit of work ``i``: deterministic (seeded by ``i``), as a recomputation would be."""
    rng = np.random.default_rng(i)
    n_tiles = ROWS_PER_SHARD // 6
    tiles = np.repeat([f"b{i:02d}t{j:03d}" for j in range(n_tiles)], 6)
    metrics = np.tile(["psnr", "ssim", "lpips"], 2 * n_tiles)
    domains = np.tile(np.repeat(["synthetic", "simulated_cross_sensor"], 3), n_tiles)
    return pd.DataFrame({
        "run_id": "crash", "model": "sr3/synthetic-only", "method": "sr3", "regime": "synthetic-only",
        "train_domain": "synthetic", "test_domain": domains, "tile_id": tiles, "split": "test", "band": "all",
        "metric": metrics, "value": rng.normal(20.0, 3.0, len(tiles)), "higher_better": metrics != "lpips",
        "options": f'{{"samples": 4, "seed": {i}}}',
    })


def unit_conditions(i: int) -> pd.DataFrame:
    rng = np.random.default_rng(1000 + i)
    tiles = [f"b{i:02d}t{j:03d}" for j in range(ROWS_PER_SHARD // 6)]
    return pd.DataFrame({
        "tile_id": tiles, "test_domain": "simulated_cross_sensor",
        "dt_days": rng.uniform(0, 30, len(tiles)), "shift_px": rng.uniform(0, 1, len(tiles)),
    })


def stall_inside_writes() -> None:
    """Make the next Parquet write hang after finishing its temporary file (before the rename)."""
    import pyarrow.parquet as pq

    real = pq.write_table

    def write_then_hang(table, where, **kwargs):
        real(table, where, **kwargs)
        print(f"STALLED {where}", flush=True)
        time.sleep(3600)

    pq.write_table = write_then_hang


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--shards", type=int, default=12)
    parser.add_argument("--sleep", type=float, default=0.02)
    parser.add_argument("--stall-at", type=int, default=-1)
    args = parser.parse_args()
    store = ResultsStore(args.root)
    store.start_run("crash", experiment="crash-test", spec_hash="spec-1")
    for i in range(args.shards):
        key = shard_key(run="crash", model="sr3/synthetic-only", batch=i)
        if store.has_shard(key):
            continue
        rows = unit_rows(i)
        time.sleep(args.sleep)  # "compute"
        if not store.has_conditions(key):
            store.write_conditions(key, unit_conditions(i))
        if i == args.stall_at:
            stall_inside_writes()
        store.write_shard(key, rows)
        print(f"WROTE {i}", flush=True)
    store.finish_run("crash")
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
