"""A model MindGap did not train, run through its card, with the SRModel interface of shipped models.

:func:`load_external_model` reads the card (:mod:`mindgap_core.models.card`), opens the model
(:mod:`mindgap_core.models.runtimes`) and checks on a probe tile (a real LR tile of the demo,
``PROBE_TILE``) that the model does what the card says; a mismatch is one :class:`InputError` naming
the card and what is wrong. The checks, in order:

1. the probe tile in the card's input units lies inside ``input.value_range``;
2. the model runs on ``(1, bands, 32, 32)`` and returns ``(1, bands, 32*scale, 32*scale)``, finite;
3. its output lies inside ``value_range`` widened by ``RANGE_MARGIN`` of its width on each side;
4. the output area-averaged back to the input grid is within ``CONSISTENCY_LIMIT`` (mean absolute
   difference relative to the mean absolute probe reflectance) of the probe: a super-resolution of
   its input, which a wrong normalisation breaks;
5. deterministic: two runs agree exactly; stochastic: two draws with one seed agree exactly and draws
   with two seeds differ.

:class:`ExternalModel` then works wherever a shipped model does (experiments, ``mindgap infer``,
jobs). MindGap always hands models the canonical band order (``band_names``); the model gets its own
order (the card's ``bands``) and its own units.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.models.base import SRModel, StepFn
from mindgap_core.models.card import ModelCard, read_model_card
from mindgap_core.models.runtimes import Runtime, open_runtime
from mindgap_core.paths import DEMO_ROOT
from mindgap_core.types import CANONICAL_BANDS

#: the probe: a real LR reflectance tile of the demo (32 x 32, blue/green/red/nir, synthetic test split)
PROBE_TILE = DEMO_ROOT / "tiles" / "lr_synthetic" / "r0c2.tif"
#: how far outside ``value_range`` outputs may go, as a fraction of its width (ringing at edges)
RANGE_MARGIN = 0.25
#: largest relative difference between the area-averaged output and the probe tile
CONSISTENCY_LIMIT = 0.5


class ExternalModel(SRModel):
    """A card-described model (TorchScript, ONNX or entry point); ``method`` is the card's name."""

    method: ClassVar[str] = "external"
    stochastic: ClassVar[bool] = False
    component_classes: ClassVar[dict[str, type]] = {}

    def __init__(self, *, card: ModelCard, runtime: Runtime) -> None:
        order = tuple(b for b in CANONICAL_BANDS if b in card.bands)
        index = [card.bands.index(b) for b in order]
        super().__init__(
            scale=card.scale, band_names=order, band_mean=[card.band_mean[i] for i in index],
            band_std=[card.band_std[i] for i in index],
        )
        self.card = card
        self.runtime = runtime
        self.method = card.name  # type: ignore[misc]  (the label in tables, per model)
        self.stochastic = card.stochastic  # type: ignore[misc]
        #: samples per tile when the caller does not say
        self.default_samples = card.samples
        self._to_card = [order.index(b) for b in card.bands]
        self._from_card = index

    def networks(self) -> dict[str, nn.Module]:
        return {} if self.runtime.module is None else {"module": self.runtime.module}

    @property
    def size_multiple(self) -> int:
        return self.card.input_multiple * self.scale

    def run(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The model on ``x`` (its units, canonical band order); InputError naming the card when the
        output is not ``(N, bands, h*scale, w*scale)``."""
        try:
            out = self.runtime(x[:, self._to_card].contiguous(), generator)
        except InputError:
            raise
        except Exception as exc:  # whatever the user's model raises becomes one line naming the card
            text = str(exc).strip().splitlines()
            raise InputError(
                self.card.path,
                f"the model fails on a {tuple(x.shape)} input in the card's band order "
                f"({', '.join(self.card.bands)}): {type(exc).__name__}: {text[0] if text else ''}",
            ) from None
        problem = _shape_problem(self.card, tuple(x.shape), tuple(out.shape))
        if problem:
            raise InputError(
                self.card.path, f"does not match the model's behaviour on a {tuple(x.shape)} input: {problem}"
            )
        return out.float()[:, self._from_card]

    def _sample(
        self, lr: torch.Tensor, steps: int, generator: torch.Generator | None, on_step: StepFn
    ) -> torch.Tensor:
        out = self.run(self.normalize(lr), generator if self.stochastic else None)
        on_step(1, 1)
        return self.denormalize(out)

    def plan_stages(self, total_steps: int, pretrained: bool) -> list[tuple[str, int]]:
        raise ConfigError(f"{self.card.path}: MindGap does not train external models")

    def training_loss(
        self, stage: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        raise ConfigError(f"{self.card.path}: MindGap does not train external models")

    def save_pretrained(self, folder: Any, storage_dtype: torch.dtype | None = None) -> Any:
        raise ConfigError(f"{self.card.path}: an external model is its card and its file; nothing to save")


def _shape_problem(card: ModelCard, given: tuple[int, ...], got: tuple[int, ...]) -> str | None:
    """What is wrong with an output of shape ``got`` for an input of shape ``given`` (None: nothing)."""
    n, c, h, w = given
    if len(got) != 4:
        return f"the model returns a {len(got)}-D output {got}, expected (N, bands, rows, cols)"
    if got[1] != c:
        return f"card lists {c} bands ({', '.join(card.bands)}) but the model returns {got[1]}"
    if got[0] != n:
        return f"the model returns {got[0]} items for a batch of {n}"
    if got[2:] != (h * card.scale, w * card.scale):
        ratio = f"scale {got[2] // h}" if got[2] % h == 0 and got[2] * w == got[3] * h else "no integer scale"
        return (f"card says scale {card.scale} but the model turns {h}x{w} into {got[2]}x{got[3]} "
                f"({ratio})")
    return None


def probe_tile(band_names: tuple[str, ...]) -> torch.Tensor:
    """The probe LR tile ``(1, bands, 32, 32)`` reflectance in ``band_names`` order."""
    from mindgap_core.io.geotiff import read_raster

    raster = read_raster(PROBE_TILE).select(band_names)
    return torch.from_numpy(raster.array.astype("float32"))[None]


def _span(x: torch.Tensor) -> str:
    return f"[{float(x.min()):.4g}, {float(x.max()):.4g}]"


def probe_problem(model: ExternalModel, lr: torch.Tensor) -> str | None:
    """The first way the model contradicts its card on the probe tile ``lr`` (module docstring)."""
    card = model.card
    low, high = card.value_range
    x = model.normalize(lr)
    if float(x.min()) < low or float(x.max()) > high:
        return (f"the probe tile in the card's input units spans {_span(x)}, outside input.value_range "
                f"[{low:g}, {high:g}]: input.normalisation and value_range disagree")
    seeds = [torch.Generator().manual_seed(s) for s in (0, 0, 1)]
    first = model.run(x, seeds[0])
    if not torch.isfinite(first).all():
        return "the model returns NaN or infinite values on the probe tile"
    margin = RANGE_MARGIN * (high - low)
    if float(first.min()) < low - margin or float(first.max()) > high + margin:
        return (f"the model's output on the probe tile spans {_span(first)}, outside input.value_range "
                f"[{low:g}, {high:g}] (with a {RANGE_MARGIN:.0%} margin): check input.normalisation "
                "and value_range")
    back = F.adaptive_avg_pool2d(model.denormalize(first), lr.shape[-2:])
    difference = float((back - lr).abs().mean() / lr.abs().mean().clamp_min(1e-12))
    if difference > CONSISTENCY_LIMIT:
        return (f"the output, area-averaged to the input grid, differs from the probe tile by "
                f"{difference:.0%} (limit {CONSISTENCY_LIMIT:.0%}): not a super-resolution of its input "
                "in the card's units (check input.normalisation, bands and their order)")
    again = model.run(x, seeds[1] if card.stochastic else None)
    if not card.stochastic:
        same = torch.equal(first, again)
        return None if same else "card says deterministic but two runs on the probe tile differ"
    if not torch.equal(first, again):
        return "two draws with the same seed differ: MindGap needs reproducible draws (see runtimes.py)"
    if torch.equal(first, model.run(x, seeds[2])):
        return "card says stochastic but draws with two different seeds are identical"
    return None


def load_external_model(path: Any, device: str | torch.device | None = None) -> ExternalModel:
    """The model a card (file or folder) describes, checked on the probe tile, in eval mode."""
    card = read_model_card(path)
    model = ExternalModel(card=card, runtime=open_runtime(card))
    problem = probe_problem(model, probe_tile(model.band_names))
    if problem:
        raise InputError(card.path, f"does not match the model's behaviour on a probe tile: {problem}")
    model.to(device=device)
    return model.eval()
