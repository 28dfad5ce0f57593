"""LR -> LR adapters: known transforms undone, round trips, seeded training, the pipeline in experiments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mindgap_core.adapters.base import AdapterPairs
from mindgap_core.adapters.harmoniser import Harmoniser
from mindgap_core.adapters.learned import train_learned_adapter
from mindgap_core.adapters.registry import load_adapter
from mindgap_core.attribution.remedies import remedy_table, training_minutes
from mindgap_core.cli import main
from mindgap_core.data.coregister import apply_shift
from mindgap_core.errors import InputError
from mindgap_core.experiments.runner import run_experiment
from mindgap_core.experiments.spec import load_experiment
from tests.fixtures.experiments import DEMO_MANIFEST, write_experiment


@pytest.fixture(scope="module")
def demo_pairs() -> AdapterPairs:
    from mindgap_core.adapters.base import load_adapter_pairs

    return load_adapter_pairs(DEMO_MANIFEST, "simulated_cross_sensor", "synthetic", "train")


def _pairs(source: torch.Tensor, like: AdapterPairs) -> AdapterPairs:
    return AdapterPairs(source.float(), like.target, like.hr, like.tile_ids, like.scale)


def _mae(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())


def test_harmoniser_undoes_a_radiometric_transform_and_a_blur(demo_pairs: AdapterPairs) -> None:
    target = demo_pairs.target
    box = F.avg_pool2d(F.pad(target, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    blurred = 0.6 * target + 0.4 * box  # an invertible blur (response 0.47 at Nyquist)
    source = 1.15 * blurred + 0.012
    harmoniser = Harmoniser.fit(_pairs(source, demo_pairs))
    adapted = harmoniser.adapt(source)
    assert adapted.shape == source.shape
    assert _mae(adapted, target) < 0.25 * _mae(source, target)
    radiometry_only = Harmoniser(src_quantiles=harmoniser.src_quantiles,
                                 tgt_quantiles=harmoniser.tgt_quantiles,
                                 filter_gain=np.ones_like(harmoniser.filter_gain)).adapt(source)
    assert _mae(adapted, target) < 0.8 * _mae(radiometry_only, target)  # the MTF matching sharpens
    assert harmoniser.filter_gain[:, -4:].mean() > 1.2


def test_coregistering_harmoniser_uses_the_reference_geometry(demo_pairs: AdapterPairs) -> None:
    area = F.avg_pool2d(demo_pairs.hr, demo_pairs.scale)
    shifted = torch.from_numpy(np.stack([apply_shift(t.numpy(), 0.45, -0.35) for t in area])).float()
    pairs = AdapterPairs(shifted, area, demo_pairs.hr, demo_pairs.tile_ids, demo_pairs.scale)
    blind = Harmoniser.fit(pairs)
    coreg = Harmoniser.fit(pairs, coregister=True)
    assert coreg.uses_reference and not blind.uses_reference
    inner = (slice(None), slice(None), slice(3, -3), slice(3, -3))
    err_blind = _mae(blind.adapt(shifted)[inner], area[inner])
    err_coreg = _mae(coreg.adapt(shifted, demo_pairs.hr)[inner], area[inner])
    assert err_coreg < 0.5 * err_blind
    with pytest.raises(ValueError, match="HR reference"):
        coreg.adapt(shifted)


def test_learned_adapter_trains_reproducibly_and_round_trips(demo_pairs: AdapterPairs,
                                                            tmp_path: Path) -> None:
    source = 0.8 * demo_pairs.target + 0.02
    pairs = _pairs(source, demo_pairs)
    first, rows, summary = train_learned_adapter(pairs, pairs, steps=150, batch_size=8, features=8, blocks=1)
    second, _, _ = train_learned_adapter(pairs, pairs, steps=150, batch_size=8, features=8, blocks=1)
    for a, b in zip(first.network.parameters(), second.network.parameters(), strict=True):
        assert torch.equal(a, b)
    assert summary["val_l1_after"] < 0.3 * summary["val_l1_before"]
    assert rows[-1][1] < rows[0][1] and len(rows) == 150
    first.save(tmp_path / "learned")
    loaded = load_adapter(tmp_path / "learned")
    assert torch.equal(loaded.adapt(source[:3]), first.adapt(source[:3]))


def test_harmoniser_round_trip_and_bad_folders(demo_pairs: AdapterPairs, tmp_path: Path) -> None:
    harmoniser = Harmoniser.fit(demo_pairs, coregister=True)
    harmoniser.save(tmp_path / "h")
    loaded = load_adapter(tmp_path / "h")
    x, hr = demo_pairs.source[:2], demo_pairs.hr[:2]
    assert torch.equal(loaded.adapt(x, hr), harmoniser.adapt(x, hr))
    with pytest.raises(InputError, match="not an adapter folder"):
        load_adapter(tmp_path)
    with pytest.raises(InputError, match="takes"):
        loaded.adapt(x[:, :3])
    (tmp_path / "h" / "harmoniser.json").write_text("{")
    with pytest.raises(InputError, match="harmoniser statistics"):
        load_adapter(tmp_path / "h")


def test_adapter_cli_writes_a_loadable_adapter_and_rejects_bad_input(tmp_path: Path, capsys) -> None:
    out = tmp_path / "harm"
    assert main(["adapter", "--kind", "harmoniser", "--data", str(DEMO_MANIFEST), "--out", str(out)]) == 0
    assert "validation L1" in capsys.readouterr().out
    assert load_adapter(out).kind == "harmoniser"
    assert (out / "training.json").is_file()
    bad = [["--kind", "learned", "--coregister"], ["--kind", "harmoniser", "--source-domain", "nope"]]
    for extra in bad:
        target = tmp_path / "bad"
        assert main(["adapter", "--data", str(DEMO_MANIFEST), "--out", str(target), *extra]) == 2
        assert not target.exists()
    assert main(["adapter", "--kind", "harmoniser", "--data", str(tmp_path / "missing.parquet"),
                 "--out", str(tmp_path / "x")]) == 2


def test_adapter_models_run_in_experiments_and_feed_the_remedy_table(tmp_path: Path, capsys) -> None:
    assert main(["adapter", "--kind", "harmoniser", "--data", str(DEMO_MANIFEST), "--out",
                 str(tmp_path / "harm"), "--coregister"]) == 0
    write_experiment(tmp_path)  # creates the random regression checkpoint the spec below names
    path = write_experiment(tmp_path, metrics=["psnr"], models=[
        {"name": "regression/random", "checkpoint": str(tmp_path / "regression_random"),
         "regime": "synthetic"},
        {"name": "harm+regression/random", "checkpoint": str(tmp_path / "regression_random"),
         "regime": "synthetic", "adapter": str(tmp_path / "harm")},
    ])
    experiment = load_experiment(path)
    assert experiment.models[1].regime == "synthetic+harmoniser_coreg"
    # an adapter pipeline is scored only on the domain its adapter was made for (its training.json)
    assert experiment.models[1].test_domains == ("simulated_cross_sensor",)
    assert experiment.models[0].test_domains is None
    run_experiment(experiment, tmp_path / "results", device="cpu")
    from mindgap_core.store.results import ResultsStore

    scored = ResultsStore(tmp_path / "results").rows(columns=["model", "test_domain"]).drop_duplicates()
    adapted_domains = set(scored.loc[scored["model"] == "harm+regression/random", "test_domain"])
    assert adapted_domains == {"simulated_cross_sensor"}
    table = remedy_table(tmp_path / "results", metric="psnr", n_boot=200,
                         train_minutes=training_minutes(path)).set_index("model")
    assert sorted(table.index) == ["harm+regression/random", "regression/random"]
    base, adapted = table.loc["regression/random"], table.loc["harm+regression/random"]
    assert base.delta == 0 and base.remedy.startswith("synthetic-trained")
    assert adapted.remedy == "harmoniser_coreg + synthetic-trained"
    assert np.isnan(adapted.gap) and base.verdict == "baseline"  # an adapter pipeline: no synthetic-input gap
    assert adapted.n_units == 3 and adapted.unit == "block"
    # delta = adapted − baseline on the cross-sensor domain, = difference of their target means
    assert adapted.delta == pytest.approx(adapted.mean_target - base.mean_target, abs=1e-9)
    assert adapted.delta_ci_low <= adapted.delta <= adapted.delta_ci_high
    assert np.isnan(base.train_minutes)  # the random checkpoint has no training record
    # the same numbers from the command line
    capsys.readouterr()
    assert main(["gap", "--results", str(tmp_path / "results"), "--remedies", "--metric", "psnr", "--csv",
                 "--n-boot", "200"]) == 0
    import io

    import pandas as pd

    printed = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index("model")
    assert printed.at["harm+regression/random", "delta"] == pytest.approx(adapted.delta)
    assert main(["gap", "--results", str(tmp_path / "results"), "--remedies", "--metric", "psnr"]) == 0
    assert "| psnr | regression | harm+regression/random | harmoniser_coreg + synthetic-trained |" in \
        capsys.readouterr().out
