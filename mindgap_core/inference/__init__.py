"""Tiled, georeferenced super-resolution inference with per-pixel uncertainty."""

from mindgap_core.inference.blend import GUARD_WEIGHT, taper_1d, tile_starts, tile_weights
from mindgap_core.inference.tiled import InferenceResult, run_inference, tile_seed

__all__ = [
    "GUARD_WEIGHT",
    "InferenceResult",
    "run_inference",
    "taper_1d",
    "tile_seed",
    "tile_starts",
    "tile_weights",
]
