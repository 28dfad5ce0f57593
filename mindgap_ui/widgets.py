"""Small reusable Streamlit widgets."""

from __future__ import annotations

import re

import streamlit as st

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~$])")


def simulated_banner() -> None:
    """The banner shown wherever simulated data is displayed."""
    st.warning(
        "**Simulated data.** The demo's cross-sensor LR images are *simulated* from a real 5 m image "
        "(no real PlanetScope imagery can ship with MindGap). Results on them illustrate the method; "
        "they are not measurements of real Sentinel-2 / PlanetScope pairs.",
        icon="⚠️",
    )


def md_escape(text: object) -> str:
    """``text`` with Markdown/HTML special characters escaped (for names read from a results store)."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
    return "\\" + escaped if escaped[:1] in ("-", "+") else escaped


def no_results_notice() -> None:
    """What a results page shows when the sidebar found no results to show."""
    st.info("No results to show. Choose a results folder in the sidebar (empty: the demo results, made "
            "by `mindgap demo --stage results`), or run `mindgap evaluate --experiment FILE --out DIR`.")


#: display names of bands (others are shown as stored)
BAND_LABELS = {"blue": "blue", "green": "green", "red": "red", "nir": "NIR"}
#: display names of metrics (others are shown as their registry name)
METRIC_LABELS = {"psnr": "PSNR", "ssim": "SSIM", "sam": "SAM", "ergas": "ERGAS", "cpsnr": "cPSNR",
                 "lpips": "LPIPS", "lpips_sat": "LPIPS-Sat"}


def metric_label(name: str, band: str | None = None) -> str:
    """The display name of a metric; with ``band``, the band it was scored on ("PSNR, NIR band",
    "PSNR, all bands") for chart titles and axes."""
    label = METRIC_LABELS.get(name, name)
    if band is None:
        return label
    return f"{label}, all bands" if band == "all" else f"{label}, {BAND_LABELS.get(band, band)} band"


def metric_unit(name: str) -> str:
    """The unit declared in the metric registry ("" when unknown or unit-less)."""
    from mindgap_core.metrics.registry import METRICS

    spec = METRICS.get(name)
    return spec.unit if spec is not None else ""


def metric_caption(name: str) -> None:
    """One caption line: the metric's direction and description from the registry."""
    from mindgap_core.metrics.registry import METRICS

    spec = METRICS.get(name)
    if spec is None:
        st.caption(f"{md_escape(name)}: not in MindGap's metric registry.")
        return
    direction = "higher is better" if spec.higher_better else "lower is better"
    st.caption(f"**{metric_label(name)}** ({direction}{', ' + spec.unit if spec.unit else ''}): "
               f"{md_escape(spec.description)}")
