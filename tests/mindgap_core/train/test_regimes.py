"""Regime -> rows: domains, blocks, the mixed ratio, and refusing ambiguous manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mindgap_core.data.manifest import read_manifest
from mindgap_core.errors import ConfigError, InputError
from mindgap_core.train.regimes import REGIMES, natural_key, select_training_rows


@pytest.fixture(scope="module")
def manifest(tiny_manifest: Path) -> pd.DataFrame:
    return read_manifest(tiny_manifest)


def test_each_regime_reads_its_domains_from_the_train_split(manifest: pd.DataFrame) -> None:
    expected = {
        "synthetic": ("synthetic",),
        "cross_sensor": ("simulated_cross_sensor",),
        "mixed": ("synthetic", "simulated_cross_sensor"),
        "finetune": ("simulated_cross_sensor",),
    }
    assert set(expected) == set(REGIMES)
    for regime, domains in expected.items():
        sel = select_training_rows(manifest, regime, source="m")
        assert sel.domains == domains
        assert set(sel.rows["domain"]) == set(domains)
        assert set(sel.rows["split"]) == {"train"}
        assert len(sel.rows) == 6 * len(domains)
        assert sel.blocks == ("b0_0", "b0_1", "b0_2", "b1_0", "b1_1", "b1_2")


def test_mixed_ratio_sets_the_sampling_weights(manifest: pd.DataFrame) -> None:
    sel = select_training_rows(manifest, "mixed", source="m", mix_ratio=0.25)
    cross = (sel.rows["domain"] != "synthetic").to_numpy()
    assert sel.weights is not None and sel.weights.sum() == pytest.approx(1.0)
    assert sel.weights[cross].sum() == pytest.approx(0.25)
    assert select_training_rows(manifest, "synthetic", source="m").weights is None
    with pytest.raises(ConfigError, match="mix-ratio"):
        select_training_rows(manifest, "mixed", source="m", mix_ratio=1.0)


def test_blocks_keep_the_first_k_blocks(manifest: pd.DataFrame) -> None:
    sel = select_training_rows(manifest, "cross_sensor", source="m", blocks=2)
    assert sel.blocks == ("b0_0", "b0_1")
    assert sorted(sel.rows["tile_id"]) == ["r0c0", "r0c1"]
    with pytest.raises(ConfigError, match="only 6 blocks"):
        select_training_rows(manifest, "cross_sensor", source="m", blocks=7)
    assert sorted(["b2_10", "b2_9", "b10_1"], key=natural_key) == ["b2_9", "b2_10", "b10_1"]


def test_cross_sensor_domain_is_never_chosen_silently(manifest: pd.DataFrame) -> None:
    real = manifest[manifest["domain"] == "simulated_cross_sensor"].assign(
        domain="real_cross_sensor", pair_id=lambda d: "real/" + d["tile_id"])
    both = pd.concat([manifest, real], ignore_index=True)
    with pytest.raises(ConfigError, match="--cross-domain"):
        select_training_rows(both, "cross_sensor", source="m")
    sel = select_training_rows(both, "cross_sensor", source="m", cross_domain="real_cross_sensor")
    assert sel.domains == ("real_cross_sensor",)
    only_synthetic = manifest[manifest["domain"] == "synthetic"]
    with pytest.raises(InputError, match="no cross-sensor pairs"):
        select_training_rows(only_synthetic, "finetune", source="m")
    with pytest.raises(ConfigError, match="unknown regime"):
        select_training_rows(manifest, "semi", source="m")
    assert np.all(select_training_rows(both, "synthetic", source="m").rows["domain"] == "synthetic")
