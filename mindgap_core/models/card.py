"""Model cards: how MindGap runs a super-resolution model it did not train ("bring your own model").

A card is a small YAML or JSON file beside (or naming) the user's model. Example::

    name: edsr-x2-rgbn              # label in tables and pickers (not a MindGap method name)
    format: onnx                    # torchscript | onnx | entry_point
    file: edsr.onnx                 # torchscript/onnx: the model file, relative to the card
    # entry_point: mypkg.sr:build   # entry_point: an importable factory returning a callable
    # kwargs: {checkpoint: w.pt}    # entry_point: keyword arguments of the factory (optional)
    bands: [red, green, blue, nir]  # the model's input and output bands, in the order it takes them
    scale: 2
    input:
      normalisation: scale          # none | scale | standardise
      factor: 10000                 # scale: model value = reflectance * factor + offset
      offset: 0
      # mean: [...]  std: [...]     # standardise: model value = (reflectance - mean) / std, per band
      value_range: [0, 10000]       # range of the values the model takes and returns (its own units)
    stochastic: false               # true: draws differ between seeds (and repeat for one seed)
    samples: 1                      # samples per tile when the user does not say (1 if deterministic)
    input_multiple: 1               # input height and width must be multiples of this (MindGap pads)
    regime: unknown                 # optional labels for tables: training regime and domain
    train_domain: unknown

The model is called on one float32 tensor ``(N, bands, h, w)`` in its own units and must return
``(N, bands, h*scale, w*scale)`` in the same units. A card whose file is ``model_card.yaml`` (or
``.yml``/``.json``) can be named by its folder. :func:`read_model_card` checks the card itself (one
:class:`InputError` naming the card and the problem); whether the model behaves as the card says is
checked on a probe tile when it is loaded (:mod:`mindgap_core.models.external`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mindgap_core.errors import InputError
from mindgap_core.types import CANONICAL_BANDS

CARD_NAMES: tuple[str, ...] = ("model_card.yaml", "model_card.yml", "model_card.json")
CARD_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".json")
FORMATS: tuple[str, ...] = ("torchscript", "onnx", "entry_point")
NORMALISATIONS: tuple[str, ...] = ("none", "scale", "standardise")
CARD_KEYS = {
    "name", "format", "file", "entry_point", "kwargs", "bands", "scale", "input", "stochastic", "samples",
    "input_multiple", "regime", "train_domain", "description", "source",
}
INPUT_KEYS = {"normalisation", "factor", "offset", "mean", "std", "value_range"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/-]*$")
_ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class ModelCard:
    """A checked model card. ``band_mean``/``band_std`` map reflectance to the model's units per card
    band: ``model value = (reflectance - band_mean) / band_std``."""

    path: Path
    name: str
    format: str
    bands: tuple[str, ...]
    scale: int
    normalisation: str
    band_mean: tuple[float, ...]
    band_std: tuple[float, ...]
    value_range: tuple[float, float]
    stochastic: bool
    samples: int = 1
    input_multiple: int = 1
    file: Path | None = None
    entry_point: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    regime: str = "unknown"
    train_domain: str = "unknown"
    description: str = ""


def find_card(path: str | Path) -> Path | None:
    """The card ``path`` names (a card file, or a folder holding ``model_card.yaml``), else None."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() in CARD_SUFFIXES:
        return path
    if path.is_dir():
        return next((path / name for name in CARD_NAMES if (path / name).is_file()), None)
    return None


def _load_text(path: Path) -> Any:
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not valid JSON ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML ({str(exc).splitlines()[0]})") from None


