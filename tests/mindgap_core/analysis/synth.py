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


def block_of(tile: str, per_block: int) -> str:
    """The block of ``t<index>`` tiles when consecutive runs of ``per_block`` tiles share a block."""
    return f"b{int(tile[1:]) // per_block}"


def write_block_store(root, rows: pd.DataFrame, per_block: int, run_id: str = "r1"):
    """A results store of ``rows`` whose run record points (through an experiment YAML) at a manifest
    giving each tile its block (:func:`block_of`): the route :func:`mindgap_core.analysis.blocks.block_map`
    takes for real stores. Returns the store."""
    import yaml

    from mindgap_core.data.manifest import PairRecord, write_manifest
    from mindgap_core.store import ResultsStore, shard_key

    store = ResultsStore(root / "results")
    for (model, domain), part in rows.groupby(["model", "test_domain"]):
        store.write_shard(shard_key(run=run_id, model=model, domain=domain), part.assign(run_id=run_id))
    records = [PairRecord(
        pair_id=f"{domain}/{tile}", tile_id=tile, domain=domain, split="test",
        block_id=block_of(tile, per_block), row=0, col=i, lr_path=f"lr/{tile}.tif", hr_path=f"hr/{tile}.tif",
        scale=2, tile_size_hr=64,
        crs="EPSG:32633", hr_left=0.0, hr_bottom=0.0, hr_right=1.0, hr_top=1.0, dt_days=0.0, shift_x_lr=0.0,
        shift_y_lr=0.0, shift_corrected=False, valid_fraction=1.0, source_lr="test", source_hr="test",
        degradation="", params_json="{}", seed=0)
        for i, tile in enumerate(sorted(set(rows["tile_id"])))
        for domain in ("synthetic", "simulated_cross_sensor")]
    write_manifest(records, root / "manifest.parquet")
    spec = {"name": "test", "test_domains": [{"name": "synthetic", "manifest": "manifest.parquet"}]}
    (root / "experiment.yaml").write_text(yaml.safe_dump(spec))
    store.start_run(run_id, experiment="test", spec_hash="h", extra={"spec": "../experiment.yaml"})
    return store


def block_correlated_rows(*, blocks: int = 3, per_block: int = 4, methods: Sequence[str] = ("sr3", "bicubic"),
                          seed: int = 0) -> pd.DataFrame:
    """PSNR rows whose synthetic → cross-sensor difference has a strong shared effect per block (tiles of
    a block move together) and little tile noise: the tile-level CI would be far too narrow."""
    rng = np.random.default_rng(seed)
    tiles = [f"t{i:03d}" for i in range(blocks * per_block)]
    records = []
    for k, method in enumerate(methods):
        block_effect = np.repeat(rng.normal(-2.0 - k, 1.5, blocks), per_block)
        base = 30.0 + rng.normal(0.0, 1.0, len(tiles))
        target = base + block_effect + rng.normal(0.0, 0.05, len(tiles))
        for domain, values in (("synthetic", base), ("simulated_cross_sensor", target)):
            for tile, value in zip(tiles, values, strict=True):
                records.append({
                    "run_id": "r1", "experiment": "test", "model": f"{method}/synthetic", "method": method,
                    "regime": "none" if method == "bicubic" else "synthetic",
                    "train_domain": "none" if method == "bicubic" else "synthetic", "test_domain": domain,
                    "tile_id": tile, "split": "test", "band": "all", "metric": "psnr", "value": float(value),
                    "higher_better": True,
                })
    return pd.DataFrame.from_records(records)
