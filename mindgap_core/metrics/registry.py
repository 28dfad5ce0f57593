"""What every metric is and how it is scored: a plain dict of declarations, no import-time magic.

Each :class:`MetricSpec` says which direction is better, the value range, which bands it needs,
whether it needs the HR reference (or the LR input, or the scale), whether it yields a spatial map,
its display label, and its scoring function. The engine (:mod:`mindgap_core.metrics.engine`), the
CLI and the dashboard read these declarations; they never guess.

The scoring function takes a :class:`~mindgap_core.metrics.batch.ScoreBatch` and returns
:class:`~mindgap_core.metrics.batch.MetricValues`. It is given as ``"module:function"`` so that this
module stays light (the dashboard reads labels and directions without importing torch); a callable
works too. Adding a metric = one module with its scoring function + one entry in :data:`METRICS`
(the built-in metrics' functions live in :mod:`mindgap_core.metrics.scorers`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mindgap_core.errors import ConfigError
from mindgap_core.types import CANONICAL_BANDS

RGB_BANDS: tuple[str, ...] = ("red", "green", "blue")
ALL_BANDS: tuple[str, ...] = CANONICAL_BANDS
_SCORERS = "mindgap_core.metrics.scorers"


@dataclass(frozen=True)
class MetricSpec:
    """Declaration of one metric.

    ``value_range`` is (low, high); ``None`` stands for an open end. ``bands`` are the canonical
    band names the metric reads (any subset present is scored per band when ``per_band``).
    ``needs_hr``/``needs_lr``/``needs_scale``/``needs_rgb``: which inputs must be given;
    ``needs_samples``: it scores the N samples of a stochastic model (not defined for one sample or a
    deterministic model, which are skipped with a "no uncertainty" note, never an error).
    ``spatial_map``: whether :mod:`mindgap_core.metrics.maps` can return a per-pixel raster of it.
    ``model``: the network the engine must load for it (``"lpips"``, ``"lpips_sat"``) or None.
    ``score``: ``"module:function"`` (or a callable) mapping a ScoreBatch to MetricValues.
    """

    name: str
    label: str
    higher_better: bool
    value_range: tuple[float | None, float | None]
    bands: tuple[str, ...]
    needs_hr: bool
    needs_lr: bool
    spatial_map: bool
    per_band: bool
    unit: str
    description: str
    score: str | Callable[..., Any]
    needs_scale: bool = False
    needs_rgb: bool = False
    model: str | None = None
    needs_samples: bool = False

    def scorer(self) -> Callable[..., Any]:
        """The scoring function (imported on first use when given as ``"module:function"``)."""
        if callable(self.score):
            return self.score
        module, _, func = self.score.partition(":")
        try:
            return getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"metric {self.name!r}: scoring function {self.score!r} not found ({exc})") \
                from None


def _builtin(name: str) -> str:
    return f"{_SCORERS}:{name}"


METRICS: dict[str, MetricSpec] = {
    "psnr": MetricSpec(
        "psnr", "PSNR", True, (0.0, None), ALL_BANDS, True, False, False, True, "dB",
        "Peak signal-to-noise ratio on reflectance (data range option); 'all' is the PSNR of the "
        "MSE over every band (skimage's multichannel convention).",
        _builtin("psnr"),
    ),
    "ssim": MetricSpec(
        "ssim", "SSIM", True, (-1.0, 1.0), ALL_BANDS, True, False, True, True, "",
        "Structural similarity, Gaussian window sigma 1.5 (11 px), population covariance, "
        "border of 5 px excluded from the mean, exactly as skimage; 'all' is the band mean.",
        _builtin("ssim"),
    ),
    "sam": MetricSpec(
        "sam", "SAM", False, (0.0, 180.0), ALL_BANDS, True, False, True, False, "degrees",
        "Spectral angle mapper: mean per-pixel angle between SR and HR spectra.",
        _builtin("sam"),
    ),
    "ergas": MetricSpec(
        "ergas", "ERGAS", False, (0.0, None), ALL_BANDS, True, False, False, False, "",
        "ERGAS = 100 / scale * sqrt(mean_b (RMSE_b / mean(HR_b))^2); needs the scale factor.",
        _builtin("ergas"), needs_scale=True,
    ),
    "cpsnr": MetricSpec(
        "cpsnr", "cPSNR", True, (0.0, None), ALL_BANDS, True, False, False, True, "dB",
        "Shift- and bias-tolerant PSNR (PROBA-V challenge): best PSNR over integer shifts within "
        "+-k px, after removing the mean bias, on the central crop; 'all' is the band mean.",
        _builtin("cpsnr"),
    ),
    "lpips": MetricSpec(
        "lpips", "LPIPS", False, (0.0, None), RGB_BANDS, True, False, True, False, "",
        "LPIPS (lpips package, AlexNet + v0.1 linear heads) on the red/green/blue view scaled "
        "from [0, data_range] to [-1, 1]. Needs torchvision's ImageNet AlexNet weights "
        "(alexnet-owt-7be5be79.pth) in $TORCH_HOME/hub/checkpoints/ or given as a path; without "
        "them LPIPS is not scored (MindGap never downloads them and never uses a random trunk).",
        _builtin("lpips"), needs_rgb=True, model="lpips",
    ),
    "lpips_sat": MetricSpec(
        "lpips_sat", "LPIPS-Sat", False, (0.0, None), ALL_BANDS, True, False, True, False, "",
        "LPIPS formula on a 4-band (B, G, R, NIR) encoder self-supervised on satellite imagery "
        "(MindGap's shipped SimSiam backbone, or user-supplied SSL4EO-S12 weights).",
        _builtin("lpips_sat"), model="lpips_sat",
    ),
    "consistency_reflectance": MetricSpec(
        "consistency_reflectance", "Consistency: reflectance", False, (0.0, None), ALL_BANDS, False,
        True, False, False, "reflectance",
        "opensr-test consistency: mean absolute difference between LR and the SR degraded to "
        "the LR grid (bilinear, antialiased).",
        _builtin("consistency_reflectance"), needs_scale=True,
    ),
    "consistency_spectral": MetricSpec(
        "consistency_spectral", "Consistency: spectral", False, (0.0, 180.0), ALL_BANDS, False, True,
        False, False, "degrees",
        "opensr-test consistency: mean spectral angle between LR and the degraded SR.",
        _builtin("consistency_spectral"), needs_scale=True,
    ),
    "consistency_spatial": MetricSpec(
        "consistency_spatial", "Consistency: spatial", False, (0.0, None), RGB_BANDS, False, True,
        False, False, "LR pixels",
        "opensr-test consistency: shift (phase correlation, sub-pixel) between LR and the "
        "degraded SR, as a distance in LR pixels.",
        _builtin("consistency_spatial"), needs_scale=True, needs_rgb=True,
    ),
    "synthesis": MetricSpec(
        "synthesis", "Synthesis", True, (0.0, None), ALL_BANDS, True, True, False, False, "reflectance",
        "opensr-test synthesis: mean absolute difference between the LR upsampled bilinearly and the "
        "SR harmonised to HR (histogram-matched, aligned): the detail the SR adds over bilinear. "
        "Higher is better per opensr-test's README; it also grows with hallucinated detail, so read "
        "it with hallucination.",
        _builtin("synthesis"), needs_scale=True,
    ),
    "improvement": MetricSpec(
        "improvement", "Correctness: improvement", True, (0.0, 1.0), ALL_BANDS, True, True, False,
        False, "fraction",
        "opensr-test correctness: soft fraction of high-frequency pixels where the SR moved "
        "toward HR (softmin over improvement/omission/hallucination distances).",
        _builtin("improvement"), needs_scale=True,
    ),
    "omission": MetricSpec(
        "omission", "Correctness: omission", False, (0.0, 1.0), ALL_BANDS, True, True, False, False,
        "fraction",
        "opensr-test correctness: soft fraction of pixels where the SR stayed like the LR.",
        _builtin("omission"), needs_scale=True,
    ),
    "hallucination": MetricSpec(
        "hallucination", "Correctness: hallucination", False, (0.0, 1.0), ALL_BANDS, True, True, False,
        False, "fraction",
        "opensr-test correctness: soft fraction of pixels far from both HR and LR.",
        _builtin("hallucination"), needs_scale=True,
    ),
}

#: nominal levels of the stored coverage scores (a reliability curve; 50/80/90/95 % are the headline)
COVERAGE_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def coverage_metric(level: float) -> str:
    """Registry name of the coverage score at a nominal level, e.g. ``coverage_90``."""
    return f"coverage_{round(level * 100):02d}"


METRICS.update({
    coverage_metric(p): MetricSpec(
        coverage_metric(p), f"Coverage {round(p * 100)} %", True, (0.0, 1.0), ALL_BANDS, True, False,
        False, False, "fraction",
        f"Share of HR values inside the central {round(p * 100)} % interval of the model's samples "
        "(rank-based, exact for any number of samples when the HR behaves like one more sample). "
        f"Calibrated = {p:g}; below = over-confident. Closer to {p:g} is better (see calibration_error).",
        f"{_SCORERS}:coverage", needs_samples=True,
    )
    for p in COVERAGE_LEVELS
})
METRICS.update({
    "calibration_error": MetricSpec(
        "calibration_error", "Calibration error", False, (0.0, 1.0), ALL_BANDS, True, False, False, False,
        "fraction",
        "Mean |coverage - nominal| over the 50, 80, 90 and 95 % central sample intervals (0 = calibrated).",
        _builtin("calibration_error"), needs_samples=True,
    ),
    "spread": MetricSpec(
        "spread", "Spread", False, (0.0, None), ALL_BANDS, True, False, False, False, "reflectance",
        "Sharpness: mean per-pixel standard deviation of the samples (lower = sharper; only a virtue "
        "when coverage is nominal).",
        _builtin("spread"), needs_samples=True,
    ),
    "uncertainty_spearman": MetricSpec(
        "uncertainty_spearman", "Error-spread Spearman", True, (-1.0, 1.0), ALL_BANDS, True, False, False,
        False, "",
        "Spearman rank correlation of the per-pixel |sample mean - HR| with the per-pixel spread.",
        _builtin("uncertainty_spearman"), needs_samples=True,
    ),
    "uncertainty_auroc": MetricSpec(
        "uncertainty_auroc", "Error-spread AUROC", True, (0.0, 1.0), ALL_BANDS, True, False, False, False,
        "",
        "AUROC of the per-pixel spread for detecting the 10 % of pixels (and bands) with the largest "
        "|sample mean - HR| (0.5 = uninformative, 1 = perfect).",
        _builtin("uncertainty_auroc"), needs_samples=True,
    ),
})
#: the calibration scores (computed from N samples; absent for deterministic models)
UNCERTAINTY_METRICS: tuple[str, ...] = tuple(n for n, s in METRICS.items() if s.needs_samples)

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


#: display names of bands (others are shown as stored)
BAND_LABELS = {"blue": "blue", "green": "green", "red": "red", "nir": "NIR"}


def metric_label(name: str, band: str | None = None) -> str:
    """The display label of a metric (its name when it is not in the registry); with ``band``, the band
    it was scored on ("PSNR, NIR band", "PSNR, all bands") for chart titles and axes."""
    spec = METRICS.get(name)
    label = spec.label if spec is not None else name
    if band is None:
        return label
    return f"{label}, all bands" if band == "all" else f"{label}, {BAND_LABELS.get(band, band)} band"


def parse_metric_list(text: str | None) -> tuple[str, ...]:
    """Parse a comma-separated metric list (None or "" → all defaults), validating each name."""
    if not text:
        return DEFAULT_METRICS
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    for n in names:
        get_metric(n)
    return tuple(dict.fromkeys(names))
