"""The interface every MindGap super-resolution model implements, and what they share.

A model is a plain wrapper around diffusers components (``UNet2DModel``, ``AutoencoderKL``, a
scheduler, small ``ModelMixin`` networks of our own), like a diffusers pipeline. It takes LR
reflectance ``(N, C, h, w)`` and returns ``(N, num_samples, C, h*scale, w*scale)`` float32
reflectance on the input's device.

Settings go through diffusers' ``ConfigMixin``: every keyword of a model's ``__init__`` that is not
a component is recorded in :attr:`SRModel.config` (``@register_to_config`` on the subclass'
``__init__``; the shared scale, bands and normalisation by :class:`SRModel` itself), and
``model_index.json`` is written from that config and read back into ``__init__``
(:meth:`SRModel.to_json_string`, :meth:`SRModel.from_index`): a model keeps no hand-written
list of its settings.

On disk a model is a diffusers-style folder::

    <folder>/model_index.json          method, scale, bands, normalisation, options, components
    <folder>/<component>/config.json + diffusion_pytorch_model.safetensors   (networks)
    <folder>/scheduler/scheduler_config.json                                   (schedulers)

``model_index.json`` is written last: a folder without it is not a (complete) model. Components are
loaded with ``from_pretrained(..., local_files_only=True, use_safetensors=True)``; the classes come
from the method's own allow-list (:attr:`SRModel.component_classes`), never from the file
(:mod:`mindgap_core.models.checkpoint`).

Models work in a normalised space: ``(reflectance - band_mean) / band_std`` per band, with the
statistics of the training HR tiles stored in ``model_index.json``.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import diffusers
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin
from torch import nn

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.models.checkpoint import component_entry, save_component
from mindgap_core.types import CANONICAL_BANDS

MODEL_INDEX_NAME = "model_index.json"
#: ``_class_name`` of every ``model_index.json`` (the method is the ``method`` key)
INDEX_CLASS_NAME = "MindGapSRModel"
#: config keys every model has; they sit at the top level of ``model_index.json``, the rest under
#: ``options``
SHARED_SETTINGS: tuple[str, ...] = ("scale", "band_names", "band_mean", "band_std", "default_steps")
#: the presets every method defines (see :attr:`SRModel.presets`)
PRESET_NAMES: tuple[str, ...] = ("tiny", "demo")
MIXED_PRECISION_MODES: tuple[str, ...] = ("no", "fp16", "bf16")

#: ``on_step(done, total)``: called after each sampling step.
StepFn = Callable[[int, int], None]


def upsample(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling by an integer factor (torch's bicubic, a = -0.75, no antialiasing)."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


def per_band(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """Per-band ``values`` as a float32 (1, C, 1, 1) tensor on ``like``'s device (broadcasts over NCHW)."""
    return torch.tensor(values, device=like.device, dtype=torch.float32).view(1, -1, 1, 1)


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average when shrinking, bicubic when enlarging, identity when the size matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if size[0] <= x.shape[-2] and size[1] <= x.shape[-1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False)


def merge_config(
    defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None, what: str
) -> dict[str, Any]:
    """``defaults`` updated by ``overrides`` (nested dicts merged); unknown keys are a ConfigError."""
    merged = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in defaults.items()}
    for key, value in (overrides or {}).items():
        if key not in defaults:
            raise ConfigError(f"{what}: unknown option {key!r}; known: {sorted(defaults)}")
        if isinstance(defaults[key], Mapping) and isinstance(value, Mapping):
            merged[key] = merge_config(defaults[key], value, f"{what}.{key}")
        else:
            merged[key] = value
    return merged


#: the ``unet`` part of the method configs, by preset (UNet2DModel 4/8 for tests, 32/64/64 for the demo)
UNET_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"block_out_channels": [4, 8], "layers_per_block": 1, "norm_num_groups": 2},
    "demo": {"block_out_channels": [32, 64, 64], "layers_per_block": 1, "norm_num_groups": 32},
}


