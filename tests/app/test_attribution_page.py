"""AppTest of the attribution page: charts and table equal the core's decomposition, the simulated label,
the notice without an attribution run; other pages keep opening on the main run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mindgap_core.attribution.decompose import attribution_table, stored_attribution_domains
from mindgap_core.attribution.names import OTHER_EFFECTS, RUN_PREFIX
from mindgap_ui.results import N_BOOT, SEED
from tests.app.conftest import ResultsCase, figures, run_page, selected
from tests.fixtures.attribution_store import EFFECTS

TERMS = {"total", "baseline", "interaction",
         *(f"{kind}:{e}" for e in EFFECTS for kind in ("single", "leave_one_out")),
         *(f"shapley:{p}" for p in (*EFFECTS, OTHER_EFFECTS))}  # the fixture's target has more effects on
TARGET = "simulated_cross_sensor"


def _attribution_run(root: Path) -> str:
    (run_id,) = stored_attribution_domains(root)
    return run_id


def _core(root: Path, metric: str) -> pd.DataFrame:
    run_id = _attribution_run(root)
    return attribution_table(root, stored_attribution_domains(root)[run_id], metric=metric,
                             filters={"run_id": run_id, "aggregate": "mean"}, n_boot=N_BOOT, seed=SEED)


def _model_terms(root: Path, metric: str, model: str) -> pd.DataFrame:
    """The core's terms of one model, indexed by term."""
    table = _core(root, metric)
    return table[table["model"] == model].set_index("term")


def _terms(at) -> pd.DataFrame:
    """The attribution terms table (the page's first table; the remedies table follows it)."""
    return at.dataframe[0].value


def _attribution_figures(at) -> list:
    """The waterfall and single-vs-leave-one-out figures (the remedies figure, if any, is last)."""
    return [f for f in figures(at) if "remedy" not in (f.layout.meta or "")]


def _traces(fig, kind: str) -> list:
    return [t for t in fig.data if t.type == kind]


@pytest.fixture(scope="module")
def page(attribution_case: ResultsCase):
    return run_page("attribution", attribution_case, metric="psnr")


def test_waterfall_steps_equal_the_core_decomposition(page, attribution_case) -> None:
    expected = _model_terms(attribution_case.root, "psnr", selected(page, "Model"))
    waterfall, _ = _attribution_figures(page)
    (bars,) = _traces(waterfall, "waterfall")
    (whiskers,) = _traces(waterfall, "scatter")
    order = ["baseline", *(f"single:{e}" for e in EFFECTS), "interaction", "total"]
    assert list(bars.measure) == ["relative"] * (len(order) - 1) + ["total"]
    assert np.allclose(np.asarray(bars.y, float), expected.loc[order, "value"].to_numpy())
    assert np.asarray(bars.y, float)[:-1].sum() == pytest.approx(expected.at["total", "value"], abs=1e-9)
    # each whisker spans its term's CI at the step's end (the running sum)
    ends = np.asarray(whiskers.y, float)
    assert ends[-1] == pytest.approx(expected.at["total", "value"])
    lows = ends - np.asarray(whiskers.error_y.arrayminus, float)
    step_starts = ends - expected.loc[order, "value"].to_numpy()
    step_starts[-1] = 0.0
    assert np.allclose(lows - step_starts, expected.loc[order, "ci_low"].to_numpy())
    assert "MTF (optical blur)" in list(bars.x) and "baseline (resampling kernel)" in list(bars.x)


def test_single_vs_leave_one_out_bars_carry_the_cis(page, attribution_case) -> None:
    expected = _model_terms(attribution_case.root, "psnr", selected(page, "Model"))
    _, paired = _attribution_figures(page)
    single, loo = _traces(paired, "bar")
    assert paired.layout.barmode == "group"
    for trace, kind in ((single, "single"), (loo, "leave_one_out")):
        rows = expected.loc[[f"{kind}:{e}" for e in EFFECTS]]
        assert np.allclose(np.asarray(trace.y, float), rows["value"].to_numpy())
        assert np.allclose(np.asarray(trace.y, float) + np.asarray(trace.error_y.array, float),
                           rows["ci_high"].to_numpy())


def test_table_lists_every_term_with_cis(page, attribution_case) -> None:
    terms = _terms(page)
    assert set(terms["term"]) == TERMS
    assert set(terms["model"]) == {selected(page, "Model")}
    with_ci = terms[terms["ci_low"].notna()]  # PSNR's Shapley rows are MSE shares of the dB gap: no CI
    assert (with_ci["ci_low"] <= with_ci["value"]).all() and (with_ci["value"] <= with_ci["ci_high"]).all()
    assert set(terms.loc[terms["ci_low"].isna(), "term"]) == {t for t in TERMS if t.startswith("shapley:")}
    core = _core(attribution_case.root, "psnr").set_index(["model", "term"])
    shown = terms.set_index(["model", "term"])
    assert np.allclose(shown["value"], core.loc[shown.index, "value"])


