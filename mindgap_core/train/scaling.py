"""Diversity scaling (science.md, claim 4): the same step budget on 1, 2, 4, ... spatial blocks.

Run ``K`` trains on the first ``K`` blocks (natural ``block_id`` order) of the regime's train rows,
into ``<out>/blocks-KKK``; a ``scaling.json`` in ``<out>`` lists the runs when the series is done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from mindgap_core.errors import ConfigError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.train.trainer import TrainOptions, TrainResult, train
from mindgap_core.types import ProgressFn, no_progress

SCALING_JSON = "scaling.json"


def scaling_counts(n_blocks: int) -> list[int]:
    """1, 2, 4, ... up to ``n_blocks``, plus ``n_blocks`` itself (all the data) when not a power of 2."""
    if n_blocks < 1:
        raise ConfigError("diversity scaling needs at least one training block")
    counts = []
    k = 1
    while k <= n_blocks:
        counts.append(k)
        k *= 2
    if counts[-1] != n_blocks:
        counts.append(n_blocks)
    return counts


def available_blocks(opts: TrainOptions) -> tuple[str, ...]:
    """The train blocks that ``opts``'s regime selects from its manifest."""
    from mindgap_core.data.manifest import read_manifest
    from mindgap_core.train.regimes import select_training_rows

    sel = select_training_rows(
        read_manifest(opts.manifest), opts.regime, source=opts.manifest, mix_ratio=opts.mix_ratio,
        cross_domain=opts.cross_domain,
    )
    return sel.blocks


def run_dir(out: Path, blocks: int) -> Path:
    """Output folder of the run on ``blocks`` blocks."""
    return Path(out) / f"blocks-{blocks:03d}"


def run_scaling_series(
    opts: TrainOptions, counts: Sequence[int] | None = None, on_progress: ProgressFn = no_progress,
) -> list[TrainResult]:
    """Train ``opts`` once per block count (default :func:`scaling_counts`), same steps and seed."""
    if opts.blocks is not None:
        raise ConfigError("a scaling series chooses the block counts itself; drop --blocks")
    counts = list(counts) if counts is not None else scaling_counts(len(available_blocks(opts)))
    results = []
    for k in counts:
        results.append(train(replace(opts, blocks=k, out=run_dir(opts.out, k)), on_progress=on_progress))
    summary = {
        "method": opts.method, "regime": opts.regime, "steps": opts.steps, "seed": opts.seed,
        "runs": [{"blocks": k, "out": str(r.out), "final_loss": r.final_loss, "wall_s": r.wall_s}
                 for k, r in zip(counts, results, strict=True)],
    }
    with atomic_path(Path(opts.out) / SCALING_JSON) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return results


__all__ = ["SCALING_JSON", "available_blocks", "run_dir", "run_scaling_series", "scaling_counts"]
