"""Named model configurations: ``tiny`` (tests: a few thousand parameters, seconds on CPU) and
``demo`` (~1 M parameters, UNet2DModel 32/64/64: minutes on a 2-core CPU, see docs/science.md,
"Measured on this 2-core CPU").

A config is a nested dict per method; each model class holds its own presets
(:attr:`~mindgap_core.models.base.SRModel.presets`), looked up here through the registry.
:func:`resolve_config` takes a preset name, a JSON file or a dict (``{"preset": "demo",
...overrides}``) and returns the full dict. Each model class validates its keys (unknown keys are an
error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.models.base import PRESET_NAMES
from mindgap_core.models.registry import MODEL_REGISTRY


def resolve_config(method: str, config: str | Path | Mapping[str, Any] | None) -> dict[str, Any]:
    """The config dict for ``method``: a preset name, a JSON file path, or a dict.

    A JSON file or dict may name ``"preset"`` (default "demo") and override any of its keys, e.g.
    ``{"preset": "demo", "unet": {"block_out_channels": [32, 64, 128]}}``. Overrides are merged by
    the model class, which rejects unknown keys.
    """
    if config is None:
        config = "demo"
    if isinstance(config, str | Path) and str(config) in PRESET_NAMES:
        return _preset(str(config), method)
    if isinstance(config, str | Path):
        path = Path(config)
        if not path.is_file():
            raise InputError(path, f"no such config file (or preset; presets are {list(PRESET_NAMES)})")
        try:
            loaded = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(path, f"not valid JSON ({exc})") from None
        if not isinstance(loaded, dict):
            raise InputError(path, "the config must be a JSON object")
        config = loaded
    overrides = dict(config)
    base = _preset(str(overrides.pop("preset", "demo")), method)
    return _merge(base, overrides)


def _preset(name: str, method: str) -> dict[str, Any]:
    if name not in PRESET_NAMES:
        raise ConfigError(f"unknown config preset {name!r}; presets are {list(PRESET_NAMES)}")
    if method not in MODEL_REGISTRY:
        raise ConfigError(f"preset {name!r} has no entry for method {method!r}")
    return json.loads(json.dumps(MODEL_REGISTRY[method].presets[name]))  # deep copy


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value  # unknown keys pass through; the model class rejects them
    return out
