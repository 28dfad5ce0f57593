"""Test domains for gap attribution: the simulated cross-sensor domain re-drawn with effects switched.

For a simulated target domain (every tile's simulator config, seed and tile id are in the manifest's
``params_json``), each variant re-runs the simulator on the same HR tiles with the **same per-tile
parameters** (each effect draws from its own random stream, so switching one effect off leaves the
others' values unchanged). The players are the attributed effects (plus one joint player for effects
on in the target but not attributed, :class:`~mindgap_core.attribution.names.Players`):

* ``none``: every effect off (the simulator's plain area downsampling);
* ``only-<effect>``: that effect alone;
* ``without-<effect>``: every effect of the target but that one;
* with ``shapley=True``, every other coalition too (``set-<effects>``): 2^n − 1 variants in all, the
  full coalition being the target domain itself.

Only effects that are on in the target domain are attributed. The variant tiles and their manifest are
written under one folder, deterministically; existing identical files are kept (the generation is
resumable and idempotent).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mindgap_core.attribution.names import Players, Variant
from mindgap_core.data.manifest import PairRecord, read_manifest, resolve, write_manifest
from mindgap_core.data.pairs import pair_shift
from mindgap_core.degrade.apply import SIMULATED_METHOD, degrade_raster
from mindgap_core.degrade.sensor_config import EFFECTS, SimulatorConfig, check_effects
from mindgap_core.errors import InputError
from mindgap_core.io import read_raster, write_cog
from mindgap_core.types import ProgressFn, no_progress

SIMULATED_LABEL = "SIMULATED"


def players(target_effects: Sequence[str], effects: Sequence[str] | None = None) -> Players:
    """The players that attribute ``effects`` (default: all of ``target_effects``) of a target domain
    whose simulator has ``target_effects`` on."""
    on = tuple(e for e in EFFECTS if e in set(check_effects(target_effects)))
    chosen = on if effects is None else check_effects(effects)
    absent = [e for e in chosen if e not in on]
    if absent:
        raise InputError("attribution", f"effects {absent} are off in the target domain (on: {list(on)})")
    chosen = tuple(e for e in EFFECTS if e in chosen)
    return Players(chosen, tuple(e for e in on if e not in chosen))


def variants(target_effects: Sequence[str], effects: Sequence[str] | None = None, *,
             shapley: bool = False) -> tuple[Variant, ...]:
    """The variant domains to simulate (see the module docstring): ``none``, ``only-*``, ``without-*``,
    and with ``shapley`` every other coalition short of the target."""
    game = players(target_effects, effects)
    if shapley:
        found = [game.variant(c) for c in game.coalitions()]
        return tuple(v for v in found if v is not None)
    out = [game.variant(())]
    out += [game.variant((e,)) for e in game.effects]
    out += [game.variant([p for p in game.names if p != e]) for e in game.effects]
    return tuple(dict.fromkeys(v for v in out if v is not None))


def target_simulation(rows: pd.DataFrame, manifest: Path) -> tuple[SimulatorConfig, int]:
    """The simulator config and seed shared by every row of a simulated domain (one error otherwise)."""
    configs, seeds = set(), set()
    for pair_id, params_json in zip(rows["pair_id"], rows["params_json"], strict=True):
        record = json.loads(params_json or "{}")
        if record.get("method") != SIMULATED_METHOD or "config" not in record:
            raise InputError(manifest, f"pair {pair_id!r} is not a {SIMULATED_METHOD} pair with a recorded "
                                       "simulator config: attribution needs a simulated target domain")
        configs.add(json.dumps(record["config"], sort_keys=True))
        seeds.add(int(record["seed"]))
    if len(configs) != 1 or len(seeds) != 1:
        raise InputError(manifest, "the target domain's tiles were simulated with different configs or seeds")
    return SimulatorConfig.from_dict(json.loads(configs.pop())), seeds.pop()


def _variant_config(config: SimulatorConfig, variant: Variant) -> SimulatorConfig:
    return config.with_enabled(EFFECTS, False).with_enabled(variant.effects_on, True)


def write_variant_domains(
    manifest: str | Path, domain: str, split: str, out_dir: str | Path,
    effects: Sequence[str] | None = None, on_progress: ProgressFn = no_progress, *, shapley: bool = False,
) -> tuple[Path, tuple[Variant, ...], Players]:
    """Simulate every variant of ``domain``'s ``split`` tiles into ``out_dir``; (manifest path, variants).

    The new manifest holds one row per variant × tile, with HR paths pointing at the original HR tiles
    (relative to the new manifest) and the variant's simulator record in ``params_json``. Each HR tile is
    read once for all its variants.
    """
    manifest, out_dir = Path(manifest), Path(out_dir)
    table = read_manifest(manifest)
    rows = table[(table["domain"] == domain) & (table["split"] == split)].sort_values("tile_id")
    if rows.empty:
        raise InputError(manifest, f"no {split!r} rows of domain {domain!r}")
    config, seed = target_simulation(rows, manifest)
    chosen = variants(config.enabled_effects, effects, shapley=shapley)
    configs = [_variant_config(config, v) for v in chosen]
    records: list[PairRecord] = []
    total = len(chosen) * len(rows)
    for j, row in enumerate(rows.itertuples(index=False)):
        hr_file = resolve(manifest, row.hr_path)
        hr = read_raster(hr_file)
        for i, (variant, cfg) in enumerate(zip(chosen, configs, strict=True)):
            lr, record = degrade_raster(hr, SIMULATED_METHOD, int(row.scale), seed=seed, config=cfg,
                                        tile_id=row.tile_id, source=hr_file)
            lr_rel = f"tiles/{variant.domain}/{row.tile_id}.tif"
            write_cog(lr.replace(tags={**lr.tags, "mindgap_label": SIMULATED_LABEL}), out_dir / lr_rel)
            shift = pair_shift(lr, hr, hr.valid, int(row.scale))
            values = {**row._asdict(), "pair_id": f"{variant.domain}/{row.tile_id}", "domain": variant.domain,
                      "lr_path": lr_rel, "hr_path": os.path.relpath(hr_file, out_dir),
                      "source_lr": f"simulated attribution variant {variant.domain}",
                      "shift_x_lr": float(shift.dx), "shift_y_lr": float(shift.dy),
                      "params_json": json.dumps(record, sort_keys=True)}
            records.append(PairRecord(**values))
            on_progress(j * len(chosen) + i + 1, total)
    game = players(config.enabled_effects, effects)
    return write_manifest(records, out_dir / "manifest.parquet"), chosen, game
