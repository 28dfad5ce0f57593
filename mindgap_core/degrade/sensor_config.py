"""Configuration of the simulated cross-sensor generator: which effects are on, and how strong.

:class:`SimulatorConfig` holds one frozen dataclass per effect of :data:`EFFECTS`, each with ``enabled``
and the ranges its per-tile values are drawn from (see :mod:`mindgap_core.degrade.sensor_params`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mindgap_core.errors import ConfigError

#: the switchable effects (names fixed; the order they are applied in is given in sensor_sim)
EFFECTS: tuple[str, ...] = ("mtf", "spectral", "radiometric", "temporal", "misregistration", "noise")


def jsonable(value: Any) -> Any:
    """``value`` with tuples as lists and numpy scalars as Python numbers (JSON-safe)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool):
        return value
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        return value.item()
    return value


def _check_range(name: str, value: tuple[float, float], low: float, high: float) -> None:
    lo, hi = value
    if not (low <= lo <= hi <= high):
        raise ConfigError(f"{name} must satisfy {low} <= min <= max <= {high}, got {tuple(value)}")


@dataclass(frozen=True)
class MTFConfig:
    """Gaussian PSF; MTF at the LR Nyquist frequency drawn uniformly in ``mtf_nyquist_range``."""

    enabled: bool = True
    mtf_nyquist_range: tuple[float, float] = (0.25, 0.35)

    def __post_init__(self) -> None:
        _check_range("mtf.mtf_nyquist_range", self.mtf_nyquist_range, 1e-6, 1 - 1e-6)


@dataclass(frozen=True)
class SpectralConfig:
    """Band mixing (base matrix + uniform jitter of ±``mixing_jitter`` between adjacent bands, rows
    renormalised to sum 1) and per-band gain/offset."""

    enabled: bool = True
    mixing_jitter: float = 0.02
    gain_range: tuple[float, float] = (0.95, 1.05)
    offset_range: tuple[float, float] = (-0.01, 0.01)

    def __post_init__(self) -> None:
        if not 0 <= self.mixing_jitter <= 0.5:
            raise ConfigError(f"spectral.mixing_jitter must be in [0, 0.5], got {self.mixing_jitter}")
        _check_range("spectral.gain_range", self.gain_range, 0.0, 10.0)
        _check_range("spectral.offset_range", self.offset_range, -1.0, 1.0)


@dataclass(frozen=True)
class RadiometricConfig:
    """Global gain/offset and additive haze (``haze_range``: haze reflectance in blue at its maximum)."""

    enabled: bool = True
    gain_range: tuple[float, float] = (0.9, 1.1)
    offset_range: tuple[float, float] = (-0.01, 0.01)
    haze_range: tuple[float, float] = (0.005, 0.03)
    angstrom_range: tuple[float, float] = (1.0, 2.0)
    haze_waves: int = 3
    haze_max_frequency: float = 1.0  # cycles per image: haze is smooth over a tile

    def __post_init__(self) -> None:
        _check_range("radiometric.gain_range", self.gain_range, 0.0, 10.0)
        _check_range("radiometric.offset_range", self.offset_range, -1.0, 1.0)
        _check_range("radiometric.haze_range", self.haze_range, 0.0, 1.0)
        _check_range("radiometric.angstrom_range", self.angstrom_range, 0.0, 5.0)
        if self.haze_waves < 1 or self.haze_max_frequency < 0:
            raise ConfigError("radiometric.haze_waves must be >= 1 and haze_max_frequency >= 0")


@dataclass(frozen=True)
class TemporalConfig:
    """Phenology (``greening``: relative NIR increase / red decrease in fully vegetated pixels, NDVI
    ramp ``ndvi_ramp``) and changed objects (count and side, as a fraction of the image side)."""

    enabled: bool = True
    greening_range: tuple[float, float] = (-0.2, 0.2)
    ndvi_ramp: tuple[float, float] = (0.2, 0.5)
    objects_range: tuple[int, int] = (1, 3)
    object_size_range: tuple[float, float] = (0.05, 0.2)
    reflectance_jitter: float = 0.15

    def __post_init__(self) -> None:
        _check_range("temporal.greening_range", self.greening_range, -0.9, 0.9)
        _check_range("temporal.ndvi_ramp", self.ndvi_ramp, -1.0, 1.0)
        if self.ndvi_ramp[0] >= self.ndvi_ramp[1]:
            raise ConfigError(f"temporal.ndvi_ramp must be increasing, got {self.ndvi_ramp}")
        _check_range("temporal.objects_range", self.objects_range, 0, 100)
        _check_range("temporal.object_size_range", self.object_size_range, 0.0, 1.0)
        if not 0 <= self.reflectance_jitter < 1:
            raise ConfigError(f"temporal.reflectance_jitter must be in [0, 1), got {self.reflectance_jitter}")


