"""Reading and writing the parts of a checkpoint folder safely: allow-listed classes, safetensors only.

Model folders (:func:`mindgap_core.models.registry.load_model`) and adapter folders
(:func:`mindgap_core.adapters.registry.load_adapter`) both go through here: a component is loaded
with the class the caller's allow-list names (never a class named in a file), with
``from_pretrained(..., local_files_only=True, use_safetensors=True)``, after checking that its
folder holds ``config.json`` and safetensors weights; pickle weight files are refused with one
message, because unpickling can run code.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from mindgap_core.errors import InputError

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
CONFIG_NAME = "config.json"
SCHEDULER_CONFIG_NAME = "scheduler_config.json"
#: Pickle-based weight files we refuse to load (they can run code when unpickled).
PICKLE_WEIGHT_SUFFIXES: tuple[str, ...] = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; InputError naming the file when it is not valid JSON or no object."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, f"expected a JSON object, got {type(data).__name__}")
    return data


def check_weights(sub: Path) -> None:
    """InputError when a network subfolder lacks its config or safetensors weights (pickle refused)."""
    if not sub.is_dir():
        raise InputError(sub, "missing checkpoint folder")
    if not (sub / CONFIG_NAME).is_file():
        raise InputError(sub, f"missing checkpoint file {CONFIG_NAME}")
    if not (sub / WEIGHTS_NAME).is_file():
        pickles = sorted(p.name for p in sub.iterdir() if p.suffix in PICKLE_WEIGHT_SUFFIXES)
        if pickles:
            raise InputError(
                sub,
                f"holds non-safetensors weights ({', '.join(pickles)}); MindGap loads only {WEIGHTS_NAME} "
                "(pickle files can run code when loaded): convert them with safetensors first",
            )
        raise InputError(sub, f"missing checkpoint file {WEIGHTS_NAME}")


def load_component(cls: type, sub: Path, dtype: torch.dtype | None = None) -> Any:
    """``cls.from_pretrained(sub)`` for an allow-listed ``cls``: a network (safetensors only, computed
    in ``dtype``, float32 by default even when stored in float16) or a scheduler config."""
    if issubclass(cls, ModelMixin):
        check_weights(sub)
        loader: dict[str, Any] = dict(local_files_only=True, use_safetensors=True,
                                      torch_dtype=dtype if dtype is not None else torch.float32)
    else:
        if not (sub / SCHEDULER_CONFIG_NAME).is_file():
            raise InputError(sub, f"missing checkpoint file {SCHEDULER_CONFIG_NAME}")
        loader = {}
    try:
        return cls.from_pretrained(sub, **loader)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(sub, f"cannot load {cls.__name__} ({first})") from None


def component_entry(comp: Any) -> list[str]:
    """``[library, class name]`` of a component, as diffusers' ``model_index.json`` lists it."""
    module = type(comp).__module__
    return ["diffusers" if module.startswith("diffusers") else module, type(comp).__name__]


def save_component(comp: Any, dest: Path, storage_dtype: torch.dtype | None = None) -> None:
    """``comp.save_pretrained`` (safetensors for networks, optionally stored in ``storage_dtype``)
    into a temporary sibling folder, then swapped in place of ``dest``."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        if isinstance(comp, nn.Module):
            stored = copy.deepcopy(comp).to(storage_dtype) if storage_dtype is not None else comp
            stored.save_pretrained(tmp, safe_serialization=True)
        else:
            comp.save_pretrained(tmp)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
            shutil.rmtree(old)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
