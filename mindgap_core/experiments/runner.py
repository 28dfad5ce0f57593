"""Run an experiment into a results store: resumable, crash-safe, shardable across processes.

The matrix is cut into units of work (model × test domain × seed × batch of tiles), each with a stable
shard key. A unit writes its SR/uncertainty/metric-map COGs first and its result shard last, every file
atomically, so a unit either has its shard (done) or is redone from scratch on the next run: killing
the process at any moment (SIGKILL included) and rerunning the same command loses and duplicates
nothing. Under ``accelerate launch`` each rank takes every ``world``-th unit and writes its own shards;
DuckDB reads the union.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mindgap_core.data.manifest import read_manifest, resolve
from mindgap_core.experiments.spec import (
    RECALIBRATED_SUFFIX,
    Experiment,
    ModelEntry,
    TestDomain,
    recalibrated_name,
)
from mindgap_core.io import read_raster
from mindgap_core.metrics.engine import Evaluator, ScoreOptions
from mindgap_core.scoring import MapOptions, ScoredTile, score_pair, store_rows, write_rasters
from mindgap_core.store.results import ResultsStore, shard_key
from mindgap_core.types import GeoRaster, ProgressFn, no_progress


@dataclass(frozen=True)
class WorkUnit:
    """One model on one batch of one test domain with one seed."""

    model: ModelEntry
    domain: TestDomain
    seed: int
    batch: int
    tile_ids: tuple[str, ...]

    def key(self, run_id: str) -> str:
        return shard_key(run=run_id, model=self.model.name, domain=self.domain.name, seed=self.seed,
                         batch=self.batch)

    @property
    def generator_seed(self) -> int:
        """A seed that depends on the unit only (not on which process runs it, or in which order)."""
        text = f"{self.seed}|{self.model.name}|{self.domain.name}|{self.batch}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") % (2**63)


@dataclass(frozen=True)
class RunSummary:
    """What a call of :func:`run_experiment` did."""

    run_id: str
    units_total: int
    units_done_before: int
    units_run: int
    rank: int
    world: int


def domain_rows(domain: TestDomain, split: str) -> pd.DataFrame:
    """The manifest rows of a test domain, sorted by tile id."""
    table = read_manifest(domain.manifest)
    rows = table[(table["domain"] == domain.domain) & (table["split"] == split)]
    return rows.sort_values("tile_id").reset_index(drop=True)


def plan_units(experiment: Experiment) -> list[WorkUnit]:
    """Every unit of work of the experiment, in a fixed order."""
    units = []
    for domain in experiment.test_domains:
        tiles = tuple(domain_rows(domain, experiment.split)["tile_id"])
        batches = [tiles[i : i + experiment.batch_size] for i in range(0, len(tiles), experiment.batch_size)]
        for model in (m for m in experiment.models if m.scores(domain.name)):
            for seed in experiment.seeds:
                units.extend(WorkUnit(model, domain, seed, b, batch) for b, batch in enumerate(batches))
    return units


def _load(entry: ModelEntry, scale: int, device: str):
    from mindgap_core.models.registry import build_model, load_model

    if entry.checkpoint is None:
        model = build_model(entry.method, None, scale=scale).to(device)
    else:
        model = load_model(entry.checkpoint, device=device)
    if entry.adapter is None:
        return model
    from mindgap_core.adapters.pipeline import AdaptedSRModel
    from mindgap_core.adapters.registry import load_adapter

    return AdaptedSRModel(load_adapter(entry.adapter, device=device), model)


def _stack(paths: list[Path]) -> tuple[list[GeoRaster], np.ndarray]:
    rasters = [read_raster(p) for p in paths]
    return rasters, np.stack([r.array.astype(np.float32) for r in rasters])


def _conditions(rows: pd.DataFrame, hr: list[GeoRaster], domain: str) -> pd.DataFrame:
    """Per-tile conditions for the gap breakdowns."""
    records = []
    for (_, row), raster in zip(rows.iterrows(), hr, strict=True):
        nir, red = raster.band("nir").astype(np.float64), raster.band("red").astype(np.float64)
        ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
        params = json.loads(row["params_json"] or "{}")
        shift = float(np.hypot(row["shift_x_lr"], row["shift_y_lr"]))
        records.append({
            "tile_id": row["tile_id"], "test_domain": domain,
            "dt_days": float(row["dt_days"]) if np.isfinite(row["dt_days"]) else None,
            "brightness": float(raster.array.mean()), "ndvi_mean": float(ndvi.mean()),
            "veg_fraction": float((ndvi > 0.3).mean()), "shift_px": shift if np.isfinite(shift) else None,
            "simulator_params": json.dumps(params.get("parameters", {}), sort_keys=True),
        })
    return pd.DataFrame.from_records(records)


@dataclass(frozen=True)
class UnitSamples:
    """A unit's manifest rows, scale, LR and HR tiles, and its model's (tiles, samples, bands, H, W)
    samples."""

    rows: pd.DataFrame
    scale: int
    lr: list[GeoRaster]
    hr: list[GeoRaster]
    samples: torch.Tensor


class UnitRunner:
    """Runs units with a cache of the model currently loaded."""

    def __init__(self, experiment: Experiment, store: ResultsStore, run_id: str, device: str) -> None:
        self.experiment, self.store, self.run_id, self.device = experiment, store, run_id, device
        self.evaluator = Evaluator(list(experiment.metrics), ScoreOptions(hist_match=experiment.hist_match),
                                   device=device)
        self._calibration: Evaluator | None = None
        self._model_name: str | None = None
        self._model = None
        self._rows: dict[str, pd.DataFrame] = {}

    def rows_of(self, domain: TestDomain) -> pd.DataFrame:
        if domain.name not in self._rows:
            rows = domain_rows(domain, self.experiment.split)
            self._rows[domain.name] = rows.set_index("tile_id", drop=False)
        return self._rows[domain.name]

    def model(self, entry: ModelEntry, scale: int):
        if self._model_name != entry.name:
            self._model, self._model_name = _load(entry, scale, self.device), entry.name
        return self._model

    def steps(self, unit: WorkUnit) -> int | None:
        """Sampler steps of the unit's model: its own setting, else the experiment's, else its default."""
        return unit.model.steps if unit.model.steps is not None else self.experiment.steps

    def write_conditions(self, domain: TestDomain) -> None:
        key = shard_key(run=self.run_id, domain=domain.name)
        if self.store.has_conditions(key):
            return
        rows = self.rows_of(domain)
        hr = [read_raster(resolve(domain.manifest.parent, p)) for p in rows["hr_path"]]
        self.store.write_conditions(key, _conditions(rows, hr, domain.name))

    def _save_outputs(self, unit: WorkUnit, tile: ScoredTile) -> dict[str, str]:
        """Write one tile's SR mean, uncertainty and metric maps; their store-relative paths by kind."""
        rels = {kind: self.store.map_relpath(run_id=self.run_id, model=unit.model.name,
                                             test_domain=unit.domain.name, tile_id=tile.tile_id,
                                             kind=f"{kind}_seed{unit.seed}")
                for kind in tile.rasters()}
        # display products: 16-bit floats
        write_rasters(tile.rasters(), lambda kind: self.store.resolve(rels[kind]), half_float=True)
        return rels

    def sample(self, unit: WorkUnit) -> UnitSamples:
        """Read the unit's tiles and draw its model's samples (seeded by the unit alone)."""
        rows = self.rows_of(unit.domain).loc[list(unit.tile_ids)]
        root = unit.domain.manifest.parent
        scale = int(rows["scale"].iloc[0])
        lr_r, lr = _stack([resolve(root, p) for p in rows["lr_path"]])
        hr_r, hr = _stack([resolve(root, p) for p in rows["hr_path"]])
        model = self.model(unit.model, scale)
        lr_t = torch.from_numpy(lr).to(self.device)
        generator = torch.Generator(device=self.device).manual_seed(unit.generator_seed)
        # a co-registering harmoniser reads the HR tile's geometry (oracle co-registration, labelled so)
        uses_reference = getattr(model, "uses_reference", False)
        extra = {"reference_hr": torch.from_numpy(hr).to(self.device)} if uses_reference else {}
        with torch.no_grad():
            samples = model.sample(lr_t, num_samples=self.experiment.samples, steps=self.steps(unit),
                                   generator=generator, **extra)
        return UnitSamples(rows, scale, lr_r, hr_r, samples)

    def run(self, unit: WorkUnit) -> None:
        exp = self.experiment
        drawn = self.sample(unit)
        saving = exp.saves_outputs(unit.model.name)
        scored = score_pair(self.evaluator, drawn.hr, samples=drawn.samples, lr=drawn.lr,
                            tile_ids=unit.tile_ids, scale=drawn.scale, maps=exp.save_maps if saving else (),
                            map_options=MapOptions(device=self.device), tags={"model": unit.model.name})
        paths = {tile.tile_id: self._save_outputs(unit, tile) for tile in scored.tiles} if saving else {}
        m = unit.model
        fields = {"run_id": self.run_id, "experiment": exp.name, "model": m.name, "method": m.method,
                  "regime": m.regime, "train_domain": m.train_domain, "train_blocks": m.train_blocks,
                  "test_domain": unit.domain.name}
        split = drawn.rows["split"].astype(str).to_dict()
        options = {"samples": exp.samples, "steps": self.steps(unit), "seed": unit.seed}
        frames = [store_rows(scored.rows, fields=fields, split=split, options=options, paths=paths)]
        recalibration = self._recalibrated_rows(unit, drawn)
        if recalibration:
            frames.append(store_rows(recalibration, split=split, options=options, fields={
                **fields, "model": recalibrated_name(m.name), "regime": m.regime + RECALIBRATED_SUFFIX}))
        self.store.write_shard(unit.key(self.run_id), pd.concat(frames, ignore_index=True))

    def _recalibrated_rows(self, unit: WorkUnit, drawn: UnitSamples) -> tuple:
        """The calibration scores of the unit's samples with their spread scaled by the model's
        ``spread_scale`` (same mean, so only the calibration scores change); () when it has none."""
        from mindgap_core.metrics.registry import UNCERTAINTY_METRICS
        from mindgap_core.metrics.uncertainty import scale_spread

        wanted = [m for m in self.experiment.metrics if m in UNCERTAINTY_METRICS]
        if unit.model.spread_scale is None or not wanted:
            return ()
        if self._calibration is None:
            self._calibration = Evaluator(wanted, ScoreOptions(hist_match=self.experiment.hist_match),
                                          device=self.device)
        samples = scale_spread(torch.as_tensor(drawn.samples).float(), unit.model.spread_scale)
        return score_pair(self._calibration, drawn.hr, samples=samples, lr=drawn.lr, tile_ids=unit.tile_ids,
                          scale=drawn.scale).rows


