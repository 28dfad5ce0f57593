"""Method name -> model class (a plain dict), and finding, describing and loading any model.

A model is a MindGap model folder (``model_index.json``, :meth:`SRModel.save_pretrained`) or a
model card of a model MindGap did not train (:mod:`mindgap_core.models.card`: a TorchScript file,
an ONNX file or a Python entry point). :func:`load_model` loads either, :func:`describe_model` says
what one is without loading it, and :func:`list_models` finds every one below a folder (what a model
picker shows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.models.base import MODEL_INDEX_NAME, SHARED_SETTINGS, SRModel
from mindgap_core.models.bicubic import BicubicModel
from mindgap_core.models.card import CARD_NAMES, ModelCard, find_card, read_model_card
from mindgap_core.models.checkpoint import load_component, read_json_object
from mindgap_core.models.external import load_external_model
from mindgap_core.models.ldm_sr import LDMSRModel
from mindgap_core.models.regression import RegressionModel
from mindgap_core.models.resshift import ResShiftModel
from mindgap_core.models.sinsr import SinSRModel
from mindgap_core.models.sr3 import SR3Model
from mindgap_core.models.srdiff import SRDiffModel
from mindgap_core.types import CANONICAL_BANDS

#: method name -> SRModel subclass
MODEL_REGISTRY: dict[str, type[SRModel]] = {
    "sr3": SR3Model,
    "srdiff": SRDiffModel,
    "ldm_sr": LDMSRModel,
    "resshift": ResShiftModel,
    "sinsr": SinSRModel,
    "bicubic": BicubicModel,
    "regression": RegressionModel,
}

#: the five diffusion methods of the study (docs/science.md, "The five diffusion methods"), in table order
DIFFUSION_METHODS: tuple[str, ...] = ("sr3", "srdiff", "ldm_sr", "resshift", "sinsr")
#: the non-diffusion references
BASELINE_METHODS: tuple[str, ...] = ("bicubic", "regression")


def model_class(method: str, source: str | Path = "method") -> type[SRModel]:
    """The class registered for ``method``; :class:`InputError` naming ``source`` when unknown."""
    try:
        return MODEL_REGISTRY[method]
    except (KeyError, TypeError):
        raise InputError(source, f"unknown method {method!r}; known: {', '.join(MODEL_REGISTRY)}") from None


def build_model(
    method: str, config: Mapping[str, Any] | None, *, scale: int, band_names: Sequence[str] = CANONICAL_BANDS,
    stats: Mapping[str, Sequence[float]] | None = None,
) -> SRModel:
    """A fresh randomly initialised model of ``method`` (``config``: overrides of its ``demo`` preset,
    see :attr:`SRModel.presets` and ``presets.py``)."""
    return model_class(method).build(config, scale=scale, band_names=band_names, stats=stats)


def read_model_index(path: str | Path) -> dict[str, Any]:
    """The parsed ``model_index.json`` of a model folder (InputError when missing or malformed)."""
    folder = Path(path)
    if not folder.exists():
        raise InputError(folder, "no such model folder")
    if not folder.is_dir():
        raise InputError(folder, "not a model folder (expected a folder with model_index.json)")
    index_path = folder / MODEL_INDEX_NAME
    if not index_path.is_file():
        raise InputError(
            folder,
            f"missing checkpoint file {MODEL_INDEX_NAME}: not a MindGap model folder, "
            "or its saving did not finish",
        )
    index = read_json_object(index_path)
    required = ("method", *SHARED_SETTINGS, "options", "components")
    missing = [k for k in required if k not in index]
    if missing:
        raise InputError(index_path, f"not a MindGap model index: missing keys {missing}")
    if not isinstance(index["options"], dict):
        raise InputError(index_path, f"'options' must be a JSON object, got {index['options']!r}")
    return index


@dataclass(frozen=True)
class ModelInfo:
    """What a model is, read from its index or card without loading it (what a picker lists)."""

    #: what :func:`load_model` takes: a model folder or a card file
    path: Path
    #: ``<method>/<regime>`` of a MindGap folder, the card's name for a card
    label: str
    #: the method column of result tables (the card's name for a card)
    method: str
    regime: str
    train_domain: str
    train_blocks: int | None
    #: ``mindgap`` (a model folder) or the card's format (``torchscript``, ``onnx``, ``entry_point``)
    kind: str
    scale: int
    band_names: tuple[str, ...]
    stochastic: bool


@dataclass(frozen=True)
class ModelListing:
    """Every model found below a folder, and one line per folder or card that could not be read."""

    models: tuple[ModelInfo, ...]
    problems: tuple[str, ...]


def _is_card(path: Path) -> bool:
    """Whether ``path`` names a model card rather than a MindGap model folder (which wins)."""
    return not (path / MODEL_INDEX_NAME).is_file() and find_card(path) is not None


def _checked_card(path: str | Path) -> ModelCard:
    card = read_model_card(path)
    if card.name in MODEL_REGISTRY:
        raise InputError(
            card.path, f"name {card.name!r} is a MindGap method; give the model a name of its own"
        )
    return card


def _training_record(folder: Path) -> dict[str, Any]:
    """regime, train_domain and train_blocks from a model folder's ``training.json`` (``unknown``
    without one)."""
    info: dict[str, Any] = {"regime": "unknown", "train_domain": "unknown", "train_blocks": None}
    training = folder / "training.json"
    if training.is_file():
        data = read_json_object(training)
        info["regime"] = str(data.get("regime", "unknown"))
        domains = data.get("train_domains") or []
        info["train_domain"] = "+".join(domains) if domains else "unknown"
        info["train_blocks"] = data.get("blocks")
    return info


def describe_model(path: str | Path) -> ModelInfo:
    """What the model folder or card at ``path`` is (InputError naming the file when it is neither
    or is malformed); nothing is loaded or run."""
    folder = Path(path)
    if not _is_card(folder):
        index = read_model_index(folder)
        model_class(index["method"], folder / MODEL_INDEX_NAME)
        record = _training_record(folder)
        return ModelInfo(
            path=folder, label=f"{index['method']}/{folder.name}", method=index["method"], kind="mindgap",
            scale=int(index["scale"]), band_names=tuple(index["band_names"]),
            stochastic=bool(index.get("stochastic", model_class(index["method"]).stochastic)), **record,
        )
    card = _checked_card(folder)
    return ModelInfo(
        path=card.path, label=card.name, method=card.name, regime=card.regime, train_domain=card.train_domain,
        train_blocks=None, kind=card.format, scale=card.scale,
        band_names=tuple(b for b in CANONICAL_BANDS if b in card.bands), stochastic=card.stochastic,
    )


def list_models(root: str | Path) -> ModelListing:
    """Every model folder (``model_index.json``) and model card (``model_card.yaml``/``.yml``/``.json``)
    below ``root``, sorted by path; unreadable ones become lines in ``problems``."""
    root = Path(root)
    found = sorted({p.parent for p in root.rglob(MODEL_INDEX_NAME)} | {
        p for name in CARD_NAMES for p in root.rglob(name) if not (p.parent / MODEL_INDEX_NAME).is_file()
    })
    models, problems = [], []
    for path in found:
        try:
            models.append(describe_model(path))
        except InputError as exc:
            problems.append(str(exc))
    return ModelListing(tuple(models), tuple(problems))


def model_files(path: str | Path) -> list[Path]:
    """The files a model consists of (for content fingerprints): every file of a model folder, or a
    card and the model file it names."""
    path = Path(path)
    if not _is_card(path):
        return sorted(p for p in path.rglob("*") if p.is_file())
    card = read_model_card(path)
    return [card.path] + ([card.file] if card.file is not None else [])


def load_model(
    path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> SRModel:
    """Load a model folder written by :meth:`SRModel.save_pretrained`, or a model card, in eval mode.

    Every component is read with ``from_pretrained(..., local_files_only=True)`` after the method's
    allow-list is checked; only safetensors weights are accepted. ``device``/``dtype`` move the
    networks (schedulers compute in float32; ``dtype`` does not apply to card models, which run as
    exported). A card's model is checked against its card on a probe tile
    (:func:`~mindgap_core.models.external.load_external_model`). Bad folders and cards raise
    :class:`InputError` naming the file and the problem.
    """
    folder = Path(path)
    if _is_card(folder):
        _checked_card(folder)
        return load_external_model(folder, device=device)
    index = read_model_index(folder)
    cls = model_class(index["method"], folder / MODEL_INDEX_NAME)
    listed = index["components"]
    if not isinstance(listed, dict) or set(listed) != set(cls.component_classes):
        raise InputError(
            folder / MODEL_INDEX_NAME,
            f"a {cls.method} model has components {sorted(cls.component_classes)}, the index lists "
            f"{sorted(listed) if isinstance(listed, dict) else listed}",
        )
    components = {}
    for name, comp_cls in cls.component_classes.items():
        entry = listed[name]
        if not (isinstance(entry, list) and len(entry) == 2 and entry[1] == comp_cls.__name__):
            raise InputError(
                folder / MODEL_INDEX_NAME, f"component {name!r} must be a {comp_cls.__name__}, got {entry!r}"
            )
        components[name] = load_component(comp_cls, folder / name, dtype)
    try:
        model = cls.from_index(index, components)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise InputError(folder / MODEL_INDEX_NAME, f"inconsistent model settings ({exc})") from None
    model.to(device=device)
    return model.eval()
