"""Per-tile parameters of the simulated cross-sensor generator: dataclasses, JSON, seeded sampling.

A :class:`SimulatorParams` holds the concrete values drawn for one tile (``None`` for an effect that is
off); it is all :func:`~mindgap_core.degrade.sensor_sim.simulate_cross_sensor` needs and round-trips
through JSON for the manifest. Spatial values are resolution-free (fractions of the image, LR pixels),
so the same params apply at any tile size and scale. Each effect draws from its own random stream, so
switching one effect off leaves the values drawn for the others unchanged (gap attribution by effect).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mindgap_core.degrade.sensor_config import (
    EFFECTS,
    MisregistrationConfig,
    MTFConfig,
    RadiometricConfig,
    SensorNoiseConfig,
    SimulatorConfig,
    SpectralConfig,
    TemporalConfig,
    check_effects,
    jsonable,
)
from mindgap_core.errors import ConfigError
from mindgap_core.types import CANONICAL_BANDS

#: (centre nm, FWHM nm) of PlanetScope SuperDove's 4-band product (blue, green II, red, NIR)
PLANETSCOPE_SRF: dict[str, tuple[float, float]] = {
    "blue": (490.0, 50.0),
    "green": (565.0, 36.0),
    "red": (665.0, 31.0),
    "nir": (865.0, 40.0),
}
#: (centre nm, FWHM nm) of Sentinel-2A MSI B2, B3, B4, B8
SENTINEL2_SRF: dict[str, tuple[float, float]] = {
    "blue": (492.4, 66.0),
    "green": (559.8, 36.0),
    "red": (664.6, 31.0),
    "nir": (832.8, 106.0),
}

#: reflectance (blue, green, red, nir) of surfaces that appear/disappear between acquisitions (our choice)
CHANGE_PALETTE: dict[str, tuple[float, float, float, float]] = {
    "bright_roof": (0.30, 0.32, 0.34, 0.36),
    "asphalt": (0.06, 0.07, 0.08, 0.10),
    "bare_soil": (0.08, 0.12, 0.17, 0.24),
    "vegetation": (0.03, 0.07, 0.04, 0.40),
    "water": (0.06, 0.05, 0.03, 0.01),
    "shadow": (0.02, 0.02, 0.02, 0.03),
}


@dataclass(frozen=True)
class Wave:
    """One term ``weight · cos(2π (fx·u + fy·v) + phase)`` of a smooth field; u, v in [0, 1] across
    the image (columns, rows), frequencies in cycles per image."""

    fx: float
    fy: float
    phase: float
    weight: float


@dataclass(frozen=True)
class MTFParams:
    mtf_nyquist: float


@dataclass(frozen=True)
class SpectralParams:
    """``out_i = gains_i · Σ_j matrix_ij · in_j + offsets_i`` (canonical band order)."""

    matrix: tuple[tuple[float, ...], ...]
    gains: tuple[float, ...]
    offsets: tuple[float, ...]


@dataclass(frozen=True)
class RadiometricParams:
    """``out_b = gain · in_b + offset + haze · (λ_blue/λ_b)^angstrom_exponent · (0.5 + 0.5 s(u, v))``
    with ``s`` the haze waves' sum normalised to [-1, 1]."""

    gain: float
    offset: float
    haze: float
    angstrom_exponent: float
    haze_waves: tuple[Wave, ...]


@dataclass(frozen=True)
class ChangedObject:
    """An object present at one acquisition only; centre (x, y) and size as fractions of the image."""

    kind: str
    shape: str  # "rectangle" | "ellipse"
    x: float
    y: float
    width: float
    height: float
    reflectance: tuple[float, ...]  # canonical band order


@dataclass(frozen=True)
class TemporalParams:
    greening: float
    ndvi_low: float
    ndvi_high: float
    objects: tuple[ChangedObject, ...]


@dataclass(frozen=True)
class MisregistrationParams:
    """Shift (dx, dy) in LR pixels (+dx: content moves right/east, +dy: down/south) and a zero-mean
    warp of amplitude ``warp_amplitude`` LR pixels shaped by ``warp_x``/``warp_y`` waves."""

    dx: float
    dy: float
    warp_amplitude: float
    warp_x: tuple[Wave, ...]
    warp_y: tuple[Wave, ...]


@dataclass(frozen=True)
class NoiseParams:
    read_sigma: float
    shot_sigma: float
    seed: int
    quantize: bool
    bit_depth: int
    saturation_reflectance: float
    quantification_value: float