def _number(value: Any, what: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(path, f"{what} must be a finite number, got {value!r}")
    return float(value)


def _positive_int(raw: Mapping[str, Any], key: str, default: int | None, path: Path) -> int:
    value = raw.get(key, default)
    if value is None:
        raise InputError(path, f"missing required key {key!r}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(path, f"{key} must be a positive integer, got {value!r}")
    return value


def _per_band(value: Any, what: str, n: int, path: Path) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != n:
        raise InputError(path, f"input.{what} needs one number per band ({n}), got {value!r}")
    return tuple(_number(v, f"input.{what}", path) for v in value)


def _bands(raw: Any, path: Path) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(b, str) for b in raw):
        raise InputError(path, f"bands must be a list of band names, got {raw!r}")
    bands = tuple(b.strip().lower() for b in raw)
    unknown = [b for b in bands if b not in CANONICAL_BANDS]
    if unknown:
        raise InputError(path, f"unknown bands {unknown}; MindGap scores {', '.join(CANONICAL_BANDS)}")
    if len(set(bands)) != len(bands):
        raise InputError(path, f"bands repeat a name: {list(bands)}")
    return bands


def _normalisation(raw: Any, n: int, path: Path) -> tuple[str, tuple[float, ...], tuple[float, ...]]:
    """(kind, band_mean, band_std) of the card's ``input`` section."""
    kind = raw.get("normalisation")
    if kind not in NORMALISATIONS:
        raise InputError(path, f"input.normalisation must be one of {list(NORMALISATIONS)}, got {kind!r}")
    allowed = {"none": set(), "scale": {"factor", "offset"}, "standardise": {"mean", "std"}}[kind]
    extra = sorted(set(raw) - allowed - {"normalisation", "value_range"})
    if extra:
        raise InputError(path, f"input.normalisation {kind!r} takes no {extra}")
    if kind == "none":
        return kind, (0.0,) * n, (1.0,) * n
    if kind == "scale":
        if "factor" not in raw:
            raise InputError(path, "input.normalisation 'scale' needs input.factor")
        factor = _number(raw["factor"], "input.factor", path)
        offset = _number(raw.get("offset", 0.0), "input.offset", path)
        if factor <= 0:
            raise InputError(path, f"input.factor must be > 0, got {factor}")
        return kind, (-offset / factor,) * n, (1.0 / factor,) * n
    mean = _per_band(raw.get("mean"), "mean", n, path)
    std = _per_band(raw.get("std"), "std", n, path)
    if min(std) <= 0:
        raise InputError(path, f"input.std must be > 0 for every band, got {list(std)}")
    return kind, mean, std


def _value_range(raw: Any, path: Path) -> tuple[float, float]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise InputError(path, f"input.value_range must be [low, high], got {raw!r}")
    low, high = (_number(v, "input.value_range", path) for v in raw)
    if not low < high:
        raise InputError(path, f"input.value_range needs low < high, got {raw!r}")
    return low, high


def _source(raw: Mapping[str, Any], fmt: str, path: Path) -> dict[str, Any]:
    """``file`` (resolved, existing) or ``entry_point`` and ``kwargs``, as the format needs."""
    if fmt == "entry_point":
        if "file" in raw:
            raise InputError(path, "format 'entry_point' takes no 'file' (the factory loads its own weights)")
        entry = raw.get("entry_point")
        if not isinstance(entry, str) or not _ENTRY_POINT.match(entry):
            raise InputError(path, f"entry_point must look like 'package.module:factory', got {entry!r}")
        kwargs = raw.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise InputError(path, f"kwargs must be a mapping, got {kwargs!r}")
        return {"entry_point": entry, "kwargs": dict(kwargs)}
    if "entry_point" in raw or "kwargs" in raw:
        raise InputError(path, f"format {fmt!r} takes a 'file', not 'entry_point'/'kwargs'")
    if not isinstance(raw.get("file"), str):
        raise InputError(path, f"format {fmt!r} needs 'file': the model file, relative to the card")
    file = (path.parent / raw["file"]).resolve()
    if not file.is_file():
        raise InputError(path, f"file {raw['file']!r} does not exist (looked for {file})")
    return {"file": file}


def read_model_card(path: str | Path) -> ModelCard:
    """Parse and check a model card (a card file or a folder holding one); one InputError per problem."""
    given = Path(path)
    card = find_card(given)
    if card is None:
        raise InputError(given, f"not a model card (a {'/'.join(CARD_SUFFIXES)} file or a folder with "
                                f"{CARD_NAMES[0]})")
    raw = _load_text(card)
    if not isinstance(raw, dict):
        raise InputError(card, "a model card must be a mapping of keys to values")
    unknown = sorted(set(raw) - CARD_KEYS)
    if unknown:
        raise InputError(card, f"unknown keys {unknown}; known: {sorted(CARD_KEYS)}")
    missing = [k for k in ("name", "format", "bands", "scale", "input", "stochastic") if k not in raw]
    if missing:
        raise InputError(card, f"missing required keys {missing}")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(card, f"name must be letters, digits and ._+/- (got {name!r})")
    fmt = raw["format"]
    if fmt not in FORMATS:
        raise InputError(card, f"format must be one of {list(FORMATS)}, got {fmt!r}")
    bands = _bands(raw["bands"], card)
    scale = _positive_int(raw, "scale", None, card)
    section = raw["input"]
    if not isinstance(section, dict) or set(section) - INPUT_KEYS:
        raise InputError(
            card, f"input must be a mapping with keys among {sorted(INPUT_KEYS)}, got {section!r}"
        )
    normalisation, mean, std = _normalisation(section, len(bands), card)
    if "value_range" not in section:
        raise InputError(card, "missing input.value_range: the range of values the model takes and returns")
    value_range = _value_range(section["value_range"], card)
    stochastic = raw["stochastic"]
    if not isinstance(stochastic, bool):
        raise InputError(card, f"stochastic must be true or false, got {stochastic!r}")
    samples = _positive_int(raw, "samples", 1, card)
    if samples > 1 and not stochastic:
        raise InputError(card, f"samples is {samples} but the model is deterministic (samples must be 1)")
    labels = {k: str(raw.get(k, "unknown")) for k in ("regime", "train_domain")}
    return ModelCard(
        path=card, name=name, format=fmt, bands=bands, scale=scale, normalisation=normalisation,
        band_mean=mean, band_std=std, value_range=value_range, stochastic=stochastic, samples=samples,
        input_multiple=_positive_int(raw, "input_multiple", 1, card), **_source(raw, fmt, card), **labels,
        description=str(raw.get("description", "")),
    )
