"""Metrics: reference-exact pixel metrics, LPIPS, LPIPS-Sat, opensr-test-style scores, spatial maps.

Modules, one job each: ``registry`` (what every metric is), ``pixel`` (PSNR, SAM, ERGAS, cPSNR,
histogram matching), ``ssim``, ``lpips_std`` (the ``lpips`` package), ``lpips_sat`` (our satellite
LPIPS), ``opensr`` (consistency, correctness), ``maps`` (georeferenced per-pixel maps) and ``engine``
(the batched evaluator). Import torch-backed modules directly, e.g.
``from mindgap_core.metrics.engine import Evaluator``.
"""

from __future__ import annotations

from mindgap_core.metrics.registry import DEFAULT_METRICS, METRICS, MetricSpec, get_metric, parse_metric_list

__all__ = ["DEFAULT_METRICS", "METRICS", "MetricSpec", "get_metric", "parse_metric_list"]