_PARAM_TYPES: dict[str, type] = {
    "mtf": MTFParams,
    "spectral": SpectralParams,
    "radiometric": RadiometricParams,
    "temporal": TemporalParams,
    "misregistration": MisregistrationParams,
    "noise": NoiseParams,
}


@dataclass(frozen=True)
class SimulatorParams:
    """The concrete values drawn for one tile; ``None`` for an effect that is off."""

    mtf: MTFParams | None = None
    spectral: SpectralParams | None = None
    radiometric: RadiometricParams | None = None
    temporal: TemporalParams | None = None
    misregistration: MisregistrationParams | None = None
    noise: NoiseParams | None = None

    @property
    def enabled_effects(self) -> tuple[str, ...]:
        return tuple(e for e in EFFECTS if getattr(self, e) is not None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (lists, floats, ints, str, None) for the manifest."""
        return {e: None if getattr(self, e) is None else jsonable(asdict(getattr(self, e))) for e in EFFECTS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimulatorParams:
        check_effects(data)
        try:
            return cls(**{e: None if v is None else _params_from_dict(e, v) for e, v in data.items()})
        except (TypeError, KeyError, ValueError) as exc:
            raise ConfigError(f"invalid simulator parameters: {exc}") from None


def _waves(items: Iterable[Mapping[str, Any]]) -> tuple[Wave, ...]:
    return tuple(Wave(**{k: float(v) for k, v in w.items()}) for w in items)


def _params_from_dict(effect: str, d: Mapping[str, Any]) -> Any:
    if effect == "spectral":
        return SpectralParams(
            matrix=tuple(tuple(float(x) for x in row) for row in d["matrix"]),
            gains=tuple(float(x) for x in d["gains"]),
            offsets=tuple(float(x) for x in d["offsets"]),
        )
    if effect == "radiometric":
        return RadiometricParams(**{**d, "haze_waves": _waves(d["haze_waves"])})
    if effect == "temporal":
        objects = tuple(
            ChangedObject(**{**o, "reflectance": tuple(float(x) for x in o["reflectance"])})
            for o in d["objects"]
        )
        return TemporalParams(**{**d, "objects": objects})
    if effect == "misregistration":
        return MisregistrationParams(**{**d, "warp_x": _waves(d["warp_x"]), "warp_y": _waves(d["warp_y"])})
    return _PARAM_TYPES[effect](**d)


def spectral_base_matrix() -> np.ndarray:
    """4x4 row-stochastic matrix estimating S2 bands from PlanetScope bands (canonical order).

    Entry (i, j) is the overlap of S2 band i's and PlanetScope band j's spectral responses, both
    approximated as Gaussians (centre, FWHM from :data:`SENTINEL2_SRF` / :data:`PLANETSCOPE_SRF`), rows
    normalised so that a spectrally flat surface keeps its reflectance; entries below 1e-4 are set to
    0. Our approximation.
    """
    fwhm_to_sigma = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    matrix = np.zeros((4, 4))
    for i, s2_band in enumerate(CANONICAL_BANDS):
        mu_s, fw_s = SENTINEL2_SRF[s2_band]
        for j, ps_band in enumerate(CANONICAL_BANDS):
            mu_p, fw_p = PLANETSCOPE_SRF[ps_band]
            var = (fw_s * fwhm_to_sigma) ** 2 + (fw_p * fwhm_to_sigma) ** 2
            matrix[i, j] = math.exp(-((mu_s - mu_p) ** 2) / (2 * var)) / math.sqrt(var)
    matrix = matrix / matrix.sum(axis=1, keepdims=True)
    matrix[matrix < 1e-4] = 0.0
    return matrix / matrix.sum(axis=1, keepdims=True)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _draw_waves(rng: np.random.Generator, count: int, max_frequency: float) -> tuple[Wave, ...]:
    return tuple(
        Wave(
            fx=_uniform(rng, (-max_frequency, max_frequency)),
            fy=_uniform(rng, (-max_frequency, max_frequency)),
            phase=_uniform(rng, (0.0, 2 * math.pi)),
            weight=_uniform(rng, (0.5, 1.0)),
        )
        for _ in range(count)
    )


def _sample_mtf(c: MTFConfig, rng: np.random.Generator) -> MTFParams:
    return MTFParams(mtf_nyquist=_uniform(rng, c.mtf_nyquist_range))


def _sample_spectral(c: SpectralConfig, rng: np.random.Generator) -> SpectralParams:
    matrix = spectral_base_matrix()
    adjacent = np.abs(np.subtract.outer(np.arange(4), np.arange(4))) == 1
    jitter = rng.uniform(-c.mixing_jitter, c.mixing_jitter, size=(4, 4)) * adjacent
    matrix = np.clip(matrix + jitter, 0.0, None)
    matrix = matrix / matrix.sum(axis=1, keepdims=True)
    return SpectralParams(
        matrix=tuple(tuple(float(x) for x in row) for row in matrix),
        gains=tuple(float(x) for x in rng.uniform(*c.gain_range, size=4)),
        offsets=tuple(float(x) for x in rng.uniform(*c.offset_range, size=4)),
    )


def _sample_radiometric(c: RadiometricConfig, rng: np.random.Generator) -> RadiometricParams:
    return RadiometricParams(
        gain=_uniform(rng, c.gain_range),
        offset=_uniform(rng, c.offset_range),
        haze=_uniform(rng, c.haze_range),
        angstrom_exponent=_uniform(rng, c.angstrom_range),
        haze_waves=_draw_waves(rng, c.haze_waves, c.haze_max_frequency),
    )


def _sample_temporal(c: TemporalConfig, rng: np.random.Generator) -> TemporalParams:
    kinds = tuple(CHANGE_PALETTE)
    objects = []
    for _ in range(int(rng.integers(c.objects_range[0], c.objects_range[1] + 1))):
        kind = kinds[int(rng.integers(len(kinds)))]
        width, height = (_uniform(rng, c.object_size_range) for _ in range(2))
        jitter = rng.uniform(1 - c.reflectance_jitter, 1 + c.reflectance_jitter, size=4)
        objects.append(
            ChangedObject(
                kind=kind,
                shape=("rectangle", "ellipse")[int(rng.integers(2))],
                x=_uniform(rng, (width / 2, 1 - width / 2)),
                y=_uniform(rng, (height / 2, 1 - height / 2)),
                width=width,
                height=height,
                reflectance=tuple(float(r * j) for r, j in zip(CHANGE_PALETTE[kind], jitter, strict=True)),
            )
        )
    return TemporalParams(
        greening=_uniform(rng, c.greening_range),
        ndvi_low=float(c.ndvi_ramp[0]),
        ndvi_high=float(c.ndvi_ramp[1]),
        objects=tuple(objects),
    )


def _sample_misregistration(c: MisregistrationConfig, rng: np.random.Generator) -> MisregistrationParams:
    return MisregistrationParams(
        dx=_uniform(rng, (-c.max_shift_lr, c.max_shift_lr)),
        dy=_uniform(rng, (-c.max_shift_lr, c.max_shift_lr)),
        warp_amplitude=_uniform(rng, (0.0, c.max_warp_lr)),
        warp_x=_draw_waves(rng, c.warp_waves, c.warp_max_frequency),
        warp_y=_draw_waves(rng, c.warp_waves, c.warp_max_frequency),
    )


def _sample_noise(c: SensorNoiseConfig, rng: np.random.Generator) -> NoiseParams:
    return NoiseParams(
        read_sigma=_uniform(rng, c.read_sigma_range),
        shot_sigma=_uniform(rng, c.shot_sigma_range),
        seed=int(rng.integers(0, 2**63 - 1)),
        quantize=bool(c.quantize),
        bit_depth=int(c.bit_depth),
        saturation_reflectance=float(c.saturation_reflectance),
        quantification_value=float(c.quantification_value),
    )


_SAMPLERS = {
    "mtf": _sample_mtf,
    "spectral": _sample_spectral,
    "radiometric": _sample_radiometric,
    "temporal": _sample_temporal,
    "misregistration": _sample_misregistration,
    "noise": _sample_noise,
}


def sample_params(config: SimulatorConfig, rng: np.random.Generator) -> SimulatorParams:
    """Draw one tile's parameters. Each effect uses its own child stream of ``rng`` (``rng.spawn``) and
    is drawn even when off, so an effect's values do not depend on which other effects are on."""
    streams = rng.spawn(len(EFFECTS))
    drawn = {e: _SAMPLERS[e](getattr(config, e), s) for e, s in zip(EFFECTS, streams, strict=True)}
    return SimulatorParams(**{e: v if getattr(config, e).enabled else None for e, v in drawn.items()})


def tile_seed(base_seed: int, tile_id: str | int) -> int:
    """A stable 64-bit seed for one tile (SHA-256 of ``base_seed`` and ``tile_id``; not ``hash()``)."""
    digest = hashlib.sha256(f"mindgap-sensor-sim:{int(base_seed)}:{tile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def params_for_tile(config: SimulatorConfig, base_seed: int, tile_id: str | int) -> SimulatorParams:
    """The parameters of tile ``tile_id``: reproducible across runs, machines and Python versions."""
    return sample_params(config, np.random.default_rng(tile_seed(base_seed, tile_id)))
