"""Degradations: HR reflectance -> LR, synthetic (known operator) or simulated cross-sensor (demo only).

``SYNTHETIC_DEGRADATIONS`` maps names to array functions (:mod:`.synthetic`); the simulated
Sentinel-2-like generator lives in :mod:`.sensor_sim`; :func:`degrade_raster` applies either to a
:class:`~mindgap_core.types.GeoRaster`.
"""

from mindgap_core.degrade.apply import DEGRADATION_METHODS, SIMULATED_METHOD, degrade_raster
from mindgap_core.degrade.sensor_config import EFFECTS, SimulatorConfig
from mindgap_core.degrade.sensor_params import SimulatorParams, params_for_tile, sample_params
from mindgap_core.degrade.sensor_sim import simulate_cross_sensor
from mindgap_core.degrade.synthetic import SYNTHETIC_DEGRADATIONS, NoiseConfig, add_noise

__all__ = [
    "DEGRADATION_METHODS", "EFFECTS", "SIMULATED_METHOD", "SYNTHETIC_DEGRADATIONS", "NoiseConfig",
    "SimulatorConfig", "SimulatorParams", "add_noise", "degrade_raster", "params_for_tile", "sample_params",
    "simulate_cross_sensor",
]