def process_grid() -> tuple[int, int]:
    """(rank, world size) under ``accelerate launch`` / torchrun; (0, 1) otherwise."""
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    return state.process_index, state.num_processes


def run_experiment(
    experiment: Experiment, results: str | Path, *, device: str | None = None, rank: int = 0, world: int = 1,
    on_progress: ProgressFn = no_progress, after_unit: Callable[[WorkUnit], None] | None = None,
    run_extra: dict | None = None,
) -> RunSummary:
    """Run (or resume) every unit of ``experiment`` assigned to ``rank`` of ``world`` into ``results``.

    ``run_extra`` is recorded in the run's metadata (e.g. the attribution roles of its test domains).
    """
    device = device or experiment.device or ("cuda" if torch.cuda.is_available() else "cpu")
    store = ResultsStore(results)
    if world == 1:  # a single process is the only writer: a killed run's temp files are all stale
        store.clean_temp(older_than_s=0.0)
    run_id = experiment.run_id
    # the spec path relative to the store, so a copied or cloned store still finds its experiment
    spec = os.path.relpath(experiment.source, Path(results).resolve())
    store.start_run(run_id, experiment=experiment.name, spec_hash=experiment.spec_hash,
                    extra={"spec": spec, **(run_extra or {})})
    units = plan_units(experiment)
    mine = units[rank::world]
    done = store.completed_keys()
    todo = [u for u in mine if u.key(run_id) not in done]
    runner = UnitRunner(experiment, store, run_id, device)
    for domain in experiment.test_domains[rank::world]:
        runner.write_conditions(domain)
    # group by model so each model is loaded once
    todo.sort(key=lambda u: [m.name for m in experiment.models].index(u.model.name))
    for i, unit in enumerate(todo, start=1):
        runner.run(unit)
        if after_unit is not None:
            after_unit(unit)
        on_progress(i, len(todo))
    if world == 1 and len(store.completed_keys() & {u.key(run_id) for u in units}) == len(units):
        store.finish_run(run_id)
    return RunSummary(run_id, len(units), len(mine) - len(todo), len(todo), rank, world)