def unet_presets(
    varying: Mapping[str, Mapping[str, Any]] | None = None, **common: Any
) -> dict[str, dict[str, Any]]:
    """A method's :attr:`SRModel.presets`: for each preset name, its :data:`UNET_PRESETS` ``unet``,
    the ``common`` settings, and that preset's entry of ``varying`` (preset name -> settings)."""
    varying = varying or {}
    return {name: {"unet": UNET_PRESETS[name], **common, **varying.get(name, {})} for name in PRESET_NAMES}


def build_unet(
    in_channels: int, out_channels: int, block_out_channels: Sequence[int], layers_per_block: int,
    norm_num_groups: int, attention: bool = False,
) -> nn.Module:
    """A diffusers ``UNet2DModel`` without attention in the down/up blocks (fast on CPU)."""
    from diffusers import UNet2DModel

    n = len(block_out_channels)
    return UNet2DModel(
        in_channels=in_channels, out_channels=out_channels, block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block, down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n, norm_num_groups=norm_num_groups, add_attention=attention,
    )


def unet_from_config(in_channels: int, out_channels: int, config: Mapping[str, Any]) -> nn.Module:
    """:func:`build_unet` from the ``unet`` part of a method config."""
    return build_unet(
        in_channels, out_channels, config["block_out_channels"], config["layers_per_block"],
        config["norm_num_groups"],
    )


def two_stages(total_steps: int, fraction: float, first: str, second: str) -> list[tuple[str, int]]:
    """``[(first, n), (second, total_steps - n)]`` with n = ``fraction`` of the steps (at least 1,
    and 0 when there is at most one step)."""
    n = max(1, round(total_steps * fraction)) if total_steps > 1 else 0
    return [(first, n), (second, total_steps - n)]


def unet_size_multiple(unet: nn.Module) -> int:
    """Spatial multiple a diffusers UNet2DModel needs (2 per downsampling block)."""
    return 2 ** (len(unet.config.block_out_channels) - 1)