def test_simulated_domains_are_labelled(page) -> None:
    captions = " ".join(c.value for c in page.caption)
    assert "**SIMULATED**" in captions and "attr-only-mtf" in captions and "attr-none" in captions
    assert any("Simulated data" in w.value for w in page.warning)


def test_metric_switch_redraws_for_that_metric(attribution_case) -> None:
    at = run_page("attribution", attribution_case, metric="psnr")
    at.selectbox(key="sidebar_metric").set_value("ssim").run()
    assert not at.exception
    expected = _model_terms(attribution_case.root, "ssim", selected(at, "Model"))
    waterfall, _ = _attribution_figures(at)
    assert "SSIM" in waterfall.layout.title.text
    (bars,) = _traces(waterfall, "waterfall")
    assert bars.y[-1] == pytest.approx(expected.at["total", "value"])
    assert set(_terms(at)["term"]) == TERMS


def test_all_models_are_faceted(attribution_case) -> None:
    at = run_page("attribution", attribution_case, metric="ssim", model="(all models)")
    models = set(_core(attribution_case.root, "ssim")["model"])
    waterfall, paired = _attribution_figures(at)
    assert len(_traces(waterfall, "waterfall")) == len(models) == 2
    assert len(_traces(paired, "bar")) == 2 * len(models)
    assert set(_terms(at)["model"]) == models


def test_sidebar_method_filter_applies(attribution_case) -> None:
    at = run_page("attribution", attribution_case, metric="psnr", method="regression")
    assert selected(at, "Model") == "regression/random"
    assert set(_terms(at)["model"]) == {"regression/random"}
    at = run_page("attribution", attribution_case, metric="psnr", method="regression", model="(all models)")
    (bars,) = _traces(_attribution_figures(at)[0], "waterfall")
    assert bars.y[-1] == pytest.approx(_model_terms(attribution_case.root, "psnr", "regression/random")
                                       .at["total", "value"])


def test_metric_not_in_the_attribution_run_is_explained(attribution_case) -> None:
    at = run_page("attribution", attribution_case, metric="sam")  # scored by the main run only
    assert any("has no SAM scores" in i.value for i in at.info)
    assert not _attribution_figures(at)


def test_store_without_attribution_run_explains_how_to_make_one(attribution_case) -> None:
    from mindgap_core.experiments.runner import run_experiment
    from mindgap_core.experiments.spec import load_experiment

    plain = attribution_case.root.parent / "plain" / "results"
    run_experiment(load_experiment(attribution_case.root.parent / "main" / "experiment.yaml"), plain,
                   device="cpu")
    at = run_page("attribution", ResultsCase("plain", plain, str(plain)))
    (notice,) = [i.value for i in at.info if "attribution" in i.value]
    assert "no gap-attribution run" in notice
    assert "mindgap attribute --experiment data/demo/attribution.yaml --out data/demo/results" in notice
    assert not _attribution_figures(at)


def test_other_pages_open_on_the_main_run(attribution_case) -> None:
    """The attribution run id sorts last, yet the sidebar opens on the normal run and domain."""
    runs = sorted(p.stem for p in (attribution_case.root / "runs").glob("*.json"))
    assert runs[-1].startswith(RUN_PREFIX)
    at = run_page("overview", attribution_case)
    assert selected(at, "Run") == runs[0]
    assert selected(at, "Compared domain") == TARGET
    assert figures(at)


def test_deep_link_to_the_attribution_run_is_kept(attribution_case) -> None:
    run_id = _attribution_run(attribution_case.root)
    at = run_page("overview", attribution_case, run=run_id)
    assert selected(at, "Run") == run_id


def test_remedies_compare_the_adapter_with_the_synthetic_trained_model(attribution_case) -> None:
    from mindgap_core.attribution.remedies import remedy_table

    at = run_page("attribution", attribution_case, metric="psnr")
    (fig,) = [f for f in figures(at) if f.layout.meta == "remedy"]
    main_run = selected(at, "Run")
    expected = remedy_table(attribution_case.root, metric="psnr", filters={"run_id": main_run},
                            n_boot=N_BOOT, seed=SEED).set_index("model")
    adapted = expected.loc["harmoniser+regression/random"]
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    bar = bars[adapted.remedy]
    assert bar.y[0] == pytest.approx(adapted.delta)
    assert bar.y[0] + bar.error_y.array[0] == pytest.approx(adapted.delta_ci_high)
    assert bars["synthetic-trained (baseline)"].y[0] == 0.0
    shown = at.dataframe[-1].value.set_index("model")
    assert shown.at["harmoniser+regression/random", "delta"] == pytest.approx(adapted.delta)
    assert any("Best remedy" in m.value for m in at.markdown)


def test_remedies_notice_without_a_remedy(attribution_case) -> None:
    at = run_page("attribution", attribution_case, metric="psnr", method="bicubic")
    assert any("No remedy to compare" in i.value for i in at.info)
