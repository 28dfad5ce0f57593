"""What every metric is: a plain dict of declarations, no import-time magic.

Each :class:`MetricSpec` says which direction is better, the value range, which bands it needs,
whether it needs the HR reference (or the LR input), and whether it yields a spatial map. The
engine, the CLI and the dashboard read these declarations; they never guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from mindgap_core.errors import ConfigError
from mindgap_core.types import CANONICAL_BANDS

RGB_BANDS: tuple[str, ...] = ("red", "green", "blue")
ALL_BANDS: tuple[str, ...] = CANONICAL_BANDS


@dataclass(frozen=True)
class MetricSpec:
    """Declaration of one metric.

    ``value_range`` is (low, high); ``None`` stands for an open end. ``bands`` are the canonical
    band names the metric reads (any subset present is scored per band when ``per_band``).
    ``needs_hr``/``needs_lr``: which references must be given. ``spatial_map``: whether
    :mod:`mindgap_core.metrics.maps` can return a per-pixel raster of it.
    """

    name: str
    higher_better: bool
    value_range: tuple[float | None, float | None]
    bands: tuple[str, ...]
    needs_hr: bool
    needs_lr: bool
    spatial_map: bool
    per_band: bool
    unit: str
    description: str


METRICS: dict[str, MetricSpec] = {
    "psnr": MetricSpec(
        "psnr", True, (0.0, None), ALL_BANDS, True, False, False, True, "dB",
        "Peak signal-to-noise ratio on reflectance (data range option); 'all' is the PSNR of the "
        "MSE over every band (skimage's multichannel convention).",
    ),
    "ssim": MetricSpec(
        "ssim", True, (-1.0, 1.0), ALL_BANDS, True, False, True, True, "",
        "Structural similarity, Gaussian window sigma 1.5 (11 px), population covariance, "
        "border of 5 px excluded from the mean, exactly as skimage; 'all' is the band mean.",
    ),
    "sam": MetricSpec(
        "sam", False, (0.0, 180.0), ALL_BANDS, True, False, True, False, "degrees",
        "Spectral angle mapper: mean per-pixel angle between SR and HR spectra.",
    ),
    "ergas": MetricSpec(
        "ergas", False, (0.0, None), ALL_BANDS, True, False, False, False, "",
        "ERGAS = 100 / scale * sqrt(mean_b (RMSE_b / mean(HR_b))^2); needs the scale factor.",
    ),
    "cpsnr": MetricSpec(
        "cpsnr", True, (0.0, None), ALL_BANDS, True, False, False, True, "dB",
        "Shift- and bias-tolerant PSNR (PROBA-V challenge): best PSNR over integer shifts within "
        "+-k px, after removing the mean bias, on the central crop; 'all' is the band mean.",
    ),
    "lpips": MetricSpec(
        "lpips", False, (0.0, None), RGB_BANDS, True, False, True, False, "",
        "LPIPS (lpips package, AlexNet + v0.1 linear heads) on the red/green/blue view scaled "
        "from [0, data_range] to [-1, 1]; needs user-supplied ImageNet AlexNet weights.",
    ),
    "lpips_sat": MetricSpec(
        "lpips_sat", False, (0.0, None), ALL_BANDS, True, False, True, False, "",
        "LPIPS formula on a 4-band (B, G, R, NIR) encoder self-supervised on satellite imagery "
        "(MindGap's shipped SimSiam backbone, or user-supplied SSL4EO-S12 weights).",
    ),
    "consistency_reflectance": MetricSpec(
        "consistency_reflectance", False, (0.0, None), ALL_BANDS, False, True, False, False,
        "reflectance",
        "opensr-test consistency: mean absolute difference between LR and the SR degraded to "
        "the LR grid (bilinear, antialiased).",
    ),
    "consistency_spectral": MetricSpec(
        "consistency_spectral", False, (0.0, 180.0), ALL_BANDS, False, True, False, False,
        "degrees",
        "opensr-test consistency: mean spectral angle between LR and the degraded SR.",
    ),
    "consistency_spatial": MetricSpec(
        "consistency_spatial", False, (0.0, None), RGB_BANDS, False, True, False, False,
        "LR pixels",
        "opensr-test consistency: shift (phase correlation, sub-pixel) between LR and the "
        "degraded SR, as a distance in LR pixels.",
    ),
    "synthesis": MetricSpec(
        "synthesis", True, (0.0, None), ALL_BANDS, True, True, False, False, "reflectance",
        "opensr-test synthesis: mean absolute difference between the LR upsampled bilinearly and the "
        "SR harmonised to HR (histogram-matched, aligned): the detail the SR adds over bilinear. "
        "Higher is better per opensr-test's README; it also grows with hallucinated detail, so read "
        "it with hallucination.",
    ),
    "improvement": MetricSpec(
        "improvement", True, (0.0, 1.0), ALL_BANDS, True, True, False, False, "fraction",
        "opensr-test correctness: soft fraction of high-frequency pixels where the SR moved "
        "toward HR (softmin over improvement/omission/hallucination distances).",
    ),
    "omission": MetricSpec(
        "omission", False, (0.0, 1.0), ALL_BANDS, True, True, False, False, "fraction",
        "opensr-test correctness: soft fraction of pixels where the SR stayed like the LR.",
    ),
    "hallucination": MetricSpec(
        "hallucination", False, (0.0, 1.0), ALL_BANDS, True, True, False, False, "fraction",
        "opensr-test correctness: soft fraction of pixels far from both HR and LR.",
    ),
}

#: The metrics scored when the user names none (LPIPS joins when its weights are present).
DEFAULT_METRICS: tuple[str, ...] = (
    "psnr", "ssim", "sam", "ergas", "cpsnr", "lpips", "lpips_sat",
    "consistency_reflectance", "consistency_spectral", "consistency_spatial", "synthesis",
    "improvement", "omission", "hallucination",
)


def get_metric(name: str) -> MetricSpec:
    """The declaration of ``name``; :class:`ConfigError` listing the known names otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise ConfigError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def parse_metric_list(text: str | None) -> tuple[str, ...]:
    """Parse a comma-separated metric list (None or "" → all defaults), validating each name."""
    if not text:
        return DEFAULT_METRICS
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    for n in names:
        get_metric(n)
    return tuple(dict.fromkeys(names))
