"""Named model configurations: ``tiny`` (tests: a few thousand parameters, seconds on CPU) and
``demo`` (~1 M parameters, UNet2DModel 32/64/64: minutes on a 2-core CPU, see science.md).

A config is a nested dict per method; :func:`resolve_config` takes a preset name, a JSON file or a
dict (``{"preset": "demo", ...overrides}``) and returns the full dict. Each model class validates
its keys (unknown keys are an error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mindgap_core.errors import ConfigError, InputError

_DDIM = {"num_train_timesteps": 1000, "beta_schedule": "linear", "prediction_type": "sample"}

_TINY_UNET = {"block_out_channels": [4, 8], "layers_per_block": 1, "norm_num_groups": 2}
_DEMO_UNET = {"block_out_channels": [32, 64, 64], "layers_per_block": 1, "norm_num_groups": 32}
_RESSHIFT = {
    "num_train_timesteps": 15, "kappa": 2.0, "min_noise_level": 0.04, "etas_end": 0.99, "power": 0.3,
    "clip_range": 5.0,
}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "bicubic": {},
        "regression": {"features": 8, "blocks": 1},
        "sr3": {
            "unet": _TINY_UNET, "scheduler": {**_DDIM, "clip_range": 5.0}, "default_steps": 50,
            "residual_output": "residual",
        },
        "srdiff": {
            "unet": _TINY_UNET, "encoder": {"features": 4, "blocks": 1},
            "scheduler": {**_DDIM, "clip_range": 4.0}, "default_steps": 50,
        },
        "ldm_sr": {
            "vae": {"block_out_channels": [4, 8, 8], "layers_per_block": 1, "norm_num_groups": 2},
            "unet": _TINY_UNET, "scheduler": {**_DDIM, "clip_range": 4.0}, "default_steps": 50,
            "kl_weight": 1e-6, "autoencoder_fraction": 0.3, "autoencoder_lr_scale": 1.0,
            "vae_logvar_init": None,
        },
        "resshift": {
            "unet": _TINY_UNET, "scheduler": _RESSHIFT, "default_steps": 15, "residual_output": "residual",
        },
        "sinsr": {
            "unet": _TINY_UNET, "scheduler": _RESSHIFT, "teacher_fraction": 0.5,
            "xt_weight": 1.0, "gt_weight": 1.0, "residual_output": "residual",
        },
    },
    "demo": {
        "bicubic": {},
        "regression": {"features": 32, "blocks": 2},
        "sr3": {
            "unet": _DEMO_UNET, "scheduler": {**_DDIM, "clip_range": 5.0}, "default_steps": 50,
            "residual_output": "residual",
        },
        "srdiff": {
            "unet": _DEMO_UNET, "encoder": {"features": 32, "blocks": 2},
            "scheduler": {**_DDIM, "clip_range": 4.0}, "default_steps": 50,
        },
        "ldm_sr": {
            # f = 2: at x2 the latent grid is the LR grid (the VAE bounds the PSNR LDM-SR can reach)
            "vae": {"block_out_channels": [32, 32], "layers_per_block": 1, "norm_num_groups": 16},
            "unet": _DEMO_UNET, "scheduler": {**_DDIM, "clip_range": 4.0}, "default_steps": 50,
            "kl_weight": 1e-6, "autoencoder_fraction": 0.6, "autoencoder_lr_scale": 5.0,
            "vae_logvar_init": -6.0,
        },
        "resshift": {
            "unet": _DEMO_UNET, "scheduler": _RESSHIFT, "default_steps": 15, "residual_output": "residual",
        },
        "sinsr": {
            "unet": _DEMO_UNET, "scheduler": _RESSHIFT, "teacher_fraction": 0.5,
            "xt_weight": 1.0, "gt_weight": 1.0, "residual_output": "residual",
        },
    },
}


def resolve_config(method: str, config: str | Path | Mapping[str, Any] | None) -> dict[str, Any]:
    """The config dict for ``method``: a preset name, a JSON file path, or a dict.

    A JSON file or dict may name ``"preset"`` (default "demo") and override any of its keys, e.g.
    ``{"preset": "demo", "unet": {"block_out_channels": [32, 64, 128]}}``. Overrides are merged by
    the model class, which rejects unknown keys.
    """
    if config is None:
        config = "demo"
    if isinstance(config, str | Path) and str(config) in PRESETS:
        return _preset(str(config), method)
    if isinstance(config, str | Path):
        path = Path(config)
        if not path.is_file():
            raise InputError(path, f"no such config file (or preset; presets are {sorted(PRESETS)})")
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
    if name not in PRESETS:
        raise ConfigError(f"unknown config preset {name!r}; presets are {sorted(PRESETS)}")
    if method not in PRESETS[name]:
        raise ConfigError(f"preset {name!r} has no entry for method {method!r}")
    return json.loads(json.dumps(PRESETS[name][method]))  # deep copy


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value  # unknown keys pass through; the model class rejects them
    return out
