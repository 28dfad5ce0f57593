"""SinSR (Wang et al., CVPR 2024): one-step SR distilled from ResShift's deterministic sampler.

The student is a ResShift-shaped UNet initialised from the teacher. For an initial state
``x_T = y + kappa sqrt(eta_T) eps`` it predicts, in one evaluation at t = T-1, the x_0 that the
teacher's deterministic (DDIM-like, noise-free) 15-step chain reaches from the same x_T. Following
the official code (github.com/wyf0912/SinSR ``training_losses_distill``), the loss is

* ``distill``: MSE(student(x_T, T-1), teacher_chain(x_T));
* ``xt_weight`` x MSE(student(x0_teacher, t=0), x_T): the same network learns the inverse map
  (x_0 -> x_T, flagged by timestep 0), SinSR's consistency-preserving regulariser;
* ``gt_weight`` x MSE(student(student^-1(x0_gt), T-1), x0_gt): the ground truth, passed through the
  learnt inverse (no gradient) and back.

The two regularisers cost three student passes next to the teacher's 15 (cheap). Training without a
given teacher first trains one (stage ``teacher``, ``teacher_fraction`` of the steps), then distils
(stage ``distill``). Sampling always takes one network evaluation (``steps`` is ignored); samples
differ only through eps.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers import UNet2DModel
from diffusers.configuration_utils import register_to_config
from torch import nn

from mindgap_core.errors import ConfigError
from mindgap_core.models.base import StepFn, merge_config, two_stages, unet_presets
from mindgap_core.models.resshift import (
    RESSHIFT_SCHEDULE,
    ResShiftModel,
    make_resshift_scheduler,
    predict_x0,
    prior_inputs,
)
from mindgap_core.models.unet_scheduler import UNetSchedulerModel
from mindgap_core.schedulers.resshift import ResShiftScheduler


def _public(config: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers config without its bookkeeping keys (``_class_name``, ``_diffusers_version``, ...)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items() if not k.startswith("_")}


class SinSRModel(UNetSchedulerModel):
    """One-step student of a ResShift teacher."""

    method: ClassVar[str] = "sinsr"
    stochastic: ClassVar[bool] = True
    component_classes: ClassVar[dict[str, type]] = {"unet": UNet2DModel, "scheduler": ResShiftScheduler}
    presets: ClassVar[dict[str, dict[str, Any]]] = unet_presets(
        scheduler=RESSHIFT_SCHEDULE, teacher_fraction=0.5, xt_weight=1.0, gt_weight=1.0,
        residual_output="residual",
    )
    stage_modules: ClassVar[dict[str, list[str]]] = {"teacher": ["teacher_unet"], "distill": ["unet"]}

    @register_to_config
    def __init__(
        self, *, unet: UNet2DModel, scheduler: ResShiftScheduler, xt_weight: float = 1.0,
        gt_weight: float = 1.0, teacher_fraction: float = 0.5, **kwargs: Any,
    ) -> None:
        kwargs.setdefault("default_steps", 1)
        super().__init__(unet=unet, scheduler=scheduler, **kwargs)
        self.xt_weight = float(xt_weight)
        self.gt_weight = float(gt_weight)
        self.teacher_fraction = float(teacher_fraction)
        #: the ResShift teacher (training only; not saved)
        self.teacher: ResShiftModel | None = None
        #: True when the teacher is already trained (given with --teacher): no teacher stage
        self.teacher_trained = False

    @staticmethod
    def make_scheduler(config: Mapping[str, Any]) -> ResShiftScheduler:
        return make_resshift_scheduler(config)

    @classmethod
    def fresh_parts(
        cls, config: Mapping[str, Any], channels: int, stats: Mapping[str, Sequence[float]]
    ) -> dict[str, Any]:
        weights = {k: config[k] for k in ("xt_weight", "gt_weight", "teacher_fraction")}
        return {**super().fresh_parts(config, channels, stats), **weights}

    @classmethod
    def build(cls, config: Mapping[str, Any] | None, **kwargs: Any) -> SinSRModel:
        """A fresh student and a fresh teacher with the same weights (trained in stage ``teacher``)."""
        student = super().build(config, **kwargs)
        student.teacher = ResShiftModel(
            unet=copy.deepcopy(student.unet),
            scheduler=ResShiftScheduler.from_config(student.scheduler.config),
            residual_scale=student.residual_scale,
            default_steps=student.scheduler.config.num_train_timesteps,
            **student.data_settings(),
        )
        return student

    @classmethod
    def from_teacher(cls, teacher: ResShiftModel, config: Mapping[str, Any] | None = None) -> SinSRModel:
        """A student initialised from a trained ResShift model (weights, schedule, normalisation)."""
        cfg = merge_config(cls.presets["demo"], config, cls.method)
        student = cls(
            unet=copy.deepcopy(teacher.unet),
            scheduler=ResShiftScheduler.from_config(teacher.scheduler.config),
            xt_weight=cfg["xt_weight"], gt_weight=cfg["gt_weight"], teacher_fraction=cfg["teacher_fraction"],
            residual_scale=teacher.residual_scale, **teacher.data_settings(),
        )
        student.attach_teacher(teacher)
        return student

    def attach_teacher(self, teacher: ResShiftModel) -> None:
        """Use a trained ResShift model as teacher (checks that it matches this student)."""
        problems = []
        if teacher.method != "resshift":
            problems.append(f"the teacher is a {teacher.method} model, not resshift")
        else:
            if teacher.scale != self.scale or teacher.band_names != self.band_names:
                problems.append(
                    f"scale/bands differ (x{teacher.scale} {teacher.band_names} "
                    f"vs x{self.scale} {self.band_names})"
                )
            if teacher.band_mean != self.band_mean or teacher.band_std != self.band_std:
                problems.append("normalisation statistics differ")
            if teacher.residual_scale != self.residual_scale:
                problems.append("output parameterisations (residual_scale) differ")
            if _public(teacher.scheduler.config) != _public(self.scheduler.config):
                problems.append("ResShift schedules differ")
            if _public(teacher.unet.config) != _public(self.unet.config):
                problems.append("UNet architectures differ")
        if problems:
            raise ConfigError("teacher does not match the SinSR student: " + "; ".join(problems))
        for p in teacher.unet.parameters():
            p.requires_grad_(False)
        self.teacher = teacher
        self.teacher_trained = True

    # ----------------------------------------------------------------------------------------------
    def _last_t(self, n: int, device: torch.device) -> torch.Tensor:
        last = self.scheduler.config.num_train_timesteps - 1
        return torch.full((n,), last, device=device, dtype=torch.long)

    def one_step(self, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The student's x_0 (model space, clipped as configured) from x_T = prior(y, noise)."""
        x_t = self.scheduler.prior_sample(y, noise)
        x0 = predict_x0(self, x_t, y, self._last_t(y.shape[0], y.device))
        if self.scheduler.config.clip_sample:
            r = self.scheduler.config.clip_sample_range
            x0 = x0.clamp(-r, r)
        return x0

    def _sample(
        self, lr: torch.Tensor, steps: int, generator: torch.Generator | None, on_step: StepFn
    ) -> torch.Tensor:
        y, noise = prior_inputs(self, lr, generator)
        out = self.denormalize(self.one_step(y, noise))
        on_step(1, 1)
        return out

    # ----------------------------------------------------------------------------------------------
    def training_modules(self) -> dict[str, nn.Module]:
        mods: dict[str, nn.Module] = {"unet": self.unet}
        if self.teacher is not None:
            mods["teacher_unet"] = self.teacher.unet
        return mods

    def plan_stages(self, total_steps: int, pretrained: bool) -> list[tuple[str, int]]:
        if self.teacher is None:
            raise ConfigError("sinsr training needs a ResShift teacher (--teacher DIR)")
        if self.teacher_trained:
            return [("distill", total_steps)]
        if pretrained:
            raise ConfigError("fine-tuning sinsr needs --teacher: a ResShift model trained on the same data")
        return two_stages(total_steps, self.teacher_fraction, "teacher", "distill")

    def training_loss(
        self, stage: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        assert self.teacher is not None
        if stage == "teacher":
            return self.teacher.training_loss("main", lr, hr, generator)
        return self.distillation_loss(lr, hr, generator)

    def distillation_loss(
        self, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """The SinSR loss (module docstring) for one batch of LR/HR reflectance."""
        assert self.teacher is not None
        sched = self.scheduler
        y, noise = prior_inputs(self, lr, generator)
        x_t = sched.prior_sample(y, noise)
        last = self._last_t(y.shape[0], y.device)
        first = torch.zeros_like(last)
        with torch.no_grad():
            was_training = self.teacher.unet.training
            self.teacher.unet.eval()
            target = self.teacher.run_chain(y, noise, sched.config.num_train_timesteps, deterministic=True)
            self.teacher.unet.train(was_training)
        loss = F.mse_loss(predict_x0(self, x_t, y, last), target)
        if self.xt_weight:
            inverse = self.unet_state(sched.scale_model_input(target, last), y, first)
            loss = loss + self.xt_weight * F.mse_loss(inverse, x_t)
        if self.gt_weight:
            x0 = self.normalize(hr)
            with torch.no_grad():
                x_t_gt = self.unet_state(sched.scale_model_input(x0, last), y, first)
            loss = loss + self.gt_weight * F.mse_loss(predict_x0(self, x_t_gt, y, last), x0)
        return loss

    @torch.no_grad()
    def end_stage(self, stage: str, hr_tiles: torch.Tensor, lr_tiles: torch.Tensor) -> None:
        """After the teacher stage: the student starts from the teacher's weights (as in SinSR)."""
        if stage == "teacher" and self.teacher is not None:
            self.unet.load_state_dict(self.teacher.unet.state_dict())
            for p in self.teacher.unet.parameters():
                p.requires_grad_(False)
            self.teacher_trained = True
