"""Scoring functions of the built-in metrics: ScoreBatch in, MetricValues out.

Each function adapts one metric of :mod:`~mindgap_core.metrics.pixel`, :mod:`~mindgap_core.metrics.ssim`,
:mod:`~mindgap_core.metrics.lpips_std`, :mod:`~mindgap_core.metrics.lpips_sat` or
:mod:`~mindgap_core.metrics.opensr` to the engine's batch interface; :data:`METRICS` in
:mod:`mindgap_core.metrics.registry` names them. HR-referenced metrics score the SR after the optional
histogram matching (``batch.sr_matched``); opensr-test's scores never do (consistency is about the
SR-LR agreement, synthesis and correctness harmonise the SR themselves), and say so in their options.
"""

from __future__ import annotations

from mindgap_core.metrics import opensr, pixel, uncertainty
from mindgap_core.metrics.batch import MetricValues, ScoreBatch
from mindgap_core.metrics.lpips_sat import lpips_sat_score
from mindgap_core.metrics.lpips_std import lpips_score
from mindgap_core.metrics.ssim import ssim as ssim_per_band

#: PSNR/cPSNR of identical images are capped here so that every score is finite
PSNR_CAP_DB = 100.0


def psnr(b: ScoreBatch) -> MetricValues:
    per_band, overall = pixel.psnr(b.sr_matched, b.hr, b.options.data_range, b.valid)
    return MetricValues(overall.clamp(max=PSNR_CAP_DB), per_band.clamp(max=PSNR_CAP_DB))


def ssim(b: ScoreBatch) -> MetricValues:
    per_band = ssim_per_band(b.sr_matched, b.hr, b.options.data_range, b.valid)
    return MetricValues(per_band.mean(dim=1), per_band)


def sam(b: ScoreBatch) -> MetricValues:
    return MetricValues(pixel.sam(b.sr_matched, b.hr, b.valid))


def ergas(b: ScoreBatch) -> MetricValues:
    return MetricValues(pixel.ergas(b.sr_matched, b.hr, float(b.scale), b.valid))


def cpsnr(b: ScoreBatch) -> MetricValues:
    k = b.options.cpsnr_max_shift
    per_band = pixel.cpsnr(b.sr_matched, b.hr, k, b.options.data_range, b.valid).clamp(max=PSNR_CAP_DB)
    return MetricValues(per_band.mean(dim=1), per_band, {"cpsnr_max_shift": int(k)})


def lpips(b: ScoreBatch) -> MetricValues:
    model = b.models["lpips"]
    values = b.chunked(lambda x, y: lpips_score(model, x, y, b.band_names, b.options.data_range),
                       b.sr_matched, b.hr)
    return MetricValues(values, None, {"lpips_trunk": model.trunk,
                                       "lpips_view": "red,green,blue scaled to [-1, 1]"})


def lpips_sat(b: ScoreBatch) -> MetricValues:
    model = b.models["lpips_sat"]
    values = b.chunked(lambda x, y: lpips_sat_score(model, x, y, b.band_names, b.options.data_range),
                       b.sr_matched, b.hr)
    return MetricValues(values, None, {"lpips_sat_backbone": model.backbone_id})


def _opensr(b: ScoreBatch, name: str) -> MetricValues:
    """One opensr-test score; consistency, the harmonised SR (shared by synthesis and correctness) and
    correctness are each computed once per batch."""
    o = b.options.opensr
    if name in opensr.CONSISTENCY:
        scores = b.shared("opensr_consistency", lambda: opensr.consistency(b.sr, b.lr, b.scale, b.rgb_idx, o))
    else:
        h = b.shared("opensr_harmonised", lambda: opensr.harmonised(b.sr, b.lr, b.hr, b.scale, o))
        if name == "synthesis":
            scores = {"synthesis": opensr.synthesis_from(h)}
        else:
            scores = b.shared("opensr_correctness", lambda: opensr.correctness_from(h, o))
    return MetricValues(scores[name], None, {"hist_match": "none", **o.as_dict()})


def consistency_reflectance(b: ScoreBatch) -> MetricValues:
    return _opensr(b, "consistency_reflectance")


def consistency_spectral(b: ScoreBatch) -> MetricValues:
    return _opensr(b, "consistency_spectral")


def consistency_spatial(b: ScoreBatch) -> MetricValues:
    return _opensr(b, "consistency_spatial")


def synthesis(b: ScoreBatch) -> MetricValues:
    return _opensr(b, "synthesis")


def improvement(b: ScoreBatch) -> MetricValues:
    return _opensr(b, "improvement")


def omission(b: ScoreBatch) -> MetricValues:
    return _opensr(b, "omission")


def hallucination(b: ScoreBatch) -> MetricValues:
    return _opensr(b, "hallucination")


def _coverages(b: ScoreBatch):
    """Coverage at every stored level, (N, levels), once per batch."""
    from mindgap_core.metrics.registry import COVERAGE_LEVELS

    return b.shared("coverage", lambda: uncertainty.coverages(b.samples, b.hr, COVERAGE_LEVELS, b.valid))


def coverage(b: ScoreBatch) -> dict[str, MetricValues]:
    """Coverage at every level of :data:`~mindgap_core.metrics.registry.COVERAGE_LEVELS` (one function
    for the whole family: the engine picks each metric's entry)."""
    from mindgap_core.metrics.registry import COVERAGE_LEVELS, coverage_metric

    values = _coverages(b)
    opts = {"samples": int(b.samples.shape[1]), "interval": "central, rank-based"}
    return {coverage_metric(p): MetricValues(values[:, i], None, opts) for i, p in enumerate(COVERAGE_LEVELS)}


def calibration_error(b: ScoreBatch) -> MetricValues:
    from mindgap_core.metrics.registry import COVERAGE_LEVELS

    levels = uncertainty.NOMINAL_LEVELS
    values = _coverages(b)[:, [COVERAGE_LEVELS.index(p) for p in levels]]
    error = (values - values.new_tensor(levels)).abs().mean(dim=1)
    return MetricValues(error, None, {"samples": int(b.samples.shape[1]), "levels": list(levels)})


def spread(b: ScoreBatch) -> MetricValues:
    return MetricValues(uncertainty.mean_spread(b.samples, b.valid), None,
                        {"samples": int(b.samples.shape[1])})


def _agreement(b: ScoreBatch):
    return b.shared("agreement", lambda: uncertainty.error_spread_agreement(b.samples, b.hr, b.valid))


def uncertainty_spearman(b: ScoreBatch) -> MetricValues:
    return MetricValues(_agreement(b)[0], None, {"samples": int(b.samples.shape[1])})


def uncertainty_auroc(b: ScoreBatch) -> MetricValues:
    return MetricValues(_agreement(b)[1], None, {"samples": int(b.samples.shape[1]),
                                                 "top_error_fraction": uncertainty.TOP_ERROR_FRACTION})
