"""Gap attribution: exact Shapley and secondary decompositions, the textbook Shapley split of two interacting
effects, known answers on synthetic scores and on a toy simulator setup."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mindgap_core.analysis.gap import mse_from_psnr
from mindgap_core.attribution.decompose import AttributionDomains, attribute_scores, shapley_weights
from mindgap_core.attribution.domains import variants, write_variant_domains
from mindgap_core.attribution.names import OTHER_EFFECTS, Players
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
            higher_better: bool = True, metric: str = "psnr") -> tuple[pd.DataFrame, AttributionDomains]:
    """Per-tile PSNR-like scores: reference 30, 'none' −0.5, each effect adds its size, and the full
    target adds ``interaction`` on top of the sum (tile noise on every domain); every coalition scored."""
    rng = np.random.default_rng(0)
    domains = AttributionDomains("synthetic", "simulated", tuple(effect_sizes))
    base = 30 + rng.normal(0, 2, n)  # tile difficulty, shared by all domains (pairing matters)
    mean = {"synthetic": 0.0}
    for coalition in domains.players.coalitions():
        full = len(coalition) == len(effect_sizes)
        mean[domains.coalition(coalition)] = (-0.5 + sum(effect_sizes[e] for e in coalition)
                                              + (interaction if full else 0.0))
    sign = 1.0 if higher_better else -1.0
    rows = [{"model": "m", "method": "bicubic", "regime": "none", "metric": metric, "test_domain": d,
             "tile_id": f"t{i:02d}", "value": sign * (base[i] + mu + rng.normal(0, noise)),
             "higher_better": higher_better}
            for d, mu in mean.items() for i in range(n)]
    return pd.DataFrame(rows), domains


@pytest.mark.parametrize("higher_better", [True, False])
def test_decomposition_is_exact_and_recovers_known_effects(higher_better: bool) -> None:
    sizes = {"mtf": -2.0, "temporal": 0.0, "noise": -0.7}
    frame, domains = _scores(sizes, interaction=-0.4, higher_better=higher_better, metric="ssim")
    blocks = {f"t{i:02d}": f"b{i // 4}" for i in range(40)}
    table = attribute_scores(frame, domains, blocks=blocks).set_index("term")
    value = table["value"]
    parts = value["baseline"] + sum(value[f"single:{e}"] for e in sizes) + value["interaction"]
    assert value["total"] == pytest.approx(parts, abs=1e-12)
    shapley = value["baseline"] + sum(value[f"shapley:{e}"] for e in sizes)
    assert value["total"] == pytest.approx(shapley, abs=1e-12)  # efficiency
    assert value["total"] == pytest.approx(-0.5 - 2.7 - 0.4, abs=0.05)
    for e, size in sizes.items():
        single, loo = table.loc[f"single:{e}"], table.loc[f"leave_one_out:{e}"]
        phi = table.loc[f"shapley:{e}"]
        assert single.value == pytest.approx(size, abs=0.05)
        # the three-way interaction sits in the full target only: each effect's Shapley value takes a third
        assert phi.value == pytest.approx(size - 0.4 / 3, abs=0.05)
        assert loo.value == pytest.approx(size - 0.4, abs=0.05)
        excludes_zero = single.ci_low > 0 or single.ci_high < 0
        assert excludes_zero == (size != 0), single
        assert (single.verdict == "worse") == (size != 0)
    inter = table.loc["interaction"]
    assert inter.ci_high < 0 and inter.value == pytest.approx(-0.4, abs=0.05)
    assert table.loc["single:mtf", "share_pct"] == pytest.approx(100 * -2.0 / -3.6, abs=2)
    assert (table["n_units"] == 10).all() and (table["unit"] == "block").all()
    raw = table["p_value"].to_numpy()  # Holm over the terms of the metric
    m = np.isfinite(raw).sum()
    assert table["p_adjusted"].min() == pytest.approx(min(1.0, m * np.nanmin(raw)))


def test_two_interacting_effects_get_the_textbook_shapley_split() -> None:
    """v(∅) = 0, v({a}) = −1, v({b}) = −2, v({a, b}) = −1 − 2 − 0.6: each effect gets its own part plus
    half of the interaction, φ_a = −1.3, φ_b = −2.3 (order-free), while single-effect terms miss the
    interaction and leave-one-out terms count it twice."""
    rows = []
    scores = {"synthetic": 0.0, "attr-none": 0.0, "attr-only-mtf": 1.0, "attr-only-noise": 2.0,
              "simulated": 3.6}  # lower-better (LPIPS-Sat-like): a higher score is worse
    for domain, shift in scores.items():
        rows += [{"model": "m", "method": "bicubic", "regime": "none", "metric": "lpips_sat",
                  "test_domain": domain, "tile_id": f"t{i}", "value": 0.2 * (1 + i % 3) + shift,
                  "higher_better": False} for i in range(6)]
    domains = AttributionDomains("synthetic", "simulated", ("mtf", "noise"))
    table = attribute_scores(pd.DataFrame(rows), domains).set_index("term")["value"]
    assert table["shapley:mtf"] == pytest.approx(-1.3, abs=1e-12)
    assert table["shapley:noise"] == pytest.approx(-2.3, abs=1e-12)
    split = table["baseline"] + table["shapley:mtf"] + table["shapley:noise"]
    assert split == pytest.approx(table["total"], abs=1e-12)
    assert table["single:mtf"] == pytest.approx(-1.0) and table["leave_one_out:mtf"] == pytest.approx(-1.6)
    weights = shapley_weights(domains)["mtf"]
    assert weights == pytest.approx({"attr-only-mtf": 0.5, "attr-none": -0.5, "simulated": 0.5,
                                     "attr-only-noise": -0.5})


def test_psnr_shapley_is_split_on_the_mse_scale_and_shown_in_db() -> None:
    sizes = {"mtf": -2.0, "noise": -0.7}
    frame, domains = _scores(sizes, interaction=-0.4)
    table = attribute_scores(frame, domains)
    mse = table[table["metric"] == "mse"].set_index("term")
    psnr = table[table["metric"] == "psnr"].set_index("term")
    wide = frame.pivot(index="tile_id", columns="test_domain", values="value")
    errors = pd.DataFrame(mse_from_psnr(wide.to_numpy()), index=wide.index, columns=wide.columns)
    expected = -(errors["simulated"] - errors["synthetic"]).mean()
    assert mse.at["total", "value"] == pytest.approx(expected, rel=1e-12)
    phi = mse.at["shapley:mtf", "value"], mse.at["shapley:noise", "value"]
    assert mse.at["total", "value"] == pytest.approx(mse.at["baseline", "value"] + sum(phi), abs=1e-15)
    assert mse["ci_low"].notna().all()
    derived = psnr[psnr["kind"] == "shapley"]
    assert derived["ci_low"].isna().all() and (derived["verdict"] == "no CI").all()
    total = psnr.at["baseline", "value"] + derived["value"].sum()
    assert psnr.at["total", "value"] == pytest.approx(total, abs=1e-12)
    share = phi[0] / sum(phi)
    span = psnr.at["total", "value"] - psnr.at["baseline", "value"]
    assert derived.at["shapley:mtf", "value"] == pytest.approx(share * span)


def test_only_secondary_views_without_every_coalition() -> None:
    """A store written before Shapley attribution (none / only / without domains only, 3 effects of 4 on):
    the secondary views, no Shapley rows."""
    frame, _ = _scores({"mtf": -2.0, "temporal": 0.0, "noise": -0.7}, interaction=-0.4, metric="ssim")
    domains = AttributionDomains("synthetic", "simulated", ("mtf", "temporal", "noise"), ("radiometric",))
    renamed = {d: d for d in frame["test_domain"].unique()}
    old = AttributionDomains("synthetic", "simulated", ("mtf", "temporal", "noise"))
    for e in old.effects:
        renamed[old.only(e)] = domains.only(e)
        renamed[old.without(e)] = domains.without(e)
    kept = frame[frame["test_domain"].isin(renamed)]
    kept = kept.assign(test_domain=kept["test_domain"].map(renamed))
    table = attribute_scores(kept, domains)
    assert not (table["kind"] == "shapley").any()
    assert {"total", "baseline", "single", "leave_one_out", "interaction"} == set(table["kind"])


def test_variants_and_their_domain_names() -> None:
    chosen = variants(("mtf", "noise", "temporal"))
    assert [v.domain for v in chosen] == [
        "attr-none", "attr-only-mtf", "attr-only-temporal", "attr-only-noise",
        "attr-without-mtf", "attr-without-temporal", "attr-without-noise"]
    assert chosen[4].effects_on == ("temporal", "noise")
    with pytest.raises(InputError, match="off in the target"):
        variants(("mtf",), ["noise"])
    every = variants(("mtf", "radiometric", "temporal", "noise"), shapley=True)
    assert len(every) == 15 and len({v.domain for v in every}) == 15
    assert "attr-set-mtf-noise" in {v.domain for v in every}
    partial = Players(("mtf",), ("temporal", "noise"))  # two effects on but attributed jointly
    assert partial.names == ("mtf", OTHER_EFFECTS)
    assert partial.variant([OTHER_EFFECTS]).domain == "attr-without-mtf"
    assert partial.variant(["mtf", OTHER_EFFECTS]) is None  # the target itself
    assert [v.domain for v in variants(("mtf", "temporal", "noise"), ["mtf"], shapley=True)] == [
        "attr-none", "attr-only-mtf", "attr-without-mtf"]


def test_variant_tiles_reuse_the_target_tiles_parameters(tmp_path: Path) -> None:
    """Switching effects off leaves every other effect's per-tile values unchanged."""
    manifest, chosen, _ = write_variant_domains(DEMO_MANIFEST, "simulated_cross_sensor", "test", tmp_path,
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
                      "lr_path": rel,
                      "hr_path": os.path.relpath(resolve(DEMO_MANIFEST, record.hr_path), folder),
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
    assert set(table["metric"]) == {"psnr", "ssim", "mse"}
    for metric, rows in table.groupby("metric"):
        rows = rows.set_index("term")
        total = rows.loc["total"]
        assert total.ci_high < 0, metric  # misregistration costs PSNR and SSIM
        kinds = ("single", "leave_one_out", "shapley") if metric != "psnr" else ("single", "leave_one_out")
        for kind in kinds:
            mis = rows.loc[f"{kind}:misregistration"]
            assert mis.ci_high < 0 and mis.value == pytest.approx(total.value, rel=1e-6), (metric, kind)
            for effect in ("radiometric", "temporal", "noise"):
                other = rows.loc[f"{kind}:{effect}"]
                assert other.ci_low - 1e-9 <= 0 <= other.ci_high + 1e-9, (metric, kind, effect)
        assert rows.loc["baseline"].value == pytest.approx(0.0, abs=1e-9)
        inter = rows.loc["interaction"]  # zero up to float rounding: the effects do not interact
        assert inter.ci_low - 1e-9 <= 0 <= inter.ci_high + 1e-9
        shapley = rows[rows["kind"] == "shapley"]["value"].sum()
        assert total.value == pytest.approx(rows.loc["baseline"].value + shapley, abs=1e-9)
    assert set(table["term"]) >= {"single:misregistration", "leave_one_out:noise", "interaction",
                                  "shapley:misregistration"}
    assert "mtf" not in " ".join(table["term"])  # off in the target: nothing to attribute
    assert (table["unit"] == "block").all() and (table["n_units"] == 3).all()
    # the same table from the store alone, without simulating or scoring again
    assert main(["gap", "--results", str(tmp_path / "results"), "--attribution", "--csv"]) == 0
    again = pd.read_csv(StringIO(capsys.readouterr().out))
    pd.testing.assert_frame_equal(again.drop(columns=["run_id", "band"]), table)
    assert main(["gap", "--results", str(tmp_path / "results"), "--attribution", "--metric", "mse"]) == 0
    printed = capsys.readouterr().out
    assert "**mse**" in printed and "(Shapley)" in printed and "total = kernel + Σ Shapley exactly" in printed


def test_attribution_section_is_validated(tmp_path: Path) -> None:
    from mindgap_core.experiments.spec import load_experiment
    from tests.fixtures.experiments import write_experiment

    good = load_experiment(write_experiment(tmp_path, attribution={
        "reference": "synthetic", "target": "simulated_cross_sensor", "effects": ["mtf"]}))
    assert good.attribution is not None and good.attribution.effects == ("mtf",)
    plain = load_experiment(write_experiment(tmp_path))
    assert plain.spec_hash == good.spec_hash  # attribution says how to read results, not what is scored
    with pytest.raises(InputError, match="is not a test domain"):
        load_experiment(write_experiment(tmp_path, attribution={"reference": "synthetic", "target": "x"}))
    with pytest.raises(InputError, match="attribution needs"):
        load_experiment(write_experiment(tmp_path, attribution={"target": "synthetic"}))
    with pytest.raises(InputError, match="shapley names unknown models"):
        load_experiment(write_experiment(tmp_path, attribution={
            "reference": "synthetic", "target": "simulated_cross_sensor", "shapley": ["sr3/none"]}))
    some = load_experiment(write_experiment(tmp_path, attribution={
        "reference": "synthetic", "target": "simulated_cross_sensor", "shapley": ["bicubic"]}))
    assert some.attribution.shapley_for("bicubic") and not some.attribution.shapley_for("regression/random")
    assert main(["attribute", "--experiment", str(write_experiment(tmp_path)),
                 "--out", str(tmp_path / "r")]) == 2


def test_cli_and_dashboard_name_effects_alike() -> None:
    from mindgap_core.attribution.names import EFFECT_LABELS
    from mindgap_core.cli.attribute import term_label

    assert term_label("single:mtf") == "MTF (optical blur) alone"
    assert term_label("shapley:mtf") == "MTF (optical blur) (Shapley)"
    assert term_label("leave_one_out:noise") == "noise & quantisation, given all others (leave-one-out)"
    assert term_label("single:custom") == "custom alone"  # an effect without a label keeps its name
    from mindgap_core.degrade.sensor_config import EFFECTS

    assert set(EFFECT_LABELS) == set(EFFECTS)  # every simulator effect has a readable name
