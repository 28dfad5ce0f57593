"""The sidebar's choices (mindgap_ui/choices.py): only combinations with rows on both domains."""

from __future__ import annotations

import pandas as pd

from mindgap_ui.choices import CHOICE_COLUMNS, Combinations, comparable, offered


def _keys(*rows: tuple) -> pd.DataFrame:
    columns = ["run_id", "metric", "method", "regime", "test_domain", "band", "aggregate"]
    return pd.DataFrame([dict(zip(columns, r, strict=True)) for r in rows])


KEYS = _keys(
    # per-band PSNR on both domains; LPIPS-Sat only on all bands; ERGAS only on all bands
    *[("r", "psnr", "srdiff", "real", d, b, "mean") for d in ("synthetic", "simulated_cross_sensor")
      for b in ("all", "nir")],
    *[("r", m, "srdiff", "real", d, "all", "mean") for m in ("lpips_sat", "ergas")
      for d in ("synthetic", "simulated_cross_sensor")],
    # sinsr/finetune scored on the cross-sensor domain only: no gap, never offered
    ("r", "psnr", "sinsr", "finetune", "simulated_cross_sensor", "all", "mean"),
    # an attribution variant domain is compared on the attribution page, not offered here
    ("r", "psnr", "srdiff", "real", "attr-only-mtf", "all", "mean"),
)


def test_only_pairs_with_both_domains_are_offered() -> None:
    table = comparable(KEYS, "synthetic")
    assert list(table.columns) == list(CHOICE_COLUMNS)
    assert set(table["target"]) == {"simulated_cross_sensor"}
    assert set(zip(table["metric"], table["band"], strict=True)) == {
        ("psnr", "all"), ("psnr", "nir"), ("lpips_sat", "all"), ("ergas", "all")}
    assert "sinsr" not in set(table["method"])


def test_options_narrow_in_the_sidebar_order() -> None:
    combos = offered(KEYS, "synthetic")
    assert combos.options("metric", {}) == ["ergas", "lpips_sat", "psnr"]
    assert combos.options("band", {"metric": "lpips_sat"}) == ["all"]
    assert combos.options("band", {"metric": "psnr"}) == ["all", "nir"]
    assert combos.options("band", {"metric": "psnr", "method": None}) == ["all", "nir"]  # None = any
    assert combos.options("method", {"metric": "psnr"}) == ["srdiff"]
    assert combos.options("regime", {"method": "sinsr"}) == []


def test_a_store_without_the_source_domain_still_offers_its_runs_and_metrics() -> None:
    keys = _keys(("r", "psnr", "srdiff", "real", "real_cross_sensor", "all", "mean"))
    combos = offered(keys, "synthetic")
    assert combos == Combinations((("r", "psnr", "srdiff", "real", None, "all", "mean"),))
    assert combos.options("target", {}) == [] and combos.options("metric", {}) == ["psnr"]