class SRModel(ConfigMixin, ABC):
    """Base class of all super-resolution models (see the module docstring).

    A subclass names its :attr:`method`, :attr:`component_classes` and :attr:`presets`, takes its
    components and settings as keywords in an ``__init__`` decorated with diffusers'
    ``@register_to_config`` (passing the shared ones on with ``**kwargs``), builds fresh components in
    :meth:`fresh_parts`, and implements ``_sample`` and ``training_loss``.
    """

    config_name = MODEL_INDEX_NAME
    #: registry name, also written to ``model_index.json``
    method: ClassVar[str]
    #: True when samples differ between calls (diffusion); False for deterministic models
    stochastic: ClassVar[bool]
    #: component name -> class; loading accepts exactly these (the allow-list)
    component_classes: ClassVar[dict[str, type]] = {}
    #: method config of each preset in :data:`PRESET_NAMES` (``tiny``: tests, a few thousand
    #: parameters; ``demo``: the shipped models); ``build`` merges overrides into ``demo``
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: training stage -> the modules trained in it (keys of :meth:`training_modules`); a stage not
    #: listed trains every module
    stage_modules: ClassVar[dict[str, list[str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # components are saved in folders of their own, not in the config (they are passed by keyword)
        cls.ignore_for_config = list(cls.component_classes)

    def __init__(
        self, *, scale: int, band_names: Sequence[str] = CANONICAL_BANDS,
        band_mean: Sequence[float] | None = None, band_std: Sequence[float] | None = None,
        default_steps: int = 1,
    ) -> None:
        if int(scale) < 1:
            raise ConfigError(f"scale must be a positive integer, got {scale!r}")
        self.scale = int(scale)
        self.band_names: tuple[str, ...] = tuple(band_names)
        n = len(self.band_names)
        self.band_mean: tuple[float, ...] = tuple(float(v) for v in (band_mean or (0.0,) * n))
        self.band_std: tuple[float, ...] = tuple(float(v) for v in (band_std or (1.0,) * n))
        if len(self.band_mean) != n or len(self.band_std) != n or min(self.band_std) <= 0:
            raise ConfigError(
                f"band_mean/band_std need {n} values (std > 0): {self.band_mean}, {self.band_std}"
            )
        self.default_steps = int(default_steps)
        #: samples per tile when the caller does not say (a model card may ask for more)
        self.default_samples = 1
        self.register_to_config(
            scale=self.scale, band_names=list(self.band_names), band_mean=list(self.band_mean),
            band_std=list(self.band_std), default_steps=self.default_steps,
        )
        #: autocast mode for sampling on CUDA ("no", "fp16", "bf16"); ignored on CPU
        self.mixed_precision = "no"

    # ----------------------------------------------------------------------------------------------
    # components, config and fresh models
    def components(self) -> dict[str, Any]:
        """Saved components by name (networks and schedulers): the attributes named in
        :attr:`component_classes`."""
        return {name: getattr(self, name) for name in self.component_classes}

    def networks(self) -> dict[str, nn.Module]:
        """The components that are torch modules."""
        return {k: v for k, v in self.components().items() if isinstance(v, nn.Module)}

    def options(self) -> dict[str, Any]:
        """This method's own settings: the config without the shared ones (``options`` on disk)."""
        return {k: v for k, v in self.config.items() if not k.startswith("_") and k not in SHARED_SETTINGS}

    def to_json_string(self) -> str:
        """``model_index.json``: the shared settings of :attr:`config` at the top level, the rest
        under ``options``, and the method, its stochasticity and its component classes (overrides
        ``ConfigMixin.to_json_string``, whose flat layout would change every shipped index)."""
        payload = {
            "_class_name": INDEX_CLASS_NAME,
            "_diffusers_version": diffusers.__version__,
            "method": self.method,
            "stochastic": self.stochastic,
            **{key: self.config[key] for key in SHARED_SETTINGS},
            "options": self.options(),
            "components": {name: component_entry(comp) for name, comp in self.components().items()},
        }
        return json.dumps(payload, indent=2, sort_keys=True) + "\n"

    def data_settings(self) -> dict[str, Any]:
        """Scale, bands and normalisation (``__init__`` keywords): what a model of the same data shares."""
        return {key: self.config[key] for key in ("scale", "band_names", "band_mean", "band_std")}

    @classmethod
    def from_index(cls, index: Mapping[str, Any], components: Mapping[str, Any]) -> SRModel:
        """The model a ``model_index.json`` describes, around its loaded ``components``: every
        setting goes back into ``__init__`` (settings an older index lacks take their defaults)."""
        settings = {key: index[key] for key in SHARED_SETTINGS}
        return cls(**components, **settings, **index["options"])

    @classmethod
    def build(
        cls, config: Mapping[str, Any] | None, *, scale: int, band_names: Sequence[str] = CANONICAL_BANDS,
        stats: Mapping[str, Sequence[float]] | None = None,
    ) -> SRModel:
        """A fresh, randomly initialised model: the ``demo`` preset updated by ``config``
        (:func:`merge_config`), networks from :meth:`fresh_parts`.

        ``stats`` holds training-data statistics: ``band_mean``, ``band_std`` (HR, per band) and
        ``residual_std`` (of normalised HR - up(LR), per band).
        """
        cfg = merge_config(cls.presets["demo"], config, cls.method)
        stats = stats or {}
        steps = {"default_steps": cfg["default_steps"]} if "default_steps" in cfg else {}
        return cls(
            **cls.fresh_parts(cfg, len(band_names), stats), scale=scale, band_names=band_names,
            band_mean=stats.get("band_mean"), band_std=stats.get("band_std"), **steps,
        )

    @classmethod
    def fresh_parts(
        cls, config: Mapping[str, Any], channels: int, stats: Mapping[str, Sequence[float]]
    ) -> dict[str, Any]:
        """``__init__`` keywords of a fresh model besides the shared ones (a ``default_steps`` key of
        the config is passed on by :meth:`build`): new components and settings from the merged method
        ``config`` (``channels`` bands; ``stats`` as in :meth:`build`)."""
        return {}

    # ----------------------------------------------------------------------------------------------
    # device, dtype, mode
    @property
    def device(self) -> torch.device:
        for net in self.networks().values():
            for p in net.parameters():
                return p.device
        return getattr(self, "_device", torch.device("cpu"))

    @property
    def dtype(self) -> torch.dtype:
        for net in self.networks().values():
            for p in net.parameters():
                return p.dtype
        return torch.float32

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> SRModel:
        """Move every network (in place) and return self."""
        if device is None and dtype is None:
            return self
        moves = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
        for net in self.networks().values():
            net.to(**moves)  # diffusers warns when dtype=None is passed explicitly
        if device is not None:
            self._device = torch.device(device)
        return self

    def eval(self) -> SRModel:
        for net in self.networks().values():
            net.eval()
        return self

    def num_parameters(self) -> int:
        """Parameters of the saved networks."""
        return sum(p.numel() for net in self.networks().values() for p in net.parameters())

    # ----------------------------------------------------------------------------------------------
    # normalisation and helpers
    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return per_band(self.band_mean, x), per_band(self.band_std, x)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Reflectance -> model space (per-band standardisation)."""
        mean, std = self._stats(x)
        return (x.float() - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Model space -> reflectance."""
        mean, std = self._stats(x)
        return x.float() * std + mean

    def upsample_normalized(self, lr: torch.Tensor) -> torch.Tensor:
        """n(up(LR)): the bicubic-upsampled LR reflectance in model space."""
        return self.normalize(upsample(lr, self.scale))

    @property
    def size_multiple(self) -> int:
        """HR height and width must be multiples of this (``sample`` pads internally)."""
        return 1

    @staticmethod
    def call(net: nn.Module, *args: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Run ``net`` with float inputs cast to its dtype; return float32 (diffusers ``.sample``)."""
        dtype = next(net.parameters()).dtype
        cast = [a.to(dtype) if torch.is_floating_point(a) else a for a in args]
        out = net(*cast, **kwargs)
        out = getattr(out, "sample", out)
        return out.float()

    @contextlib.contextmanager
    def autocast(self, device: torch.device) -> Iterator[None]:
        """fp16/bf16 autocast on CUDA when :attr:`mixed_precision` asks for it; nothing elsewhere."""
        if device.type == "cuda" and self.mixed_precision in ("fp16", "bf16"):
            dtype = torch.float16 if self.mixed_precision == "fp16" else torch.bfloat16
            with torch.autocast("cuda", dtype=dtype):
                yield
        else:
            yield

    def check_input(self, lr: torch.Tensor, source: str = "LR input") -> None:
        """Raise :class:`InputError` when ``lr`` is not (N, C, h, w) float with this model's bands."""
        if not isinstance(lr, torch.Tensor) or lr.ndim != 4:
            shape = tuple(lr.shape) if isinstance(lr, torch.Tensor) else type(lr).__name__
            raise InputError(source, f"expected a (N, bands, rows, cols) tensor, got {shape}")
        if lr.shape[1] != len(self.band_names):
            raise InputError(
                source,
                f"has {lr.shape[1]} bands but this {self.method} model takes {len(self.band_names)} "
                f"({', '.join(self.band_names)})",
            )
        if not torch.is_floating_point(lr):
            raise InputError(source, f"expected float reflectance, got {lr.dtype}")

    # ----------------------------------------------------------------------------------------------
    # sampling
    @torch.no_grad()
    def sample(
        self, lr: torch.Tensor, num_samples: int = 1, steps: int | None = None,
        generator: torch.Generator | None = None, on_step: StepFn | None = None,
    ) -> torch.Tensor:
        """Super-resolve ``lr`` (N, C, h, w) reflectance to (N, num_samples, C, h*s, w*s) float32.

        ``steps`` defaults to :attr:`default_steps`; ``generator`` makes the draw reproducible;
        ``on_step(done, total)`` reports sampling progress. Any h, w work: the input is padded
        (edge replication) to the size the networks need and the output cropped back.
        """
        self.check_input(lr)
        if num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
        steps = self.default_steps if steps is None else int(steps)
        if steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        n, c, h, w = lr.shape
        device = lr.device
        work = self.device if self.networks() else device  # weightless models compute where the input is
        padded, (ph, pw) = self._pad(lr.float().to(work))
        repeats = num_samples if self.stochastic else 1
        batch = padded.repeat_interleave(repeats, dim=0)
        with self.autocast(batch.device):
            out = self._sample(batch, steps, generator, on_step or (lambda done, total: None))
        out = out[..., : h * self.scale, : w * self.scale].float().to(device)
        out = out.reshape(n, repeats, c, h * self.scale, w * self.scale)
        if repeats != num_samples:
            out = out.expand(n, num_samples, c, h * self.scale, w * self.scale).clone()
        return out

    def _pad(self, lr: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Pad LR (bottom/right, edge replication) so that the HR size is a multiple of size_multiple."""
        m = self.size_multiple
        h, w = lr.shape[-2:]
        ph = next(p for p in range(m + 1) if ((h + p) * self.scale) % m == 0)
        pw = next(p for p in range(m + 1) if ((w + p) * self.scale) % m == 0)
        if ph or pw:
            lr = F.pad(lr, (0, pw, 0, ph), mode="replicate")
        return lr, (ph, pw)

    @abstractmethod
    def _sample(
        self, lr: torch.Tensor, steps: int, generator: torch.Generator | None, on_step: StepFn
    ) -> torch.Tensor:
        """(B, C, h, w) reflectance on the model's device -> (B, C, h*s, w*s) reflectance."""

    # ----------------------------------------------------------------------------------------------
    # training hooks (used by mindgap_core.train.trainer)
    def training_modules(self) -> dict[str, nn.Module]:
        """Every module whose weights change during training (checkpointed), by name."""
        return self.networks()

    def plan_stages(self, total_steps: int, pretrained: bool) -> list[tuple[str, int]]:
        """Training stages and their step counts (sum = total_steps)."""
        return [("main", total_steps)]

    def stage_lr_scale(self, stage: str) -> float:
        """Factor on the learning rate in ``stage`` (1 unless a method trains a stage faster)."""
        return 1.0

    def trainable(self, stage: str) -> list[str]:
        """Names (keys of :meth:`training_modules`) trained in ``stage``: :attr:`stage_modules`, or
        every module for a stage not listed there."""
        return list(self.stage_modules.get(stage, self.training_modules()))

    @abstractmethod
    def training_loss(
        self, stage: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Scalar loss for one batch of LR/HR reflectance (on the model's device)."""

    def end_stage(self, stage: str, hr_tiles: torch.Tensor, lr_tiles: torch.Tensor) -> None:
        """Called once after ``stage`` finished (EMA weights already applied)."""

    # ----------------------------------------------------------------------------------------------
    # persistence
    def save_pretrained(self, folder: str | Path, storage_dtype: torch.dtype | None = None) -> Path:
        """Write the model as a diffusers-style folder (see the module docstring); return it.

        ``storage_dtype`` (e.g. ``torch.float16``) stores the network weights in that dtype (half the
        size; the shipped demo checkpoints use it). :func:`load_model` loads them back as float32
        unless asked otherwise.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        index = folder / MODEL_INDEX_NAME
        if index.exists():  # the folder stops being a complete model while components change
            index.unlink()
        for name, comp in self.components().items():
            save_component(comp, folder / name, storage_dtype)
        with atomic_path(index) as tmp:
            tmp.write_text(self.to_json_string())
        return folder
