"""SinSR distillation on a toy problem: the one-step student learns the teacher's deterministic chain."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mindgap_core.errors import ConfigError
from mindgap_core.models import build_model
from mindgap_core.models.presets import resolve_config
from mindgap_core.models.sinsr import SinSRModel

STATS = {"band_mean": [0.1] * 4, "band_std": [0.05] * 4}


def _toy(seed: int = 0, **overrides) -> SinSRModel:
    torch.manual_seed(seed)
    cfg = resolve_config("sinsr", {"preset": "tiny", "scheduler": {"num_train_timesteps": 6}, **overrides})
    return build_model("sinsr", cfg, scale=2, stats=STATS)


def _gap_to_teacher(model: SinSRModel, y: torch.Tensor, seeds: range) -> float:
    """Mean squared gap between the student's one step and the teacher's deterministic chain."""
    assert model.teacher is not None
    errs = []
    with torch.no_grad():
        for s in seeds:
            noise = torch.randn(y.shape, generator=torch.Generator().manual_seed(s))
            steps = model.scheduler.config.num_train_timesteps
            target = model.teacher.run_chain(y, noise, steps, deterministic=True)
            errs.append(F.mse_loss(model.one_step(y, noise), target).item())
    return sum(errs) / len(errs)


def test_distillation_brings_the_student_to_the_teacher() -> None:
    model = _toy(xt_weight=0.0, gt_weight=0.0)
    g = torch.Generator().manual_seed(0)
    hr = 0.1 + 0.05 * torch.randn(4, 4, 16, 16, generator=g)
    lr = F.avg_pool2d(hr, 2)
    # the random-init teacher plays a trained one; the student starts from its weights (as in SinSR)
    model.end_stage("teacher", hr, lr)
    assert model.teacher_trained and model.plan_stages(5, pretrained=False) == [("distill", 5)]
    y = model.normalize(F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False))
    before = _gap_to_teacher(model, y, range(1000, 1004))

    opt = torch.optim.Adam(model.unet.parameters(), lr=3e-3)
    model.unet.train()
    for step in range(60):
        loss = model.training_loss("distill", lr, hr, torch.Generator().manual_seed(step))
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.unet.eval()
    after = _gap_to_teacher(model, y, range(1000, 1004))  # noise never seen in training
    assert after < 0.3 * before, (before, after)


def test_regularisers_add_to_the_loss_and_teacher_stays_frozen() -> None:
    model = _toy()
    hr = 0.1 + 0.05 * torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    lr = F.avg_pool2d(hr, 2)
    model.end_stage("teacher", hr, lr)
    plain = _toy(xt_weight=0.0, gt_weight=0.0)
    plain.end_stage("teacher", hr, lr)
    full = model.training_loss("distill", lr, hr, torch.Generator().manual_seed(3))
    bare = plain.training_loss("distill", lr, hr, torch.Generator().manual_seed(3))
    assert float(full.detach()) > float(bare.detach()) > 0
    full.backward()
    assert all(p.grad is None for p in model.teacher.unet.parameters())
    assert any(p.grad is not None for p in model.unet.parameters())


def test_teacher_must_match_the_student() -> None:
    student = _toy()
    torch.manual_seed(0)
    # a 15-step ResShift (the student has 6 steps)
    other = build_model("resshift", resolve_config("resshift", "tiny"), scale=2, stats=STATS)
    with pytest.raises(ConfigError, match="ResShift schedules differ"):
        student.attach_teacher(other)
    sr3 = build_model("sr3", resolve_config("sr3", "tiny"), scale=2, stats=STATS)
    with pytest.raises(ConfigError, match="not resshift"):
        student.attach_teacher(sr3)
    made = SinSRModel.from_teacher(other, resolve_config("sinsr", "tiny"))
    assert made.teacher is other and made.plan_stages(3, pretrained=True) == [("distill", 3)]
    pairs = zip(made.unet.parameters(), other.unet.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
