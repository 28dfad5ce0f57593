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
