"""Gap attribution: exact decomposition, known answers on synthetic scores and on a toy simulator setup."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mindgap_core.attribution.decompose import AttributionDomains, attribute_scores
from mindgap_core.attribution.domains import variants, write_variant_domains
from mindgap_core.cli import main
from mindgap_core.data.manifest import PairRecord, read_manifest, read_records, resolve, write_manifest
from mindgap_core.degrade.apply import SIMULATED_METHOD, degrade_raster
from mindgap_core.degrade.sensor_config import (
    MisregistrationConfig,
    RadiometricConfig,
    SensorNoiseConfig,
    SimulatorConfig,
    TemporalConfig,
)
from mindgap_core.errors import InputError
from mindgap_core.io import read_raster, write_cog
from tests.fixtures.experiments import DEMO_MANIFEST

EFFECTS3 = ("mtf", "temporal", "noise")


def _scores(effect_sizes: dict[str, float], interaction: float, n: int = 40, noise: float = 0.05,
            higher_better: bool = True) -> tuple[pd.DataFrame, AttributionDomains]:
    """Per-tile PSNR-like scores: reference 30, 'none' −0.5, each effect adds its size, and the full
    target adds ``interaction`` on top of the sum (tile noise on every domain)."""
    rng = np.random.default_rng(0)
    domains = AttributionDomains("synthetic", "simulated", tuple(effect_sizes))
    base = 30 + rng.normal(0, 2, n)  # tile difficulty, shared by all domains (pairing matters)
    mean = {"synthetic": 0.0, domains.none: -0.5, "simulated": -0.5 + sum(effect_sizes.values()) + interaction}
    for e, size in effect_sizes.items():
        mean[domains.only(e)] = -0.5 + size
        mean[domains.without(e)] = mean["simulated"] - size
    sign = 1.0 if higher_better else -1.0
    rows = [{"model": "m", "method": "bicubic", "regime": "none", "metric": "psnr", "test_domain": d,
             "tile_id": f"t{i:02d}", "value": sign * (base[i] + mu + rng.normal(0, noise)),
             "higher_better": higher_better}
            for d, mu in mean.items() for i in range(n)]
    return pd.DataFrame(rows), domains


@pytest.mark.parametrize("higher_better", [True, False])
def test_decomposition_is_exact_and_recovers_known_effects(higher_better: bool) -> None:
    sizes = {"mtf": -2.0, "temporal": 0.0, "noise": -0.7}
    frame, domains = _scores(sizes, interaction=-0.4, higher_better=higher_better)
    table = attribute_scores(frame, domains, n_boot=1000).set_index("term")
    value = table["value"]
    parts = value["baseline"] + sum(value[f"single:{e}"] for e in sizes) + value["interaction"]
    assert value["total"] == pytest.approx(parts, abs=1e-12)
    assert value["total"] == pytest.approx(-0.5 - 2.7 - 0.4, abs=0.05)
    for e, size in sizes.items():
        single, loo = table.loc[f"single:{e}"], table.loc[f"leave_one_out:{e}"]
        assert single.value == pytest.approx(size, abs=0.05)
        assert loo.value == pytest.approx(size, abs=0.05)  # the interaction sits in the full target only
        excludes_zero = single.ci_low > 0 or single.ci_high < 0
        assert excludes_zero == (size != 0), single
    inter = table.loc["interaction"]
    assert inter.ci_high < 0 and inter.value == pytest.approx(-0.4, abs=0.05)
    assert table.loc["single:mtf", "share_pct"] == pytest.approx(100 * -2.0 / -3.6, abs=2)


def test_variants_and_their_domain_names() -> None:
    chosen = variants(("mtf", "noise", "temporal"))
    assert [v.domain for v in chosen] == [
        "attr-none", "attr-only-mtf", "attr-only-temporal", "attr-only-noise",
        "attr-without-mtf", "attr-without-temporal", "attr-without-noise"]
    assert chosen[4].effects_on == ("temporal", "noise")
    with pytest.raises(InputError, match="off in the target"):
        variants(("mtf",), ["noise"])


def test_variant_tiles_reuse_the_target_tiles_parameters(tmp_path: Path) -> None:
    """Switching effects off leaves every other effect's per-tile values unchanged."""
    manifest, chosen = write_variant_domains(DEMO_MANIFEST, "simulated_cross_sensor", "test", tmp_path,
                                             effects=["misregistration", "noise"])
    table = read_manifest(manifest)
    target = read_manifest(DEMO_MANIFEST).query("domain == 'simulated_cross_sensor' and split == 'test'")
    assert set(table["domain"]) == {v.domain for v in chosen}
    assert len(table) == len(chosen) * len(target)
    tile = target.iloc[0]
    full = json.loads(tile["params_json"])["parameters"]
    for row in table[table["tile_id"] == tile["tile_id"]].itertuples():
        params = json.loads(row.params_json)["parameters"]
        for effect, values in params.items():
            if values is not None:
                assert values == full[effect], (row.domain, effect)
        assert resolve(manifest, row.hr_path).resolve() == resolve(DEMO_MANIFEST, tile["hr_path"]).resolve()
    # all effects but noise = the target with noise off, re-simulated from the recorded seed
    without_noise = table.query("domain == 'attr-without-noise'").iloc[0]
    assert "noise" not in json.loads(without_noise["params_json"])["effects"]


