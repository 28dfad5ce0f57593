"""Running a model a card describes: a TorchScript file, an ONNX file, or a Python entry point.

:func:`open_runtime` turns a :class:`~mindgap_core.models.card.ModelCard` into a
:class:`Runtime`: ``runtime(x, generator)`` maps a float32 tensor in the model's own units to its
output, on ``x``'s device. Reproducible draws of stochastic models: an entry point whose callable
takes a ``generator`` keyword gets MindGap's generator; any other torch model runs under torch's
global RNG seeded from that generator (``torch.random.fork_rng``, so nothing else's RNG moves).
ONNX models run on onnxruntime without a seedable random source, so MindGap takes deterministic ONNX
models only. An entry point runs that package's code when loaded: load only cards you trust.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.models.card import ModelCard

#: the onnxruntime release MindGap is tested with (requirements.txt)
ONNXRUNTIME_PIN = "onnxruntime==1.32.0"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Runtime:
    """A model callable on torch tensors; ``module`` is the torch module to move between devices."""

    module: nn.Module | None = None

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError


class TorchRuntime(Runtime):
    """A TorchScript module or a Python callable; ``takes_generator``: pass MindGap's generator."""

    def __init__(self, fn: Callable[..., Any], *, takes_generator: bool = False) -> None:
        self.fn = fn
        self.takes_generator = takes_generator
        self.module = fn if isinstance(fn, nn.Module) else None

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        with torch.no_grad():
            if generator is None:
                return _as_tensor(self.fn(x), x)
            if self.takes_generator:
                return _as_tensor(self.fn(x, generator=generator), x)
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
            devices = [x.device] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                return _as_tensor(self.fn(x), x)


class OnnxRuntime(Runtime):
    """An onnxruntime session with one float32 input; runs on the CPU (or CUDA when the installed
    onnxruntime has it and the input is on a GPU)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        feed = {self.input_name: x.detach().float().cpu().numpy()}
        return torch.from_numpy(np.ascontiguousarray(self.session.run(None, feed)[0])).to(x.device)


def _as_tensor(out: Any, like: torch.Tensor) -> torch.Tensor:
    """The model's output as a tensor on ``like``'s device (numpy arrays accepted)."""
    if isinstance(out, np.ndarray):
        out = torch.from_numpy(out)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model returned a {type(out).__name__}, not a tensor")
    return out.to(like.device)


def _torchscript(card: ModelCard) -> Runtime:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 marks TorchScript deprecated
            module = torch.jit.load(str(card.file), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as exc:
        raise InputError(card.file, f"not a loadable TorchScript file ({_first_line(exc)})") from None
    return TorchRuntime(module.eval())


def _onnx(card: ModelCard) -> Runtime:
    if card.stochastic:
        raise InputError(card.path, "stochastic ONNX models are not supported: onnxruntime has no "
                                    "seedable random source (export a TorchScript file instead)")
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"{card.path}: ONNX models need onnxruntime ({ONNXRUNTIME_PIN})") from None
    try:
        session = onnxruntime.InferenceSession(str(card.file), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise InputError(card.file, f"not a loadable ONNX model ({_first_line(exc)})") from None
    inputs = [i.name for i in session.get_inputs()]
    if len(inputs) != 1:
        raise InputError(card.file, f"has inputs {inputs}; MindGap feeds one (N, bands, h, w) tensor")
    return OnnxRuntime(session)


def _entry_point(card: ModelCard) -> Runtime:
    module_name, _, attr = str(card.entry_point).partition(":")
    what = f"entry point {card.entry_point!r}"
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise InputError(card.path, f"{what}: cannot import {module_name!r} ({_first_line(exc)})") from None
    except AttributeError:
        raise InputError(card.path, f"{what}: module {module_name!r} has no {attr!r}") from None
    try:
        fn = factory(**card.kwargs)
    except Exception as exc:  # the user's factory may raise anything; report it as one line
        raise InputError(card.path, f"{what} failed: {type(exc).__name__}: {_first_line(exc)}") from None
    if not callable(fn):
        raise InputError(card.path, f"{what} returned a {type(fn).__name__}, not a callable model")
    if isinstance(fn, nn.Module):
        fn.eval()
    try:
        signature = inspect.signature(fn.forward if isinstance(fn, nn.Module) else fn)
        takes_generator = "generator" in signature.parameters
    except (TypeError, ValueError):
        takes_generator = False
    return TorchRuntime(fn, takes_generator=takes_generator)


#: card format -> opener (a plain dict)
OPENERS: dict[str, Callable[[ModelCard], Runtime]] = {
    "torchscript": _torchscript, "onnx": _onnx, "entry_point": _entry_point,
}


def open_runtime(card: ModelCard) -> Runtime:
    """The runtime of the model ``card`` describes (InputError naming the file or card when it cannot
    be opened)."""
    return OPENERS[card.format](card)
