"""Diversity at a fixed data size: the design, the nested tile selections, a real (tiny) training of the
series, and the analysis reading each model's number of training pairs back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mindgap_core.cli import main
from mindgap_core.data.manifest import read_manifest, resolve
from mindgap_core.errors import ConfigError
from mindgap_core.train.scaling import FixedSizeRun, fixed_size_design, write_subset_manifest
from mindgap_core.train.trainer import TrainOptions
from tests.fixtures.experiments import DEMO_MANIFEST


def test_design_separates_blocks_from_tiles() -> None:
    design = fixed_size_design(7, 4)
    assert [(r.blocks, r.tiles) for r in design] == [(1, 4), (2, 4), (4, 4), (4, 8), (4, 16)]
    diversity = [r for r in design if "diversity" in r.arms]
    size = [r for r in design if "size" in r.arms]
    assert {r.tiles for r in diversity} == {4} and len({r.blocks for r in diversity}) == 3
    assert {r.blocks for r in size} == {4} and [r.tiles for r in size] == [4, 8, 16]
    three = {(r.blocks, r.tiles_per_block) for r in fixed_size_design(3, 6)}
    assert three == {(1, 4), (2, 2), (2, 1), (2, 4)}
    with pytest.raises(ConfigError, match="needs >= 2 train blocks of >= 2 tiles"):
        fixed_size_design(6, 1)


def test_subset_manifests_pick_m_tiles_per_block_nested(tmp_path: Path) -> None:
    opts = TrainOptions(method="regression", regime="cross_sensor", manifest=DEMO_MANIFEST, out=tmp_path)
    folder = tmp_path / "m"
    small = read_manifest(write_subset_manifest(opts, FixedSizeRun(2, 1, ("size",)), folder / "a.parquet"))
    large = read_manifest(write_subset_manifest(opts, FixedSizeRun(2, 2, ("size",)), folder / "b.parquet"))
    assert (large["split"] == "train").all()
    assert set(large["domain"]) == {"synthetic", "simulated_cross_sensor"}
    assert large.groupby("block_id")["tile_id"].nunique().to_dict() == {"b0_0": 2, "b0_2": 2}
    assert set(small["tile_id"]) < set(large["tile_id"])  # nested: smaller selections inside larger ones
    for rel in large["lr_path"]:
        assert resolve(tmp_path / "m" / "b.parquet", rel).is_file()  # paths rebased to the new folder
    with pytest.raises(ConfigError, match="fewer than 8 train tiles"):
        write_subset_manifest(opts, FixedSizeRun(1, 8, ("size",)), tmp_path / "m" / "c.parquet")


def test_fixed_size_series_trains_and_the_analysis_reads_its_design(tmp_path: Path) -> None:
    from mindgap_core.analysis.scaling import scaling_design
    from mindgap_core.store import ResultsStore

    out = tmp_path / "series"
    code = main(["train", "--method", "regression", "--regime", "cross_sensor", "--data", str(DEMO_MANIFEST),
                 "--out", str(out), "--steps", "1", "--config", "tiny", "--batch-size", "2",
                 "--fixed-size-series"])
    assert code == 0
    summary = json.loads((out / "scaling.json").read_text())
    runs = {(r["blocks"], r["tiles"]): r for r in summary["runs"]}
    assert set(runs) == {(1, 4), (2, 4), (4, 4), (4, 8), (4, 16)}
    assert runs[(4, 4)]["arms"] == ["diversity", "size"]
    models = []
    for (k, n), run in runs.items():
        info = json.loads((Path(run["out"]) / "training.json").read_text())
        assert info["blocks"] == k and len(info["train_blocks"]) == k and info["n_train_pairs"] == n
        assert info["train_domains"] == ["simulated_cross_sensor"]
        models.append({"name": f"scaling_fixed/k{k}n{n}", "checkpoint": run["out"]})
    domains = [{"name": "synthetic", "manifest": str(DEMO_MANIFEST)}]
    spec = {"name": "s", "test_domains": domains, "models": models}
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(spec))
    store = ResultsStore(tmp_path / "results")
    store.start_run("s-1", experiment="s", spec_hash="h", extra={"spec": "../experiment.yaml"})
    assert scaling_design(store) == {f"scaling_fixed/k{k}n{n}": n for k, n in runs}
