"""View-state helpers (no Streamlit run needed)."""

from __future__ import annotations

from pathlib import Path

from mindgap_ui.results import StoreCatalog, filter_key
from mindgap_ui.state import ViewState


def test_simulated_flag_follows_test_and_train_domains() -> None:
    base = dict(runs=["r"], metrics=["psnr"], methods=["sr3"], regimes=["real"], fingerprint="x")
    assert StoreCatalog(domains=["synthetic", "simulated_cross_sensor"], **base).simulated
    assert StoreCatalog(domains=["synthetic", "real_cross_sensor"], train_domains=["simulated_cross_sensor"],
                        **base).simulated
    real = StoreCatalog(domains=["synthetic", "real_cross_sensor"], train_domains=["synthetic"], **base)
    assert not real.simulated


def test_score_filters_and_keys() -> None:
    view = ViewState(Path("/r"), "run1", "psnr", None, "real", "synthetic", "real_cross_sensor", "all",
                     "mean")
    assert view.filters() == {"run_id": "run1", "regime": "real"}
    flt = view.score_filters(train_blocks=None)
    assert flt == {"run_id": "run1", "regime": "real", "band": "all", "aggregate": "mean",
                   "train_blocks": None}
    assert filter_key({"b": [1, 2], "a": None}) == (("a", None), ("b", (1, 2)))
    assert hash(filter_key(flt)) == hash(filter_key(dict(reversed(list(flt.items())))))


def test_sidebar_defaults_skip_attribution_runs_and_variant_domains() -> None:
    from mindgap_core.attribution.names import VARIANT_DOMAIN_PREFIX
    from mindgap_ui.state import default_run, default_target

    assert default_run(["alpha-1", "attribution-alpha-2"]) == "alpha-1"
    assert default_run(["attribution-a-1", "demo-2", "zeta-3"]) == "zeta-3"
    assert default_run(["attribution-a-1"]) == "attribution-a-1"  # nothing else to show
    assert default_run([]) is None
    variants = [f"{VARIANT_DOMAIN_PREFIX}none", f"{VARIANT_DOMAIN_PREFIX}only-mtf"]
    assert default_target([*variants, "real_cross_sensor", "simulated_cross_sensor"]) == "real_cross_sensor"
    assert default_target(variants) == variants[0]
    assert default_target([]) is None