@dataclass(frozen=True)
class MisregistrationConfig:
    """Global shift uniform in ±``max_shift_lr`` LR pixels per axis, plus a smooth zero-mean warp whose
    amplitude is uniform in [0, ``max_warp_lr``] LR pixels."""

    enabled: bool = True
    max_shift_lr: float = 0.5
    max_warp_lr: float = 0.1
    warp_waves: int = 2
    warp_max_frequency: float = 1.0  # cycles per image

    def __post_init__(self) -> None:
        if self.max_shift_lr < 0 or self.max_warp_lr < 0 or self.warp_max_frequency < 0:
            raise ConfigError("misregistration shift, warp and frequency limits must be >= 0")
        if self.warp_waves < 1:
            raise ConfigError(f"misregistration.warp_waves must be >= 1, got {self.warp_waves}")


@dataclass(frozen=True)
class SensorNoiseConfig:
    """Shot + read noise (reflectance units) and quantisation (ADC bits, then L2A DN/10000 storage)."""

    enabled: bool = True
    read_sigma_range: tuple[float, float] = (0.0005, 0.0015)
    shot_sigma_range: tuple[float, float] = (0.002, 0.005)
    quantize: bool = True
    bit_depth: int = 12
    saturation_reflectance: float = 1.0
    quantification_value: float = 10000.0

    def __post_init__(self) -> None:
        _check_range("noise.read_sigma_range", self.read_sigma_range, 0.0, 1.0)
        _check_range("noise.shot_sigma_range", self.shot_sigma_range, 0.0, 1.0)
        if not 1 <= self.bit_depth <= 32:
            raise ConfigError(f"noise.bit_depth must be in 1..32, got {self.bit_depth}")
        if self.saturation_reflectance <= 0 or self.quantification_value <= 0:
            raise ConfigError("noise.bit_depth must be in 1..32, saturation and quantification value > 0")


_EFFECT_CONFIG_TYPES: dict[str, type] = {
    "mtf": MTFConfig,
    "spectral": SpectralConfig,
    "radiometric": RadiometricConfig,
    "temporal": TemporalConfig,
    "misregistration": MisregistrationConfig,
    "noise": SensorNoiseConfig,
}


def check_effects(effects: Iterable[str]) -> tuple[str, ...]:
    effects = tuple(effects)
    unknown = [e for e in effects if e not in EFFECTS]
    if unknown:
        raise ConfigError(f"unknown simulator effect(s) {unknown}; known: {', '.join(EFFECTS)}")
    return effects


@dataclass(frozen=True)
class SimulatorConfig:
    """Which effects are on and how strong they may be (ranges the per-tile values are drawn from)."""

    mtf: MTFConfig = field(default_factory=MTFConfig)
    spectral: SpectralConfig = field(default_factory=SpectralConfig)
    radiometric: RadiometricConfig = field(default_factory=RadiometricConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    misregistration: MisregistrationConfig = field(default_factory=MisregistrationConfig)
    noise: SensorNoiseConfig = field(default_factory=SensorNoiseConfig)

    @property
    def enabled_effects(self) -> tuple[str, ...]:
        return tuple(e for e in EFFECTS if getattr(self, e).enabled)

    def with_enabled(self, effects: Iterable[str], enabled: bool) -> SimulatorConfig:
        """A copy with ``effects`` switched on (``enabled=True``) or off; strengths unchanged."""
        changes = {e: replace(getattr(self, e), enabled=enabled) for e in check_effects(effects)}
        return replace(self, **changes)

    def with_only(self, *effects: str) -> SimulatorConfig:
        """A copy where only ``effects`` are on."""
        return self.with_enabled(EFFECTS, False).with_enabled(effects, True)

    def without(self, *effects: str) -> SimulatorConfig:
        """A copy with ``effects`` switched off."""
        return self.with_enabled(effects, False)

    @classmethod
    def all_off(cls) -> SimulatorConfig:
        """Default strengths, every effect off (the simulator is then plain area downsampling)."""
        return cls().with_enabled(EFFECTS, False)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {e: jsonable(asdict(getattr(self, e))) for e in EFFECTS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> SimulatorConfig:
        check_effects(data)
        kwargs = {}
        for effect, values in data.items():
            effect_type = _EFFECT_CONFIG_TYPES[effect]
            fields = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
            kwargs[effect] = effect_type(**fields)
        return cls(**kwargs)