def _toy_target_config() -> SimulatorConfig:
    """Misregistration at full strength; radiometry, temporal change and noise on but of zero strength."""
    return SimulatorConfig(
        radiometric=RadiometricConfig(gain_range=(1.0, 1.0), offset_range=(0.0, 0.0), haze_range=(0.0, 0.0)),
        temporal=TemporalConfig(greening_range=(0.0, 0.0), objects_range=(0, 0)),
        misregistration=MisregistrationConfig(max_shift_lr=0.5, max_warp_lr=0.1),
        noise=SensorNoiseConfig(read_sigma_range=(0.0, 0.0), shot_sigma_range=(0.0, 0.0), quantize=False),
    ).without("mtf", "spectral")


def _toy_manifest(folder: Path) -> Path:
    """Reference = simulator with every effect off; target = the toy config: only misregistration differs."""
    records = []
    # the all-off simulator is plain area downsampling: a synthetic degradation
    configs = {"synthetic": SimulatorConfig.all_off(), "simulated_cross_sensor": _toy_target_config()}
    for record in read_records(DEMO_MANIFEST):
        if record.domain != "synthetic" or record.split != "test":
            continue
        hr = read_raster(resolve(DEMO_MANIFEST, record.hr_path))
        for domain, config in configs.items():
            lr, params = degrade_raster(hr, SIMULATED_METHOD, record.scale, seed=0, config=config,
                                        tile_id=record.tile_id)
            rel = f"{domain}/{record.tile_id}.tif"
            write_cog(lr, folder / rel)
            values = {**record.__dict__, "pair_id": f"{domain}/{record.tile_id}", "domain": domain,
                      "lr_path": rel, "hr_path": os.path.relpath(resolve(DEMO_MANIFEST, record.hr_path), folder),
                      "degradation": SIMULATED_METHOD, "params_json": json.dumps(params, sort_keys=True)}
            records.append(PairRecord(**values))
    return write_manifest(records, folder / "toy.parquet")


def test_toy_gap_from_misregistration_only_is_attributed_to_it(tmp_path: Path, capsys) -> None:
    manifest = _toy_manifest(tmp_path)
    spec = {
        "name": "toy",
        "test_domains": [{"name": "reference", "manifest": str(manifest), "domain": "synthetic"},
                         {"name": "target", "manifest": str(manifest), "domain": "simulated_cross_sensor"}],
        "models": [{"name": "bicubic", "method": "bicubic"}],
        "metrics": ["psnr", "ssim"], "samples": 1, "batch_size": 12,
        "attribution": {"reference": "reference", "target": "target"},
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["attribute", "--experiment", str(path), "--out", str(tmp_path / "results"), "--csv",
                 "--n-boot", "1000"]) == 0
    from io import StringIO

    table = pd.read_csv(StringIO(capsys.readouterr().out))
    for metric, rows in table.groupby("metric"):
        rows = rows.set_index("term")
        total = rows.loc["total"]
        assert total.ci_high < 0, metric  # misregistration costs PSNR and SSIM
        for kind in ("single", "leave_one_out"):
            mis = rows.loc[f"{kind}:misregistration"]
            assert mis.ci_high < 0 and mis.value == pytest.approx(total.value, rel=1e-6), (metric, kind)
            for effect in ("radiometric", "temporal", "noise"):
                other = rows.loc[f"{kind}:{effect}"]
                assert other.ci_low <= 0 <= other.ci_high, (metric, kind, effect)
        assert rows.loc["baseline"].value == pytest.approx(0.0, abs=1e-9)
        inter = rows.loc["interaction"]  # zero up to float rounding: the effects do not interact
        assert inter.ci_low - 1e-9 <= 0 <= inter.ci_high + 1e-9
    assert set(table["term"]) >= {"single:misregistration", "leave_one_out:noise", "interaction"}
    assert "mtf" not in " ".join(table["term"])  # off in the target: nothing to attribute


def test_attribution_section_is_validated(tmp_path: Path) -> None:
    from tests.fixtures.experiments import write_experiment

    from mindgap_core.experiments.spec import load_experiment

    good = load_experiment(write_experiment(tmp_path, attribution={
        "reference": "synthetic", "target": "simulated_cross_sensor", "effects": ["mtf"]}))
    assert good.attribution is not None and good.attribution.effects == ("mtf",)
    plain = load_experiment(write_experiment(tmp_path))
    assert plain.spec_hash == good.spec_hash  # attribution says how to read results, not what is scored
    with pytest.raises(InputError, match="is not a test domain"):
        load_experiment(write_experiment(tmp_path, attribution={"reference": "synthetic", "target": "x"}))
    with pytest.raises(InputError, match="attribution needs"):
        load_experiment(write_experiment(tmp_path, attribution={"target": "synthetic"}))
    assert main(["attribute", "--experiment", str(write_experiment(tmp_path)),
                 "--out", str(tmp_path / "r")]) == 2


def test_cli_and_dashboard_name_effects_alike() -> None:
    from mindgap_core.attribution.names import EFFECT_LABELS
    from mindgap_core.cli.attribute import term_label

    assert term_label("single:mtf") == "MTF (optical blur) alone"
    assert term_label("leave_one_out:noise") == "noise & quantisation, given all others (leave-one-out)"
    assert term_label("single:custom") == "custom alone"  # an effect without a label keeps its name
    from mindgap_core.degrade.sensor_config import EFFECTS

    assert set(EFFECT_LABELS) == set(EFFECTS)  # every simulator effect has a readable name
