"""Seeded synthetic result rows for the store and analysis tests (known means and gaps)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: metric -> (higher_better, synthetic-domain mean)
METRICS: dict[str, tuple[bool, float]] = {"psnr": (True, 25.0), "lpips": (False, 0.30), "sam": (False, 4.0)}


def result_rows(
    *,
    tiles: Sequence[str] | int = 20,
    methods: Sequence[str] = ("sr3",),
    regime: str = "synthetic-only",
    domains: Mapping[str, Mapping[str, float]] | None = None,
    metrics: Mapping[str, tuple[bool, float]] = METRICS,
    noise: float = 0.05,
    run_id: str = "r1",
    train_blocks: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Rows with value = mean · (1 + shift) + tile effect + noise per domain.

    ``domains`` maps a test domain to ``{metric: relative shift}`` (default: synthetic unshifted,
    simulated_cross_sensor 10 % worse for every metric, whatever its direction). Tile effects are
    shared across domains (the paired design), noise is independent.
    """
    rng = np.random.default_rng(seed)
    tile_ids = [f"t{i:03d}" for i in range(tiles)] if isinstance(tiles, int) else list(tiles)
    if domains is None:
        domains = {
            "synthetic": {m: 0.0 for m in metrics},
            "simulated_cross_sensor": {m: (-0.1 if hb else 0.1) for m, (hb, _) in metrics.items()},
        }
    effects = {m: rng.normal(0.0, 0.1 * base, len(tile_ids)) for m, (_, base) in metrics.items()}
    records = []
    for method in methods:
        for domain, shifts in domains.items():
            for metric, (hb, base) in metrics.items():
                values = base * (1 + shifts.get(metric, 0.0)) + effects[metric]
                values = values + rng.normal(0.0, noise * base, len(tile_ids))
                for tile, value in zip(tile_ids, values, strict=True):
                    records.append({
                        "run_id": run_id, "experiment": "test", "model": f"{method}/{regime}",
                        "method": method, "regime": regime, "train_domain": "synthetic",
                        "train_blocks": train_blocks, "test_domain": domain, "tile_id": tile,
                        "split": "test", "band": "all", "metric": metric, "value": float(value),
                        "higher_better": hb, "options": '{"samples": 4}',
                    })
    frame = pd.DataFrame.from_records(records)
    return frame.astype({"train_blocks": "Int64"})
