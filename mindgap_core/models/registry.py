"""Method name -> model class (a plain dict), and loading a saved model folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.models.base import MODEL_INDEX_NAME, SHARED_SETTINGS, SRModel
from mindgap_core.models.bicubic import BicubicModel
from mindgap_core.models.checkpoint import load_component, read_json_object
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

#: the five diffusion methods of the study (science.md), in table order
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


def load_model(
    path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> SRModel:
    """Load a model folder written by :meth:`SRModel.save_pretrained`, in eval mode.

    Every component is read with ``from_pretrained(..., local_files_only=True)``; only safetensors
    weights are accepted. ``device``/``dtype`` move the networks (schedulers compute in float32).
    Bad folders raise :class:`InputError` naming the file and the problem.
    """
    folder = Path(path)
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
