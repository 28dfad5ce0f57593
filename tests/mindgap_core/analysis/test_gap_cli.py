"""``mindgap gap``: markdown, JSON and CSV outputs, the matrix view, and one-line errors."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from mindgap_core.analysis.gap import gap_table
from mindgap_core.cli import main
from mindgap_core.cli.formatting import decimals_for, format_p
from mindgap_core.store import ResultsStore, shard_key
from tests.mindgap_core.analysis.synth import result_rows


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("RESULTS")
    store = ResultsStore(root)
    rows = result_rows(tiles=15, methods=("sr3", "bicubic"))
    for (method, domain), part in rows.groupby(["method", "test_domain"]):
        store.write_shard(shard_key(run="r1", model=method, domain=domain), part)
    return root


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["gap", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_markdown_is_the_default_and_pastes_as_a_table(results, capsys):
    code, out, err = run_cli(capsys, "--results", str(results))
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| method"))
    assert lines[header + 1].startswith("|---")
    body = lines[header + 2:]
    assert len(body) == 6  # 2 methods × 3 metrics
    assert "negative = worse on simulated_cross_sensor" in out and "SIMULATED" in out
    assert "Holm-adjusted over the 9 tests" in out  # 6 gaps + 3 excess gaps (bicubic is the reference)
    assert "tiles treated as independent (no block map)" in out
    psnr = next(line for line in body if "psnr ↑" in line and line.startswith("| sr3"))
    cells = [c.strip() for c in psnr.strip("|").split("|")]
    assert cells[4] == "15 (tiles as units)"
    table = gap_table(results)
    row = table[(table["method"] == "sr3") & (table["metric"] == "psnr")].iloc[0]
    assert cells[7] == f"{row.gap:+.2f} [{row.gap_ci_low:+.2f}, {row.gap_ci_high:+.2f}]"
    assert cells[9] == row.verdict and cells[10].startswith("MSE ×")
    assert cells[11] == f"{row.excess_gap:+.2f} [{row.excess_ci_low:+.2f}, {row.excess_ci_high:+.2f}]"
    assert any("lpips ↓" in line for line in body)


def test_json_rows_carry_units_method_adjusted_p_and_excess_gap(tmp_path, capsys):
    from tests.mindgap_core.analysis.synth import block_correlated_rows, write_block_store

    rows = block_correlated_rows(blocks=3, per_block=4)
    adapter = rows[rows["method"] == "sr3"].assign(regime="synthetic+harmoniser", model="harmoniser+sr3")
    store = write_block_store(tmp_path, pd.concat([rows, adapter]), per_block=4)
    code, out, _ = run_cli(capsys, "--results", str(store.root), "--json")
    assert code == 0
    records = {r["method"]: r for r in json.loads(out)}
    assert len(json.loads(out)) == 2  # the adapter pipeline has no gap row
    sr3 = records["sr3"]
    assert (sr3["n_units"], sr3["unit"], sr3["units"]) == (3, "block", "b0,b1,b2")
    assert sr3["ci_method"] == "t-interval over 3 blocks (CR2, df 2)"
    for key in ("p_value", "p_adjusted", "verdict", "excess_gap", "excess_ci_low", "excess_ci_high",
                "excess_p_adjusted", "excess_verdict"):
        assert sr3[key] is not None, key
    assert sr3["excess_gap"] == pytest.approx(sr3["gap"] - records["bicubic"]["gap"])


def test_json_and_csv_carry_full_precision(results, capsys):
    code, out, _ = run_cli(capsys, "--results", str(results), "--json", "--metric", "lpips")
    assert code == 0
    records = json.loads(out)
    assert [r["metric"] for r in records] == ["lpips", "lpips"]
    assert records[0]["train_blocks"] is None and isinstance(records[0]["higher_better"], bool)
    code, out, _ = run_cli(capsys, "--results", str(results), "--csv")
    csv = pd.read_csv(io.StringIO(out))
    expected = gap_table(results)
    pd.testing.assert_series_equal(csv["gap"], expected["gap"], check_exact=False, rtol=1e-12)
    assert {r["gap"] for r in records} <= set(expected["gap"])


def test_matrix_view(results, capsys):
    code, out, _ = run_cli(
        capsys, "--results", str(results), "--matrix", "--metric", "psnr", "--n-boot", "100"
    )
    assert code == 0
    assert ("| method | regime | metric | band | train domain | tiles / units | simulated_cross_sensor "
            "| synthetic |" in out)
    assert out.count("psnr ↑") == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--results", "/nonexistent/RESULTS"], "results store folder not found"),
        (["--target", "real_cross_sensor"], "no rows in the target domain 'real_cross_sensor'"),
        (["--metric", "nope"], "no rows in the source domain 'synthetic'"),
        (["--ci", "1.5"], "0 < ci < 1"),
    ],
)
def test_errors_are_one_line_exit_2(results, capsys, argv, message):
    if argv[0] != "--results":
        argv = ["--results", str(results), *argv]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and err.startswith("mindgap gap: error:")


def test_formats_are_mutually_exclusive(results):
    with pytest.raises(SystemExit):
        main(["gap", "--results", str(results), "--json", "--csv"])


def test_number_formatting():
    assert [decimals_for(x) for x in (26.45, 0.3, 3.2, 150.0)] == [2, 4, 3, 1]
    assert format_p(0.0312) == "0.031" and format_p(2.4e-5) == "2.4e-05" and format_p(float("nan")) == "–"


def test_band_filter_keeps_only_the_chosen_bands(results, capsys):
    all_bands = json.loads(run_cli(capsys, "--results", str(results), "--json", "--n-boot", "50")[1])
    assert {r["band"] for r in all_bands} == {"all"}  # the synthetic store holds band averages only
    code, out, _ = run_cli(capsys, "--results", str(results), "--json", "--n-boot", "50", "--band", "all")
    assert code == 0 and len(json.loads(out)) == len(all_bands)
    code, out, err = run_cli(capsys, "--results", str(results), "--json", "--n-boot", "50", "--band", "nir")
    assert not (code == 0 and json.loads(out or "[]"))  # nothing on a band the store does not hold


def test_scaling_view_prints_the_trend_or_says_why_not(results, tmp_path, capsys):
    from mindgap_core.analysis.scaling import scaling_trend

    # the module's store has no block counts: one clear error
    code, _, err = run_cli(capsys, "--results", str(results), "--scaling")
    assert code == 2 and "no diversity-scaling rows" in err
    store = ResultsStore(tmp_path / "scaling")
    rows = result_rows(tiles=12, methods=("regression",))
    for blocks in (1, 2, 4):
        part = rows.assign(train_blocks=blocks, value=rows["value"] + 0.1 * blocks)
        for domain, chunk in part.groupby("test_domain"):
            store.write_shard(shard_key(run="r1", blocks=blocks, domain=domain), chunk)
    code, out, _ = run_cli(capsys, "--results", str(store.root), "--scaling", "--json")
    assert code == 0
    records = json.loads(out)
    expected = scaling_trend(store.root)
    assert len(records) == len(expected) > 0
    want = expected["improvement_per_doubling"].iloc[0]
    assert records[0]["improvement_per_doubling"] == pytest.approx(want)
    assert records[0]["series"] == "confounded"  # no training.json: the pairs per model are unknown
    code, out, _ = run_cli(capsys, "--results", str(store.root), "--scaling")
    assert code == 0 and "per doubling" in out and "| regression |" in out and "confounded" in out


def test_per_model_rows_separate_models_of_one_method_and_regime(tmp_path, capsys):
    """Two sr3 models of the same regime (e.g. one checkpoint at two step counts) get a row each."""
    store = ResultsStore(tmp_path)
    for name, offset in (("sr3@5steps", 0.0), ("sr3@50steps", -2.0)):
        rows = result_rows(tiles=10, methods=("sr3",), seed=1).assign(model=name)
        rows["value"] = rows["value"] + offset
        for domain, part in rows.groupby("test_domain"):
            store.write_shard(shard_key(run="r1", model=name, domain=domain), part)
    code, out, _ = run_cli(capsys, "--results", str(tmp_path), "--matrix", "--per-model", "--metric", "psnr",
                           "--n-boot", "50")
    assert code == 0
    assert "| model | method | regime | metric |" in out
    body = [line for line in out.splitlines() if line.startswith("| sr3@")]
    assert [line.split("|")[1].strip() for line in body] == ["sr3@50steps", "sr3@5steps"]
    means = [float(line.split("|")[-2].split("[")[0]) for line in body]  # the synthetic column
    base = result_rows(tiles=10, methods=("sr3",), seed=1)
    truth = base[(base["metric"] == "psnr") & (base["test_domain"] == "synthetic")]["value"].mean()
    assert means[1] == pytest.approx(truth, abs=0.01) and means[0] == pytest.approx(truth - 2.0, abs=0.01)
    code, out, _ = run_cli(capsys, "--results", str(tmp_path), "--per-model", "--metric", "psnr", "--n-boot",
                           "50")
    assert code == 0 and "| model | method | regime |" in out and out.count("| sr3@") == 2
    code, _, err = run_cli(capsys, "--results", str(tmp_path), "--per-model", "--remedies")
    assert code == 2 and "--per-model" in err
