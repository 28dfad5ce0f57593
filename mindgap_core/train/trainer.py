"""Train one model on one regime: ``accelerate`` loop, EMA, checkpoints, exact resume, loss log.

Output folder (``out``)::

    model_index.json, <component>/...   the final model (EMA weights), loadable with load_model(out)
    training.json                       what was trained how: method, regime, data hash, seed, ...
    loss.csv                            step, loss, lr, wall_s (rewritten atomically as it grows)
    checkpoints/step-NNNNNNN/           while training (removed at the end unless kept)

The same command runs on CPU, one GPU or several (``accelerate launch``): the accelerator is built
with ``cpu=True`` when CUDA is absent (so gloo ranks see each other, docs/architecture.md, "Scale-out").
Every random draw of a step (which tiles, which flips, noise, timesteps) is a function of
``(seed, step, rank)``; with model weights, optimiser state and EMA restored from a checkpoint, a
resumed run continues exactly as the uninterrupted run would have.

Bad inputs are checked before anything is written: a failed start leaves no output.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mindgap_core.errors import ConfigError, InputError
from mindgap_core.io.atomic import atomic_path
from mindgap_core.io.hashing import file_sha256
from mindgap_core.types import ProgressFn, no_progress

TRAINING_JSON = "training.json"
LOSS_CSV = "loss.csv"
CHECKPOINTS = "checkpoints"
STATE_JSON = "state.json"
DEFAULT_STEPS = 500
MIXED_PRECISION = ("no", "fp16", "bf16")


@dataclass(frozen=True)
class TrainOptions:
    """Everything one training run depends on (the CLI flags of ``mindgap train``)."""

    method: str
    regime: str
    manifest: Path
    out: Path
    steps: int = DEFAULT_STEPS
    batch_size: int = 8
    learning_rate: float = 2e-4
    seed: int = 0
    mix_ratio: float = 0.5
    init: Path | None = None
    teacher: Path | None = None
    blocks: int | None = None
    config: str | Mapping[str, Any] = "demo"
    cross_domain: str | None = None
    ema_decay: float = 0.999
    warmup_steps: int = 50
    checkpoint_every: int = 100
    log_every: int = 10
    mixed_precision: str = "no"
    resume: bool = False
    keep_checkpoints: bool = False
    #: dtype of the saved final weights: "fp32" or "fp16" (half the size; loaded back as float32)
    save_dtype: str = "fp32"
    augment: bool = True
    command_line: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    out: Path
    method: str
    regime: str
    steps: int
    wall_s: float
    final_loss: float | None
    resumed_from: int | None
    already_done: bool = False


# --------------------------------------------------------------------------------------------------
# small pieces
class EMA:
    """Exponential moving average of parameters with the usual warm-up:
    ``decay_k = min(decay, (1 + k) / (10 + k))`` at update k."""

    def __init__(self, params: Mapping[str, nn.Parameter], decay: float) -> None:
        self.params = dict(params)
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {n: p.detach().clone().float() for n, p in self.params.items()}

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for n, p in self.params.items():
            self.shadow[n].mul_(d).add_(p.detach().float(), alpha=1 - d)

    @torch.no_grad()
    def copy_to_params(self) -> None:
        for n, p in self.params.items():
            p.copy_(self.shadow[n].to(p.dtype))

    def state_dict(self) -> dict[str, torch.Tensor]:
        shadow = {f"shadow.{n}": t.contiguous() for n, t in self.shadow.items()}
        return {**shadow, "updates": torch.tensor(self.updates)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.updates = int(state["updates"])
        for n in self.shadow:
            self.shadow[n] = state[f"shadow.{n}"].to(self.shadow[n].device).clone()


class _StageLoss(nn.Module):
    """The trainable modules of a stage as one nn.Module whose forward is the model's loss (for DDP)."""

    def __init__(self, model: Any, stage: str, parts: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(dict(parts))
        self._model = model
        self._stage = stage

    def forward(self, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self._model.training_loss(self._stage, lr, hr, generator)


def learning_rate_at(step_in_stage: int, stage_steps: int, base_lr: float, warmup: int) -> float:
    """Linear warm-up over ``min(warmup, stage/10)`` steps, then cosine decay to 10 % of ``base_lr``."""
    warm = max(1, min(warmup, stage_steps // 10))
    if step_in_stage < warm:
        return base_lr * (step_in_stage + 1) / warm
    progress = (step_in_stage - warm) / max(1, stage_steps - warm)
    return base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The CPU generator of one training step on one rank."""
    state = np.random.SeedSequence([seed, 2, step, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


def make_accelerator(mixed_precision: str) -> Any:
    """An ``accelerate.Accelerator``: ``cpu=True`` without CUDA (gloo ranks), fp16/bf16 only on CUDA."""
    from accelerate import Accelerator

    cuda = torch.cuda.is_available()
    return Accelerator(cpu=not cuda, mixed_precision=mixed_precision if cuda else "no")


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def _write_losses(path: Path, rows: Sequence[tuple[int, float, float, float]]) -> None:
    with atomic_path(path) as tmp:
        with tmp.open("w") as fh:
            fh.write("step,loss,lr,wall_s\n")
            for step, loss, lr, wall in rows:
                fh.write(f"{step},{loss:.8g},{lr:.8g},{wall:.3f}\n")


def read_losses(path: str | Path) -> list[tuple[int, float, float, float]]:
    """The rows of a ``loss.csv`` (empty when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines()[1:]:
        step, loss, lr, wall = line.split(",")
        rows.append((int(step), float(loss), float(lr), float(wall)))
    return rows


# --------------------------------------------------------------------------------------------------
# checkpoints
def _checkpoint_dirs(out: Path) -> list[Path]:
    """Complete checkpoints (those with state.json), oldest first."""
    root = out / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / STATE_JSON).is_file()
    )


def _save_checkpoint(
    out: Path, step: int, stage_index: int, modules: Mapping[str, nn.Module], optimizer: Any | None,
    ema: EMA | None, state: Mapping[str, Any],
) -> Path:
    """Write ``checkpoints/step-NNNNNNN`` (temporary folder renamed when complete); drop older ones."""
    from safetensors.torch import save_file

    root = out / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, module in modules.items():
            tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
            save_file(tensors, tmp / f"{name}.safetensors")
        if optimizer is not None:
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        if ema is not None:
            save_file({k: v.cpu() for k, v in ema.state_dict().items()}, tmp / "ema.safetensors")
        configs = {n: dict(m.config) for n, m in modules.items() if hasattr(m, "config")}
        payload = {**state, "step": step, "stage_index": stage_index, "module_configs": configs,
                   "has_optimizer": optimizer is not None, "has_ema": ema is not None}
        (tmp / STATE_JSON).write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in _checkpoint_dirs(out):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _load_checkpoint_modules(ckpt: Path, modules: Mapping[str, nn.Module], state: Mapping[str, Any]) -> None:
    from safetensors.torch import load_file

    for name, module in modules.items():
        tensors = load_file(ckpt / f"{name}.safetensors", device=str(next(module.parameters()).device))
        module.load_state_dict(tensors)
        saved = state.get("module_configs", {}).get(name)
        if saved and hasattr(module, "register_to_config"):
            changed = {k: v for k, v in saved.items() if not k.startswith("_") and module.config.get(k) != v}
            if changed:
                module.register_to_config(**changed)


# --------------------------------------------------------------------------------------------------
# validation and setup
def _out_state(out: Path) -> str:
    """"missing" | "empty" | "finished" | "unfinished" | "foreign" (non-empty, not ours)."""
    if not out.exists():
        return "missing"
    if not out.is_dir():
        return "foreign"
    if (out / TRAINING_JSON).is_file():
        return "finished"
    if (out / CHECKPOINTS).exists() or (out / LOSS_CSV).exists():
        return "unfinished"
    return "empty" if not any(out.iterdir()) else "foreign"


def _check_options(opts: TrainOptions) -> None:
    from mindgap_core.models import MODEL_REGISTRY
    from mindgap_core.train.regimes import REGIMES

    if opts.method not in MODEL_REGISTRY:
        raise ConfigError(f"unknown method {opts.method!r}; known: {', '.join(MODEL_REGISTRY)}")
    if opts.regime not in REGIMES:
        raise ConfigError(f"unknown regime {opts.regime!r}; known: {', '.join(REGIMES)}")
    if REGIMES[opts.regime].needs_init and opts.init is None and opts.method != "bicubic":
        raise ConfigError(
            f"regime {opts.regime!r} starts from a synthetic-trained checkpoint: pass --init DIR"
        )
    if opts.steps < 0 or opts.batch_size < 1 or opts.learning_rate <= 0:
        raise ConfigError("--steps must be >= 0, --batch-size >= 1 and --lr > 0")
    if opts.checkpoint_every < 1 or opts.log_every < 1:
        raise ConfigError("--checkpoint-every and --log-every must be >= 1")
    if opts.mixed_precision not in MIXED_PRECISION:
        raise ConfigError(f"--mixed-precision must be one of {MIXED_PRECISION}")
    if not 0.0 <= opts.ema_decay < 1.0:
        raise ConfigError(f"--ema-decay must be in [0, 1), got {opts.ema_decay}")
    if opts.teacher is not None and opts.method != "sinsr":
        raise ConfigError("--teacher is for --method sinsr (a trained ResShift model)")


def _run_key(opts: TrainOptions, manifest_hash: str) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one."""
    return {
        "method": opts.method, "regime": opts.regime, "steps": opts.steps, "batch_size": opts.batch_size,
        "learning_rate": opts.learning_rate, "seed": opts.seed, "mix_ratio": opts.mix_ratio,
        "blocks": opts.blocks, "ema_decay": opts.ema_decay, "manifest_sha256": manifest_hash,
        "init": str(opts.init) if opts.init else None, "teacher": str(opts.teacher) if opts.teacher else None,
    }


@dataclass
class _Setup:
    model: Any
    tiles: Any
    selection: Any
    config: dict[str, Any]
    manifest_hash: str
    init_info: dict[str, Any] | None


def _prepare(opts: TrainOptions) -> _Setup:
    """Read and check every input (no writes); build the model."""
    from mindgap_core.data.manifest import read_manifest
    from mindgap_core.models import build_model, load_model
    from mindgap_core.models.presets import resolve_config
    from mindgap_core.models.sinsr import SinSRModel
    from mindgap_core.train.data import load_pair_tiles, tile_statistics
    from mindgap_core.train.regimes import select_training_rows

    manifest = read_manifest(opts.manifest)
    manifest_path = Path(opts.manifest)
    if manifest_path.is_dir():
        manifest_path = manifest_path / "manifest.parquet"
    selection = select_training_rows(
        manifest, opts.regime, source=manifest_path, mix_ratio=opts.mix_ratio, blocks=opts.blocks,
        cross_domain=opts.cross_domain,
    )
    config = resolve_config(opts.method, opts.config)
    init = load_model(opts.init) if opts.init is not None else None
    if init is not None and init.method != opts.method:
        raise InputError(opts.init, f"is a {init.method} model; --method is {opts.method}")
    teacher = load_model(opts.teacher) if opts.teacher is not None else None
    if teacher is not None and teacher.method != "resshift":
        raise InputError(opts.teacher, f"is a {teacher.method} model; a SinSR teacher must be resshift")
    tiles = load_pair_tiles(manifest_path, selection.rows)
    for ref, path in ((init, opts.init), (teacher, opts.teacher)):
        if ref is not None and (ref.scale != tiles.scale or ref.band_names != tiles.band_names):
            raise InputError(
                path,
                f"is a x{ref.scale} {ref.band_names} model; the data are x{tiles.scale} {tiles.band_names}",
            )

    torch.manual_seed(opts.seed)
    if init is not None:
        model = init
        if isinstance(model, SinSRModel):
            if teacher is None:
                raise ConfigError(
                    "fine-tuning sinsr needs --teacher: a ResShift model trained on the same data"
                )
            model.attach_teacher(teacher)
    elif teacher is not None:
        model = SinSRModel.from_teacher(teacher, config)
    else:
        model = build_model(opts.method, config, scale=tiles.scale, band_names=tiles.band_names,
                            stats=tile_statistics(tiles))
    hr_size = tuple(tiles.hr.shape[-2:])
    if any(s % model.size_multiple for s in hr_size):
        raise InputError(
            manifest_path,
            f"HR tiles are {hr_size}; {opts.method} with this config needs multiples of "
            f"{model.size_multiple}",
        )
    init_info = None
    if opts.init is not None:
        init_info = {"path": str(opts.init), "training": _read_json_or_none(Path(opts.init) / TRAINING_JSON)}
    return _Setup(model, tiles, selection, config, file_sha256(manifest_path), init_info)


def _read_json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


# --------------------------------------------------------------------------------------------------
def train(
    opts: TrainOptions, on_progress: ProgressFn = no_progress, on_step: Callable[[int], None] | None = None
) -> TrainResult:
    """Train (or resume) one run; return what it produced. See the module docstring."""
    t0 = time.time()
    out = Path(opts.out)
    _check_options(opts)
    state = _out_state(out)
    if state == "finished":
        if opts.resume:
            done = json.loads((out / TRAINING_JSON).read_text())
            mine = {"method": opts.method, "regime": opts.regime, "steps": opts.steps, "seed": opts.seed}
            theirs = {k: done.get(k) for k in mine}
            if theirs != mine:
                raise ConfigError(
                    f"{out} holds a finished run with other settings ({theirs}); choose another --out"
                )
            return TrainResult(out, done["method"], done["regime"], int(done["steps"]), float(done["wall_s"]),
                               done.get("final_loss"), None, already_done=True)
        raise ConfigError(f"{out} already holds a finished training run; choose another --out")
    if state == "unfinished" and not opts.resume:
        raise ConfigError(
            f"{out} holds an unfinished run: pass --resume to continue it, or choose another --out"
        )
    if state == "foreign":
        raise ConfigError(f"{out} exists and is not an empty folder or a MindGap training folder")

    setup = _prepare(opts)
    model = setup.model
    run_key = _run_key(opts, setup.manifest_hash)
    stages = model.plan_stages(opts.steps, pretrained=opts.init is not None)
    total = sum(n for _, n in stages)

    accelerator = make_accelerator(opts.mixed_precision)
    device = accelerator.device
    model.to(device)
    modules = model.training_modules()

    # ---- resume
    step, stage_index, losses, wall_before, resumed_from = 0, 0, [], 0.0, None
    ckpt_state: dict[str, Any] | None = None
    ckpts = _checkpoint_dirs(out) if opts.resume else []
    if ckpts:
        ckpt = ckpts[-1]
        ckpt_state = json.loads((ckpt / STATE_JSON).read_text())
        if ckpt_state.get("run_key") != json.loads(json.dumps(run_key)):
            raise ConfigError(f"{ckpt} was written by a run with other settings: {ckpt_state.get('run_key')}")
        _load_checkpoint_modules(ckpt, modules, ckpt_state)
        step, stage_index = int(ckpt_state["step"]), int(ckpt_state["stage_index"])
        losses = [r for r in read_losses(out / LOSS_CSV) if r[0] <= step]
        wall_before = float(ckpt_state.get("wall_s", 0.0))
        resumed_from = step
    elif opts.resume and (out / LOSS_CSV).exists():
        (out / LOSS_CSV).unlink()  # a run that died before its first checkpoint restarts from zero

    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    from mindgap_core.train.data import PairDataset, SeededBatches

    dataset = PairDataset(setup.tiles, augment=opts.augment)
    batches = SeededBatches(
        len(setup.tiles), opts.batch_size, opts.seed, weights=setup.selection.weights, augment=opts.augment,
        rank=accelerator.process_index, world_size=accelerator.num_processes,
    )
    t_run = time.time()

    def wall() -> float:
        return wall_before + time.time() - t_run

    def base_state() -> dict[str, Any]:
        return {"run_key": run_key, "plan": stages, "wall_s": wall()}

    stage_start = 0
    for index, (stage, n_steps) in enumerate(stages):
        stage_end = stage_start + n_steps
        if index < stage_index:
            stage_start = stage_end
            continue
        names = model.trainable(stage)
        for name, module in modules.items():
            module.requires_grad_(name in names)
            module.train(name in names)
        named = {f"{name}.{k}": p for name in names for k, p in modules[name].named_parameters()}
        optimizer = torch.optim.AdamW(list(named.values()), lr=opts.learning_rate, weight_decay=0.0)
        ema = EMA(named, opts.ema_decay) if opts.ema_decay > 0 else None
        if ckpt_state is not None and index == stage_index and ckpt_state.get("has_optimizer"):
            ckpt = _checkpoint_dirs(out)[-1]
            saved = torch.load(ckpt / "optimizer.pt", map_location=device, weights_only=True)
            optimizer.load_state_dict(saved)
            if ema is not None and ckpt_state.get("has_ema"):
                from safetensors.torch import load_file

                ema.load_state_dict(load_file(ckpt / "ema.safetensors", device=str(device)))
        stage_loss = _StageLoss(model, stage, {n: modules[n] for n in names})
        wrapper, optimizer = accelerator.prepare(stage_loss, optimizer)
        params = list(named.values())
        for s in range(max(step, stage_start), stage_end):
            lr_value = learning_rate_at(s - stage_start, n_steps, opts.learning_rate, opts.warmup_steps)
            lr_value *= model.stage_lr_scale(stage)
            for group in optimizer.param_groups:
                group["lr"] = lr_value
            idx, codes = batches.indices(s)
            lr_b, hr_b = dataset.batch(idx, codes)
            with accelerator.autocast():
                generator = step_generator(opts.seed, s, accelerator.process_index)
                loss = wrapper(lr_b.to(device), hr_b.to(device), generator)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update()
            step = s + 1
            loss_value = float(accelerator.reduce(loss.detach().float(), reduction="mean"))
            if not math.isfinite(loss_value):
                raise ConfigError(f"training diverged at step {step} (loss {loss_value}); lower --lr")
            losses.append((step, loss_value, lr_value, wall()))
            if accelerator.is_main_process:
                if step % opts.log_every == 0:
                    _write_losses(out / LOSS_CSV, losses)
                if step % opts.checkpoint_every == 0 and step < stage_end:
                    _write_losses(out / LOSS_CSV, losses)
                    _save_checkpoint(out, step, index, modules, optimizer, ema, base_state())
            accelerator.wait_for_everyone()
            on_progress(step, total)
            if on_step is not None:
                on_step(step)
        if ema is not None:
            ema.copy_to_params()
        for module in modules.values():
            module.requires_grad_(False)
        model.end_stage(stage, setup.tiles.hr, setup.tiles.lr)
        step = max(step, stage_end)
        if accelerator.is_main_process and index + 1 < len(stages) and n_steps > 0:
            _write_losses(out / LOSS_CSV, losses)
            _save_checkpoint(out, step, index + 1, modules, None, None, base_state())
        accelerator.wait_for_everyone()
        stage_start = stage_end
        ckpt_state = None

    model.eval()
    wall_s = wall()
    final_loss = losses[-1][1] if losses else None
    if accelerator.is_main_process:
        model.to("cpu")
        model.save_pretrained(out, storage_dtype=torch.float16 if opts.save_dtype == "fp16" else None)
        _write_losses(out / LOSS_CSV, losses)
        info = _training_info(
            opts, setup, stages, accelerator, wall_s, final_loss, resumed_from, time.time() - t0
        )
        _write_json(out / TRAINING_JSON, info)
        if not opts.keep_checkpoints:
            shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    accelerator.wait_for_everyone()
    return TrainResult(out, opts.method, opts.regime, total, wall_s, final_loss, resumed_from)


def _training_info(
    opts: TrainOptions, setup: _Setup, stages: list[tuple[str, int]], accelerator: Any, wall_s: float,
    final_loss: float | None, resumed_from: int | None, this_run_s: float,
) -> dict[str, Any]:
    import accelerate
    import diffusers

    sel = setup.selection
    device = accelerator.device
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"cpu ({torch.get_num_threads()} threads)"
    return {
        "method": opts.method,
        "regime": opts.regime,
        "train_domains": list(sel.domains),
        "train_blocks": list(sel.blocks),
        "blocks": opts.blocks,
        "n_train_pairs": len(sel.rows),
        "n_train_pairs_by_domain": {d: int((sel.rows["domain"] == d).sum()) for d in sel.domains},
        "mix_ratio": opts.mix_ratio if opts.regime == "mixed" else None,
        "steps": sum(n for _, n in stages),
        "stages": [{"name": s, "steps": n} for s, n in stages],
        "batch_size": opts.batch_size,
        "learning_rate": opts.learning_rate,
        "ema_decay": opts.ema_decay, "save_dtype": opts.save_dtype,
        "seed": opts.seed,
        "augment": opts.augment,
        "config": setup.config,
        "scale": setup.model.scale,
        "hr_tile_size": list(setup.tiles.hr.shape[-2:]),
        "parameters": setup.model.num_parameters(),
        "init": setup.init_info,
        "teacher": str(opts.teacher) if opts.teacher else None,
        "device": device_name,
        "num_processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "wall_s": round(wall_s, 3),
        "wall_s_this_invocation": round(this_run_s, 3),
        "resumed_from_step": resumed_from,
        "final_loss": final_loss,
        "manifest": str(opts.manifest),
        "manifest_sha256": setup.manifest_hash,
        "command_line": list(opts.command_line) or sys.argv,
        "versions": {
            "torch": torch.__version__, "diffusers": diffusers.__version__,
            "accelerate": accelerate.__version__,
        },
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def with_options(opts: TrainOptions, **changes: Any) -> TrainOptions:
    """A copy of ``opts`` with some fields changed."""
    return replace(opts, **changes)


def options_dict(opts: TrainOptions) -> dict[str, Any]:
    """``opts`` as JSON-friendly values."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()}
